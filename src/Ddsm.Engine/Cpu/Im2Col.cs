using System.Numerics.Tensors;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// The column matrix that turns a convolution into one GEMM per image: row (ci·K + kh)·K + kw,
/// column oh·Wo + ow holds x[ci, oh·S − P + kh, ow·S − P + kw] (zero outside the image).
/// Rows are filled in runs of output columns so that stride 1 is a plain span copy.
/// </summary>
internal static class Im2Col
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
}
