// One fused Adam(W) step over a parameter: reads p, g, m, v once and writes p, m, v once (the chain
// of element-wise ops it replaces would move ~3× the bytes). EMA of weights is axpby.
//   g = grad·gs; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr·(m·ibc1 / (√(v·ibc2) + eps) + wd·p)
// in the CPU oracle's float operation order (ibc = 1/bias correction, computed on the host).
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>P, G, M, V: (N). Hyper-parameters as in AdamHyper, bias corrections inverted.</summary>
public struct AdamArgs
{
    public ArrayView<float> P, G, M, V;
    public long N;
    public float Lr, Beta1, Beta2, Eps, WeightDecay, InvBc1, InvBc2, GradScale;
}

public static class AdamKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<AdamArgs>(AdamStep, "adam_step", "adam", hot: false, "fused Adam(W) update of p, m, v"),
    ];

    /// <summary>Grid-stride over n.</summary>
    public static void AdamStep(AdamArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
        {
            float g = a.G[i] * a.GradScale;
            float m = a.Beta1 * a.M[i] + (1f - a.Beta1) * g;
            float v = a.Beta2 * a.V[i] + (1f - a.Beta2) * g * g;
            a.M[i] = m;
            a.V[i] = v;
            float p = a.P[i];
            a.P[i] = p - a.Lr * (m * a.InvBc1 / (MathF.Sqrt(v * a.InvBc2) + a.Eps) + a.WeightDecay * p);
        }
    }
}
