using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// The column matrix that turns a convolution into one GEMM per image: row (ci·K + kh)·K + kw,
/// column oh·Wo + ow holds x[ci, oh·S − P + kh, ow·S − P + kw] (zero outside the image).
/// Rows are filled in runs of output columns so that stride 1 is a plain span copy.
/// </summary>
internal static partial class Im2Col
{
    private static readonly Vector256<int> Lane8 = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);

    /// <summary>Lanes i with 0 ≤ first + i &lt; limit (as a float mask for masked loads/stores).</summary>
    private static Vector256<float> InRange(int first, int limit)
    {
        var lane = Vector256.Create(first) + Lane8;
        return Avx2.AndNot(Avx2.CompareGreaterThan(Vector256<int>.Zero, lane),
                           Avx2.CompareGreaterThan(Vector256.Create(limit), lane)).AsSingle();
    }

    /// <summary>
    /// Stride 1 with AVX2: each output row is a run of the input row shifted by kw − P, copied 8 lanes
    /// at a time; masked loads zero (and never touch) the lanes that fall in the padding, a masked
    /// store writes a ragged tail. Small images (16 wide) are dominated by per-row overhead otherwise.
    /// </summary>
    private static unsafe void ForwardStride1(in ConvDesc d, float* x, float* col)
    {
        int k = d.K, p = d.Pad, h = d.H, w = d.W, ho = d.Ho, wo = d.Wo, hw = ho * wo;
        var tailMask = InRange(0, wo & 7);   // the first wo % 8 lanes
        for (int ci = 0; ci < d.Cin; ci++)
        for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++)
        {
            float* dst = col + (long)((ci * k + kh) * k + kw) * hw;
            int iw0 = kw - p;
            for (int oh = 0; oh < ho; oh++, dst += wo)
            {
                int ih = oh - p + kh;
                int c = 0;
                if ((uint)ih >= (uint)h)
                {
                    for (; c + 8 <= wo; c += 8) Vector256.Store(Vector256<float>.Zero, dst + c);
                    if (c < wo) Avx.MaskStore(dst + c, tailMask, Vector256<float>.Zero);
                    continue;
                }
                float* src = x + (long)(ci * h + ih) * w + iw0;
                for (; c + 8 <= wo; c += 8)
                {
                    int first = iw0 + c;
                    var v = first >= 0 &&
                        first + 8 <= w ? Vector256.Load(src + c) : Avx.MaskLoad(src + c, InRange(first, w));
                    Vector256.Store(v, dst + c);
                }
                if (c < wo)
                    Avx.MaskStore(dst + c, tailMask, Avx.MaskLoad(src + c, Avx.And(InRange(iw0 + c, w), tailMask)));
            }
        }
    }

    /// <summary>The adjoint of <see cref="ForwardStride1"/>: masked read-add-write of each input-row run.</summary>
    private static unsafe void BackwardAddStride1(in ConvDesc d, float* col, float* dx)
    {
        int k = d.K, p = d.Pad, h = d.H, w = d.W, ho = d.Ho, wo = d.Wo, hw = ho * wo;
        var tailMask = InRange(0, wo & 7);
        for (int ci = 0; ci < d.Cin; ci++)
        for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++)
        {
            float* src = col + (long)((ci * k + kh) * k + kw) * hw;
            int iw0 = kw - p;
            for (int oh = 0; oh < ho; oh++, src += wo)
            {
                int ih = oh - p + kh;
                if ((uint)ih >= (uint)h) continue;
                float* dst = dx + (long)(ci * h + ih) * w + iw0;
                int c = 0;
                for (; c + 8 <= wo; c += 8)
                {
                    int first = iw0 + c;
                    if (first >= 0 && first + 8 <= w)
                        Vector256.Store(Vector256.Load(dst + c) + Vector256.Load(src + c), dst + c);
                    else
                    {
                        var m = InRange(first, w);
                        Avx.MaskStore(dst + c, m, Avx.MaskLoad(dst + c, m) + Vector256.Load(src + c));
                    }
                }
                if (c < wo)
                {
                    var m = Avx.And(InRange(iw0 + c, w), tailMask);
                    Avx.MaskStore(dst + c, m, Avx.MaskLoad(dst + c, m) + Avx.MaskLoad(src + c, tailMask));
                }
            }
        }
    }

    /// <summary>col (Cin·K·K, Ho·Wo) = im2col(x (Cin, H, W)).</summary>
    public static unsafe void Forward(in ConvDesc d, ReadOnlySpan<float> x, Span<float> col)
    {
        if (d.Stride == 1 && Avx2.IsSupported)
        {
            if ((long)d.Cin * d.H * d.W > x.Length || (long)d.Cin * d.K * d.K * d.Ho * d.Wo > col.Length)
                throw new ArgumentException($"im2col: spans ({x.Length}, {col.Length}) too short for {d}");
            fixed (float* px = x, pc = col) ForwardStride1(d, px, pc);
            return;
        }
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
    public static unsafe void BackwardAdd(in ConvDesc d, ReadOnlySpan<float> col, Span<float> dx)
    {
        if (d.Stride == 1 && Avx2.IsSupported)
        {
            if ((long)d.Cin * d.H * d.W > dx.Length || (long)d.Cin * d.K * d.K * d.Ho * d.Wo > col.Length)
                throw new ArgumentException($"col2im: spans ({col.Length}, {dx.Length}) too short for {d}");
            fixed (float* pc = col, px = dx) BackwardAddStride1(d, pc, px);
            return;
        }
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

        public void Pack(SgemmPath path, int pc, int kc, int jc, int nc, float* dst)
        {
            const int NR = Sgemm.NR;
            int k = d.K, s = d.Stride, pad = d.Pad, h = d.H, w = d.W, wo = d.Wo;
            if (path == SgemmPath.Avx512 && s == 1)
            {
                for (int jr = 0; jr < nc; jr += NR)
                {
                    int nr = Math.Min(NR, nc - jr);
                    PackPanelStride1Avx512(x, d, firstColumn + jc + jr, nr, pc, kc, dst + (long)jr * kc);
                }
                return;
            }
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
                        if ((uint)ih >= (uint)h)
                        {
                            Vector256.Store(Vector256<float>.Zero, dp);
                            Vector256.Store(Vector256<float>.Zero, dp + 8);
                        }
                        else if (iw >= 0 && iw + NR <= w)
                        {
                            float* src = plane + (long)ih * w + iw;
                            Vector256.Store(Vector256.Load(src), dp);
                            Vector256.Store(Vector256.Load(src + 8), dp + 8);
                        }
                        else if (path != SgemmPath.Portable)
                        {
                            // Row edge: masked loads zero the lanes outside [0, W) and, unlike plain
                            // loads, never fault on them (the run may start before the plane).
                            float* src = plane + (long)ih * w + iw;
                            var lane = Vector256.Create(iw) + Lanes;
                            var limit = Vector256.Create(w);
                            var m0 = Avx2.AndNot(Avx2.CompareGreaterThan(Vector256<int>.Zero, lane),
                                                 Avx2.CompareGreaterThan(limit, lane));
                            lane += Vector256.Create(8);
                            var m1 = Avx2.AndNot(Avx2.CompareGreaterThan(Vector256<int>.Zero, lane),
                                                 Avx2.CompareGreaterThan(limit, lane));
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
