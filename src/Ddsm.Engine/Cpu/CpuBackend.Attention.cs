using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
        if (FusedAttentionOn && t % Sgemm.NR == 0 && Sgemm.Path >= SgemmPath.Avx2)
        {
            Parallel.For(0, d.N * d.Heads, Par, nh =>
            {
                var (qOff, kOff, vOff, oOff) = HeadOffsets(g, nh);
                unsafe
                {
                    fixed (float* pq = qa, po = oa, pl = la)
                        HeadForward(t, hd, alpha, pq + qOff, pq + kOff, pq + vOff, po + oOff, pl + (long)nh * t);
                }
            });
            return;
        }
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

    /// <summary>The forward by blocks of 16 queries (<see cref="HeadForward"/>); off only to time and test the
    /// whole-matrix form, which also serves T not a multiple of 16 and the portable path.</summary>
    internal static bool FusedAttentionOn { get; set; } = true;

    /// <summary>
    /// One head's forward, 16 queries at a time, with the block's scores in L1 instead of the whole T×T in L2:
    /// Sᵀ (T keys × 16 queries) = (α·Kᵀ) · Q[:, q0:q0+16] comes out of the microkernels in the packed-B layout
    /// (rows of 16 query lanes), so the softmax over keys is lane-wise (no horizontal max or sum) and
    /// O[:, q0:q0+16] = V · Pᵀ reads it in place: no transposing pack of P. Kᵀ (scaled by α) and V are packed
    /// once per head as the kernels' A panels. O's 16 columns are divided by their row sums at the end.
    /// </summary>
    private static unsafe void HeadForward(int t, int hd, float alpha, float* q, float* k, float* v, float* o,
        float* lse)
    {
        const int NR = Sgemm.NR;
        var path = Sgemm.Path;
        int mr = Sgemm.PanelHeight(path), tPad = Sgemm.RoundUp(t, mr), dPad = Sgemm.RoundUp(hd, mr);
        long kLen = (long)tPad * hd, vLen = (long)dPad * t;
        float* kT = Scratch.TakeAligned(Scratch.Use.Attention, kLen + vLen + (long)t * NR + Sgemm.MR * NR);
        float* vA = kT + kLen, sT = vA + vLen, edge = sT + (long)t * NR;
        Sgemm.PackA(path, true, k, t, 0, t, 0, hd, kT);
        var kSpan = new Span<float>(kT, (int)kLen);
        TensorPrimitives.Multiply(kSpan, alpha, kSpan);
        Sgemm.PackA(path, false, v, t, 0, hd, 0, t, vA);
        float* inv = stackalloc float[NR];
        for (int q0 = 0; q0 < t; q0 += NR)
        {
            var qRows = new StridedRows(q + q0, t);
            if (path == SgemmPath.Avx512)
            {
                ConvDirect.Tiles(hd, kT, qRows, t, sT, NR, 0f, NR);
                SoftmaxLanes512(sT, t, lse + q0, inv);
                ConvDirect.Tiles(t, vA, new Sgemm.PackedRows(sT), hd, o + q0, t, 0f, NR);
            }
            else
            {
                ConvDirect.Tiles6(hd, kT, qRows, t, sT, NR, 0f, edge);
                SoftmaxLanes(sT, t, lse + q0, inv);
                ConvDirect.Tiles6(t, vA, new Sgemm.PackedRows256(sT), hd, o + q0, t, 0f, edge);
            }
            // O's 16 columns divided by their row sums: one vector per output channel (a library call per row
            // cost more than the multiply).
            if (path == SgemmPath.Avx512)
            {
                var iv = Vector512.Load(inv);
                for (int c = 0; c < hd; c++)
                {
                    float* row = o + (long)c * t + q0;
                    Vector512.Store(Vector512.Load(row) * iv, row);
                }
            }
            else
            {
                Vector256<float> lo = Vector256.Load(inv), hi = Vector256.Load(inv + 8);
                for (int c = 0; c < hd; c++)
                {
                    float* row = o + (long)c * t + q0;
                    Vector256.Store(Vector256.Load(row) * lo, row);
                    Vector256.Store(Vector256.Load(row + 8) * hi, row + 8);
                }
            }
        }
    }

    /// <summary>
    /// Each of the 16 lanes of s (<paramref name="t"/> rows of 16) becomes e^(s − max) over its column; writes
    /// lse = max + log Σ and 1/Σ per lane.
    /// </summary>
    private static unsafe void SoftmaxLanes512(float* s, int t, float* lse, float* inv)
    {
        var mx = Vector512.Create(float.NegativeInfinity);
        for (int r = 0; r < t; r++) mx = Vector512.Max(mx, Vector512.Load(s + r * Sgemm.NR));
        var sum = Vector512<float>.Zero;
        for (int r = 0; r < t; r++)
        {
            var e = VecMath.Exp(Vector512.Load(s + r * Sgemm.NR) - mx);
            sum += e;
            Vector512.Store(e, s + r * Sgemm.NR);
        }
        Vector512.Store(Vector512<float>.One / sum, inv);
        for (int l = 0; l < Sgemm.NR; l++) lse[l] = mx[l] + MathF.Log(sum[l]);
    }

    /// <summary><see cref="SoftmaxLanes512"/> in Vector&lt;float&gt; steps (the AVX2 path).</summary>
    private static unsafe void SoftmaxLanes(float* s, int t, float* lse, float* inv)
    {
        int w = Vector<float>.Count;
        for (int l0 = 0; l0 < Sgemm.NR; l0 += w)
        {
            var mx = new Vector<float>(float.NegativeInfinity);
            for (int r = 0; r < t; r++) mx = Vector.Max(mx, Vector.Load(s + r * Sgemm.NR + l0));
            var sum = Vector<float>.Zero;
            for (int r = 0; r < t; r++)
            {
                var e = VecMath.Exp(Vector.Load(s + r * Sgemm.NR + l0) - mx);
                sum += e;
                Vector.Store(e, s + r * Sgemm.NR + l0);
            }
            for (int l = 0; l < w; l++)
            {
                inv[l0 + l] = 1f / sum[l];
                lse[l0 + l] = mx[l] + MathF.Log(sum[l]);
            }
        }
    }

    /// <summary>B rows read in place from a row-major matrix: row p is the 16 floats at b + p·ld.</summary>
    private readonly unsafe struct StridedRows(float* b, int ld) : Sgemm.IBRows, Sgemm.IBRows256
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Row(int p) => Vector512.Load(b + (long)p * ld);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Lo(int p) => Vector256.Load(b + (long)p * ld);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Hi(int p) => Vector256.Load(b + (long)p * ld + 8);
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
