using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;

namespace Ddsm.Tests.StepAdaptive;

internal static class StepAdaptiveTestUtil
{
    public static readonly Backend Cpu = CpuBackend.Instance;

    /// <summary>
    /// Adds N(0, 0.05²) to every parameter, so zero-initialised convs (out_layers.3, proj_out, out.2)
    /// carry signal, GroupNorm γ/β differ per channel, and no channel is a copy of another.
    /// </summary>
    public static void Randomise(SlimUNet m, ulong seed)
    {
        var r = new Rng(seed);
        foreach (var (_, p) in m.NamedParameters())
        {
            var a = p.ToArray();
            for (int i = 0; i < a.Length; i++) a[i] += (float)(0.05 * r.NextNormal());
            p.CopyFrom(a);
        }
    }

    /// <summary>ε̂ at one width for a fixed random batch (3 samples, random t), no tape.</summary>
    public static float[] Forward(SlimUNet m, double width, ulong seed)
    {
        var c = m.Config;
        var r = new Rng(seed);
        int n = 3;
        var x = new float[n * c.ImageChannels * c.ImageSize * c.ImageSize];
        r.FillNormal(x);
        var t = Enumerable.Range(0, n).Select(_ => (float)r.NextInt(1000)).ToArray();
        using var scope = new TensorScope();
        using (Tape.NoGrad())
            return m.Forward(Tensor.FromArray(Cpu, x, n, c.ImageChannels, c.ImageSize, c.ImageSize),
                             Tensor.FromArray(Cpu, t, n), width).ToArray();
    }

    /// <summary>Every channel stays where it is.</summary>
    public static bool IsIdentity(this Ddsm.StepAdaptive.PermutationPlan plan) =>
        plan.Perms.Values.All(p => p.Select((v, i) => v == i).All(b => b));

    /// <summary>max |a − b| / max |a|.</summary>
    public static double RelDiff(float[] a, float[] b)
    {
        double d = 0, s = 0;
        for (int i = 0; i < a.Length; i++) { d = Math.Max(d, Math.Abs(a[i] - b[i])); s = Math.Max(s, Math.Abs(a[i])); }
        return d / s;
    }
}
