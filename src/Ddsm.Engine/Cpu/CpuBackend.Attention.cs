using System.Numerics.Tensors;

namespace Ddsm.Engine.Cpu;

// Multi-head self-attention, one task per (sample, head). In ADM's legacy layout a head's q, k and v
// are each a (d, T) row-major block of qkv (N, 3C, T), so every product is a plain strided GEMM on
// the buffers with ld = T, no transposing copies:
//   S = α·QᵀK (T×T),  P = softmax_rows(S),  O = V·Pᵀ (d×T),  α = 1/√d.
// The forward divides O's columns by the row sums instead of P's rows (d·T instead of T² multiplies).
// Only the row log-sum-exp (N·heads, T) is kept; backward recomputes P = exp(S − lse) from it
// (T² floats per head would be the largest activation of the model otherwise).
// The T×T score scratch is rented per worker, so steady-state calls allocate nothing.
public sealed partial class CpuBackend
{
    public override void AttentionForward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse)
    {
        using var timer = Profiler.Kernel("attn_fwd");
        var qa = A(qkv); var oa = A(output); var la = A(lse);
        var g = d;
        int t = d.T, hd = d.HeadDim;
        float alpha = 1f / MathF.Sqrt(hd);
        long tt = (long)t * t;
        Parallel.For(0, d.N * d.Heads, Par, nh =>
        {
            var p = Scratch.Take(Scratch.Use.Attention, tt + t);
            var inv = p.AsSpan((int)tt, t);
            var (qOff, kOff, vOff, oOff) = HeadOffsets(g, nh);
            // P (T×T) row t = scores of query t against every key, then e^(s − max) in place, unnormalised.
            Sgemm.Run(true, false, t, t, hd, alpha, qa, qOff, t, qa, kOff, t, 0f, p, 0, t);
            for (int i = 0; i < t; i++)
            {
                var row = p.AsSpan(i * t, t);
                float mx = TensorPrimitives.Max(row);
                float sum = VecMath.ExpShifted(row, mx);
                inv[i] = 1f / sum;
                la[(long)nh * t + i] = mx + MathF.Log(sum);
            }
            // O (d×T) = V (d×T) · Pᵀ, then column i (query i) divided by its row sum: d·T multiplies where
            // normalising P took T·T.
            Sgemm.Run(false, true, hd, t, t, 1f, qa, vOff, t, p, 0, t, 0f, oa, oOff, t);
            for (int c = 0; c < hd; c++)
            {
                var orow = oa.AsSpan((int)(oOff + (long)c * t), t);
                TensorPrimitives.Multiply(orow, inv, orow);
            }
        });
    }

    public override void AttentionBackward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse,
        DeviceBuffer dout, DeviceBuffer dqkv)
    {
        using var timer = Profiler.Kernel("attn_bwd");
        var qa = A(qkv); var la = A(lse); var ga = A(dout); var da = A(dqkv);
        var g = d;
        int t = d.T, hd = d.HeadDim;
        float alpha = 1f / MathF.Sqrt(hd);
        long tt = (long)t * t;
        Parallel.For(0, d.N * d.Heads, Par, nh =>
        {
            var buf = Scratch.Take(Scratch.Use.Attention, 2 * tt);
            var (qOff, kOff, vOff, oOff) = HeadOffsets(g, nh);
            // P recomputed from the saved row log-sum-exp.
            Sgemm.Run(true, false, t, t, hd, alpha, qa, qOff, t, qa, kOff, t, 0f, buf, 0, t);
            for (int i = 0; i < t; i++)
            {
                VecMath.ExpShifted(buf.AsSpan(i * t, t), la[(long)nh * t + i]);
            }
            // dV (d×T) += dO (d×T) · P.
            Sgemm.Run(false, false, hd, t, t, 1f, ga, oOff, t, buf, 0, t, 1f, da, vOff, t);
            // dP (T×T) = dOᵀ · V, then dS = P∘(dP − rowsum(dP∘P)) in place.
            Sgemm.Run(true, false, t, t, hd, 1f, ga, oOff, t, qa, vOff, t, 0f, buf, tt, t);
            for (int i = 0; i < t; i++)
            {
                var pr = buf.AsSpan(i * t, t);
                var ds = buf.AsSpan((int)(tt + (long)i * t), t);
                float rs = TensorPrimitives.Dot(ds, pr);
                TensorPrimitives.Subtract(ds, rs, ds);
                TensorPrimitives.Multiply(ds, pr, ds);
            }
            // dQ (d×T) += α·K·dSᵀ;  dK (d×T) += α·Q·dS.
            Sgemm.Run(false, true, hd, t, t, alpha, qa, kOff, t, buf, tt, t, 1f, da, qOff, t);
            Sgemm.Run(false, false, hd, t, t, alpha, qa, qOff, t, buf, tt, t, 1f, da, kOff, t);
        });
    }

    /// <summary>Element offsets of head (n, h)'s q, k, v blocks in qkv and of its rows in out.</summary>
    private static (long q, long k, long v, long o) HeadOffsets(in AttentionDesc d, int nh)
    {
        int n = nh / d.Heads, h = nh % d.Heads;
        long hdT = (long)d.HeadDim * d.T;
        long q = ((long)n * 3 * d.C + (long)h * 3 * d.HeadDim) * d.T;
        long o = ((long)n * d.C + (long)h * d.HeadDim) * d.T;
        return (q, q + hdT, q + 2 * hdT, o);
    }
}
