namespace Ddsm.Kernels.Gen;

/// <summary>Unrolled register tiles of the attention kernels (kernels/Attention.cs). Filled in with them.</summary>
public static class AttentionGen
{
    public static string Generate() => Code.Header("Register tiles of the attention kernels (see kernels/Attention.cs).")
        + "\nnamespace Ddsm.Kernels;\n";
}
