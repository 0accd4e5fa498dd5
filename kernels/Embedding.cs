// ADM's sinusoidal timestep embedding: out (N, dim) = [cos(t·f_j) | sin(t·f_j)], f_j =
// exp(−ln(maxPeriod)·j/half), half = dim/2; an odd dim gets a zero last column.
// Computed in double, in the CPU oracle's operation order, and rounded once to float: t reaches ~1000,
// where a float argument would already be off by ~1e-4 rad. ln(maxPeriod) comes from the host (the
// oracle's own double). On the GPU, ILGPU.Algorithms evaluates double exp/cos/sin by CORDIC (its
// PTXMath run on the host for t ≤ 1000, dim ≤ 512: within 3e-12 of System.Math, far below a float
// ulp); those calls are the kernel's stack frame. Tiny (N·dim elements, once per step), so
// double math costs nothing that matters; one output element per thread-iteration.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>T (N) timesteps; Out (N, Dim); LogMaxPeriod = ln(maxPeriod) in double.</summary>
public struct TimestepArgs
{
    public ArrayView<float> T, Out;
    public double LogMaxPeriod;
    public int N, Dim;
}

public static class EmbeddingKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<TimestepArgs>(TimestepEmbedding, "timestep_embedding", "embedding", hot: false,
            "out = [cos(t·f), sin(t·f)] in double"),
    ];

    /// <summary>Grid-stride over N·dim outputs.</summary>
    public static void TimestepEmbedding(TimestepArgs a)
    {
        int half = a.Dim / 2;
        long total = (long)a.N * a.Dim;
        for (long i = Dev.GlobalId; i < total; i += Dev.GridStride)
        {
            int b = (int)(i / a.Dim), col = (int)(i - (long)b * a.Dim);
            if (col >= 2 * half)
            {
                a.Out[i] = 0f;
                continue;
            }
            int j = col < half ? col : col - half;
            double f = Math.Exp(-a.LogMaxPeriod * j / half);
            double arg = a.T[b] * f;
            a.Out[i] = (float)(col < half ? Math.Cos(arg) : Math.Sin(arg));
        }
    }
}
