using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The CPU column matrix directly: every element written (the buffer starts as NaN), equal to the
/// definition x[ci, oh·S − P + kh, ow·S − P + kw] or 0 (exact: it is a copy), and col2im is its
/// adjoint: ⟨col2im(c), x⟩ = ⟨c, im2col(x)⟩ within 1e-5·Σ|terms| (col2im adds into a random float dx,
/// whose rounding is ~1e-7 relative; a missed or doubled element is O(1)).
/// Widths that are not multiples of 8 exercise the masked tails, padding ≥ 1 the masked edges.
/// </summary>
[TestFixture]
public class Im2ColTests
{
    [TestCase(2, 5, 7, 3, 1, 1)]
    [TestCase(3, 6, 34, 3, 1, 1)]
    [TestCase(2, 4, 19, 3, 1, 2)]
    [TestCase(2, 9, 11, 3, 2, 1)]
    [TestCase(1, 8, 16, 5, 1, 2)]
    [TestCase(2, 3, 10, 1, 2, 0)]
    [TestCase(1, 5, 5, 3, 1, 0)]
    public void MatchesDefinitionAndAdjoint(int cin, int h, int w, int k, int stride, int pad)
    {
        var d = new ConvDesc(1, cin, h, w, 1, k, stride, pad, cin, 1);
        int rows = cin * k * k, hw = d.Ho * d.Wo;
        var rng = new Rng((ulong)(cin * 1000 + h * 100 + w * 10 + k + stride + pad));
        var x = new float[cin * h * w]; rng.FillNormal(x);
        var col = new float[rows * hw + 5];
        Array.Fill(col, float.NaN);
        Im2Col.Forward(d, x, col);
        for (int ci = 0; ci < cin; ci++)
        for (int kh = 0; kh < k; kh++)
        for (int kw = 0; kw < k; kw++)
        for (int oh = 0; oh < d.Ho; oh++)
        for (int ow = 0; ow < d.Wo; ow++)
        {
            int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
            float want = ih < 0 || ih >= h || iw < 0 || iw >= w ? 0f : x[(ci * h + ih) * w + iw];
            float got = col[((ci * k + kh) * k + kw) * hw + oh * d.Wo + ow];
            if (got != want) Assert.Fail($"im2col {d}: row ({ci},{kh},{kw}) pixel ({oh},{ow}) got {got} want {want}");
        }
        Assert.That(col.Skip(rows * hw).All(float.IsNaN), Is.True, "im2col wrote past the column matrix");

        var c = new float[rows * hw]; rng.FillNormal(c);
        var dx = new float[x.Length + 3]; rng.FillNormal(dx);
        var dx0 = (float[])dx.Clone();
        Im2Col.BackwardAdd(d, c, dx);
        double lhs = 0, rhs = 0, mag = 0;
        for (int i = 0; i < x.Length; i++)
        {
            lhs += (double)(dx[i] - dx0[i]) * x[i];
            mag += Math.Abs((dx[i] - dx0[i]) * x[i]);
        }
        for (int i = 0; i < c.Length; i++) rhs += (double)c[i] * col[i];
        Assert.That(lhs, Is.EqualTo(rhs).Within(1e-5 * (mag + 1)), $"col2im is not the adjoint of im2col for {d}");
        Assert.That(dx.Skip(x.Length), Is.EqualTo(dx0.Skip(x.Length)), "col2im wrote past dx");
    }
}
