using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// The column matrix that turns a convolution into one GEMM per image: row (ci·K + kh)·K + kw,
/// column oh·Wo + ow holds x[ci, oh·S − P + kh, ow·S − P + kw] (zero outside the image).
/// Rows are filled in runs of output columns so that stride 1 is a plain span copy.
/// </summary>
public static class Im2Col
{
    /// <summary>col (Cin·K·K, Ho·Wo) = im2col(x[xOff..] (Cin, H, W)).</summary>
    public static void Forward(in ConvDesc d, ReadOnlySpan<float> x, Span<float> col)
    {
        int k = d.K, s = d.Stride, p = d.Pad, h = d.H, w = d.W, ho = d.Ho, wo = d.Wo;
        int hw = ho * wo;
        for (int ci = 0; ci < d.Cin; ci++)
        for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++)
        {
            var dst = col.Slice(((ci * k + kh) * k + kw) * hw, hw);
            var (owLo, owHi) = ValidColumns(kw, s, p, w, wo);
            for (int oh = 0; oh < ho; oh++)
            {
                var row = dst.Slice(oh * wo, wo);
                int ih = oh * s - p + kh;
                if (ih < 0 || ih >= h || owLo >= owHi) { row.Clear(); continue; }
                var src = x.Slice((ci * h + ih) * w, w);
                row[..owLo].Clear();
                row[owHi..].Clear();
                int iw0 = owLo * s - p + kw;
                if (s == 1) src.Slice(iw0, owHi - owLo).CopyTo(row[owLo..owHi]);
                else
                    for (int ow = owLo, iw = iw0; ow < owHi; ow++, iw += s) row[ow] = src[iw];
            }
        }
    }

    /// <summary>dx (Cin, H, W) += col2im(col (Cin·K·K, Ho·Wo)): the adjoint of <see cref="Forward"/>.</summary>
    public static void BackwardAdd(in ConvDesc d, ReadOnlySpan<float> col, Span<float> dx)
    {
        int k = d.K, s = d.Stride, p = d.Pad, h = d.H, w = d.W, ho = d.Ho, wo = d.Wo;
        int hw = ho * wo;
        for (int ci = 0; ci < d.Cin; ci++)
        for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++)
        {
            var src = col.Slice(((ci * k + kh) * k + kw) * hw, hw);
            var (owLo, owHi) = ValidColumns(kw, s, p, w, wo);
            if (owLo >= owHi) continue;
            for (int oh = 0; oh < ho; oh++)
            {
                int ih = oh * s - p + kh;
                if (ih < 0 || ih >= h) continue;
                var row = src.Slice(oh * wo, wo);
                var dst = dx.Slice((ci * h + ih) * w, w);
                int iw0 = owLo * s - p + kw;
                if (s == 1)
                {
                    var dseg = dst.Slice(iw0, owHi - owLo);
                    TensorPrimitives.Add(dseg, row[owLo..owHi], dseg);
                }
                else
                    for (int ow = owLo, iw = iw0; ow < owHi; ow++, iw += s) dst[iw] += row[ow];
            }
        }
    }

    /// <summary>Output columns [lo, hi) whose input column ow·S − P + kw lies inside [0, W).</summary>
    private static (int lo, int hi) ValidColumns(int kw, int s, int p, int w, int wo)
    {
        int lo = p - kw <= 0 ? 0 : (p - kw + s - 1) / s;
        int last = w - 1 + p - kw;
        int hi = last < 0 ? 0 : Math.Min(wo, last / s + 1);
        return (Math.Min(lo, hi), hi);
    }

    /// <summary>
    /// Packs GEMM B panels straight from one image (Cin, H, W): the same values as
    /// <see cref="Forward"/>'s column matrix, without ever writing that matrix. B row p = (ci, kh, kw),
    /// column j = output pixel. A 16-pixel panel inside one output row at stride 1 is two vector
    /// copies from the input row; edges and other strides go element by element. firstColumn offsets
    /// the pixels when a GEMM is split into column strips across threads.
    /// </summary>
    internal readonly unsafe struct PackB(float* x, ConvDesc d, int firstColumn) : Sgemm.IPackB
    {
        private static readonly Vector256<int> Lanes = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);

        public void Pack(int pc, int kc, int jc, int nc, float* dst)
        {
            const int NR = Sgemm.NR;
            int k = d.K, s = d.Stride, pad = d.Pad, h = d.H, w = d.W, wo = d.Wo;
            int* ihBase = stackalloc int[NR];
            int* iwBase = stackalloc int[NR];
            for (int jr = 0; jr < nc; jr += NR)
            {
                int nr = Math.Min(NR, nc - jr), j0 = firstColumn + jc + jr;
                for (int c = 0; c < nr; c++)
                {
                    ihBase[c] = (j0 + c) / wo * s - pad;
                    iwBase[c] = (j0 + c) % wo * s - pad;
                }
                // One output row, stride 1, full panel: the 16 inputs are contiguous.
                bool rowRun = s == 1 && nr == NR && j0 % wo + NR <= wo;
                float* dp = dst + (long)jr * kc;
                int ci = pc / (k * k), kh = pc / k % k, kw = pc % k;
                for (int p = 0; p < kc; p++, dp += NR)
                {
                    float* plane = x + (long)ci * h * w;
                    if (rowRun)
                    {
                        int ih = ihBase[0] + kh, iw = iwBase[0] + kw;
                        if ((uint)ih >= (uint)h) { Vector256.Store(Vector256<float>.Zero, dp); Vector256.Store(Vector256<float>.Zero, dp + 8); }
                        else if (iw >= 0 && iw + NR <= w)
                        {
                            float* src = plane + (long)ih * w + iw;
                            Vector256.Store(Vector256.Load(src), dp);
                            Vector256.Store(Vector256.Load(src + 8), dp + 8);
                        }
                        else if (Avx2.IsSupported)
                        {
                            // Row edge: masked loads zero the lanes outside [0, W) and, unlike plain
                            // loads, never fault on them (the run may start before the plane).
                            float* src = plane + (long)ih * w + iw;
                            var lane = Vector256.Create(iw) + Lanes;
                            var limit = Vector256.Create(w);
                            var m0 = Avx2.AndNot(Avx2.CompareGreaterThan(Vector256<int>.Zero, lane), Avx2.CompareGreaterThan(limit, lane));
                            lane += Vector256.Create(8);
                            var m1 = Avx2.AndNot(Avx2.CompareGreaterThan(Vector256<int>.Zero, lane), Avx2.CompareGreaterThan(limit, lane));
                            Vector256.Store(Avx.MaskLoad(src, m0.AsSingle()), dp);
                            Vector256.Store(Avx.MaskLoad(src + 8, m1.AsSingle()), dp + 8);
                        }
                        else
                        {
                            float* row = plane + (long)ih * w;
                            for (int c = 0; c < NR; c++, iw++) dp[c] = (uint)iw < (uint)w ? row[iw] : 0f;
                        }
                    }
                    else
                    {
                        int c = 0;
                        for (; c < nr; c++)
                        {
                            int ih = ihBase[c] + kh, iw = iwBase[c] + kw;
                            dp[c] = (uint)ih < (uint)h && (uint)iw < (uint)w ? plane[(long)ih * w + iw] : 0f;
                        }
                        for (; c < NR; c++) dp[c] = 0f;
                    }
                    if (++kw == k) { kw = 0; if (++kh == k) { kh = 0; ci++; } }
                }
            }
        }
    }
}
