using System.Runtime.CompilerServices;
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
    /// What im2col and col2im do with one column-matrix row (Wo floats at <paramref name="colRow"/>) and the
    /// input row it maps to (W floats at <paramref name="imageRow"/>; null where that row is padding).
    /// </summary>
    private unsafe interface IRowOp
    {
        void Row(float* colRow, float* imageRow, int kw);
    }

    /// <summary>
    /// The loop nest im2col and col2im share: column-matrix row (ci, kh, kw), output row oh, and the input row
    /// ih = oh·S − P + kh it reads. The ops hold every per-call constant and inline into this loop: at 16² a
    /// row is two vectors, so anything done per row (a pin, a call, a recomputed mask) is measurable.
    /// </summary>
    private static unsafe void ForEachRow<TOp>(in ConvDesc d, float* image, float* col, TOp op)
        where TOp : struct, IRowOp
    {
        int k = d.K, s = d.Stride, p = d.Pad, h = d.H, w = d.W, ho = d.Ho, wo = d.Wo;
        float* colRow = col;
        for (int ci = 0; ci < d.Cin; ci++)
        for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++)
        {
            float* plane = image + (long)ci * h * w;
            for (int oh = 0, ih = kh - p; oh < ho; oh++, ih += s, colRow += wo)
                op.Row(colRow, (uint)ih < (uint)h ? plane + (long)ih * w : null, kw);
        }
    }

    /// <summary>
    /// Both spans hold what <paramref name="d"/> needs of them (the row ops do not check); true where the
    /// AVX2 stride-1 path applies: the row is a run of the input row shifted by kw − P, moved 8 lanes at a time;
    /// masked loads zero (and never touch) the lanes in the padding, a masked store writes a ragged tail.
    /// </summary>
    private static bool CheckSpans(in ConvDesc d, int image, int col, string what)
    {
        if ((long)d.Cin * d.H * d.W > image || (long)d.Cin * d.K * d.K * d.Ho * d.Wo > col)
            throw new ArgumentException($"{what}: spans (image {image}, columns {col}) too short for {d}");
        return d.Stride == 1 && Avx2.IsSupported;
    }

    /// <summary>im2col: the row's pixels inside the image copied, the rest zeroed.</summary>
    private readonly unsafe struct ToColumns(ConvDesc d, bool vector) : IRowOp
    {
        private readonly int _w = d.W, _wo = d.Wo, _pad = d.Pad, _stride = d.Stride;
        private readonly Vector256<float> _tail = vector ? InRange(0, d.Wo & 7) : default;   // first wo % 8 lanes

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Row(float* colRow, float* imageRow, int kw)
        {
            if (!vector) { AnyStrideRow(colRow, imageRow, kw); return; }
            int wo = _wo, w = _w, iw0 = kw - _pad, c = 0;
            if (imageRow == null)
            {
                for (; c + 8 <= wo; c += 8) Vector256.Store(Vector256<float>.Zero, colRow + c);
                if (c < wo) Avx.MaskStore(colRow + c, _tail, Vector256<float>.Zero);
                return;
            }
            float* src = imageRow + iw0;
            for (; c + 8 <= wo; c += 8)
            {
                int first = iw0 + c;
                var v = first >= 0 &&
                    first + 8 <= w ? Vector256.Load(src + c) : Avx.MaskLoad(src + c, InRange(first, w));
                Vector256.Store(v, colRow + c);
            }
            if (c < wo) Avx.MaskStore(colRow + c, _tail, Avx.MaskLoad(src + c, Avx.And(InRange(iw0 + c, w), _tail)));
        }

        private void AnyStrideRow(float* colRow, float* imageRow, int kw)
        {
            var row = new Span<float>(colRow, _wo);
            var (lo, hi) = ValidColumns(kw, _stride, _pad, _w, _wo);
            if (imageRow == null || lo >= hi) { row.Clear(); return; }
            row[..lo].Clear();
            row[hi..].Clear();
            int iw0 = lo * _stride - _pad + kw;
            if (_stride == 1) new ReadOnlySpan<float>(imageRow + iw0, hi - lo).CopyTo(row[lo..hi]);
            else
                for (int ow = lo, iw = iw0; ow < hi; ow++, iw += _stride) row[ow] = imageRow[iw];
        }
    }

    /// <summary>col2im, the adjoint of <see cref="ToColumns"/>: the row's pixels inside the image added back.</summary>
    private readonly unsafe struct FromColumns(ConvDesc d, bool vector) : IRowOp
    {
        private readonly Vector256<float> _tail = vector ? InRange(0, d.Wo & 7) : default;
        private readonly int _stride = d.Stride, _pad = d.Pad, _wo = d.Wo, _w = d.W;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Row(float* colRow, float* imageRow, int kw)
        {
            if (imageRow == null) return;
            if (!vector) { AnyStrideRow(colRow, imageRow, kw); return; }
            int wo = _wo, w = _w, iw0 = kw - _pad, c = 0;
            float* dst = imageRow + iw0;
            for (; c + 8 <= wo; c += 8)
            {
                int first = iw0 + c;
                if (first >= 0 && first + 8 <= w)
                    Vector256.Store(Vector256.Load(dst + c) + Vector256.Load(colRow + c), dst + c);
                else
                {
                    var m = InRange(first, w);
                    Avx.MaskStore(dst + c, m, Avx.MaskLoad(dst + c, m) + Vector256.Load(colRow + c));
                }
            }
            if (c < wo)
            {
                var m = Avx.And(InRange(iw0 + c, w), _tail);
                Avx.MaskStore(dst + c, m, Avx.MaskLoad(dst + c, m) + Avx.MaskLoad(colRow + c, _tail));
            }
        }

        private void AnyStrideRow(float* colRow, float* imageRow, int kw)
        {
            var (lo, hi) = ValidColumns(kw, _stride, _pad, _w, _wo);
            int iw0 = lo * _stride - _pad + kw;
            if (_stride == 1)
            {
                var dst = new Span<float>(imageRow + iw0, hi - lo);
                TensorPrimitives.Add(dst, new ReadOnlySpan<float>(colRow + lo, hi - lo), dst);
            }
            else
                for (int ow = lo, iw = iw0; ow < hi; ow++, iw += _stride) imageRow[iw] += colRow[ow];
        }
    }

    /// <summary>col (Cin·K·K, Ho·Wo) = im2col(x (Cin, H, W)).</summary>
    public static unsafe void Forward(in ConvDesc d, ReadOnlySpan<float> x, Span<float> col)
    {
        bool vector = CheckSpans(d, x.Length, col.Length, "im2col");
        fixed (float* px = x, pc = col) ForEachRow(d, px, pc, new ToColumns(d, vector));
    }

    /// <summary>dx (Cin, H, W) += col2im(col (Cin·K·K, Ho·Wo)): the adjoint of <see cref="Forward"/>.</summary>
    public static unsafe void BackwardAdd(in ConvDesc d, ReadOnlySpan<float> col, Span<float> dx)
    {
        bool vector = CheckSpans(d, dx.Length, col.Length, "col2im");
        fixed (float* pc = col, px = dx) ForEachRow(d, px, pc, new FromColumns(d, vector));
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
