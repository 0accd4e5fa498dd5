// Every kernel entry point and specialisation the engine launches, in one list: the backend loads
// them from here, `ddsm kernels` lists them, the PTX/ptxas check compiles each one, and the
// conformance suite checks that it ran every one of them.
using System.Reflection;

namespace Ddsm.Kernels;

/// <summary>
/// One launchable kernel: a static, explicitly grouped method taking a single argument struct.
/// <paramref name="Hot"/> kernels carry the step's arithmetic (GEMM, conv, attention, GroupNorm): the CI
/// check requires a zero-byte stack frame for them.
/// </summary>
public sealed record KernelEntry(string Name, string Family, MethodInfo Method, Type ArgsType, bool Hot, string Summary)
{
    public static KernelEntry Of<TArgs>(Action<TArgs> kernel, string name, string family, bool hot, string summary)
        where TArgs : struct =>
        new(name, family, kernel.Method, typeof(TArgs), hot, summary);

    public override string ToString() => Name;
}

public static class KernelCatalog
{
    // Each family's static class (XxxKernels) lists its own entries in an internal static Catalog
    // property; they are collected here, families in name order, so a new family needs no edit here.
    private static readonly Lazy<IReadOnlyList<KernelEntry>> AllLazy = new(() =>
    {
        var all = typeof(KernelCatalog).Assembly.GetTypes()
            .Where(t =>
                t is { IsAbstract: true, IsSealed: true } && t.Name.EndsWith("Kernels", StringComparison.Ordinal))
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .SelectMany(t =>
                (KernelEntry[])(t.GetProperty("Catalog", BindingFlags.NonPublic | BindingFlags.Static)?.GetValue(null)
                ?? throw new InvalidOperationException($"{t.Name} has no internal static Catalog")))
            .ToList();
        var dup = all.GroupBy(e => e.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new InvalidOperationException($"kernel name '{dup.Key}' registered twice");
        return all;
    });

    /// <summary>Every entry point and specialisation, grouped by family.</summary>
    public static IReadOnlyList<KernelEntry> All => AllLazy.Value;

    public static KernelEntry Get(string name) =>
        All.FirstOrDefault(e => e.Name == name) ?? throw new KeyNotFoundException($"no kernel named '{name}'");

    /// <summary>"name_f32" / "name_tf32" for a math-mode specialisation.</summary>
    internal static string Tagged<TMode>(string stem) where TMode : struct, IMathMode => $"{stem}_{default(TMode).Tag}";
}
