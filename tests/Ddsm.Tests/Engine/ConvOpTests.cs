using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// Slimmable conv2d: forward and gradients against a naive float64 convolution, at active widths
/// below the weight's stored widths (down to 2/8 of it), for 3×3 stride 1 and 2, 1×1 and 5×5.
/// Two independent gradient checks: OpCheck's central differences (sampled elements; tolerances
/// atol 1e-4 + rtol 1e-3 forward, 2e-3 + 2e-3 gradients), and a complete comparison of every
/// element of dx, dW and dbias with the float64 analytic gradient (atol 1e-3 + rtol 1e-3: float sums
/// of ≤ 300 unit-variance products). Weight and bias elements outside the active prefix must get
/// exactly zero gradient.
/// </summary>
public abstract class ConvOpTests : BackendFixture
{
    private sealed record Shape(int N, int Cin, int H, int W, int Cout, int K, int Stride, int Pad, int CinMax,
                                int CoutMax)
    {
        public int Ho => (H + 2 * Pad - K) / Stride + 1;
        public int Wo => (W + 2 * Pad - K) / Stride + 1;
        public override string ToString() =>
            $"x ({N},{Cin},{H},{W}) w ({CoutMax},{CinMax},{K},{K}) cout {Cout} s{Stride} p{Pad}";
    }

    /// <summary>y = conv(x, w[:Cout, :Cin]) + bias[:Cout] in double.</summary>
    private static double[] RefForward(Shape s, double[] x, double[] w, double[]? bias)
    {
        var y = new double[s.N * s.Cout * s.Ho * s.Wo];
        for (int n = 0; n < s.N; n++)
        for (int co = 0; co < s.Cout; co++)
        for (int oh = 0; oh < s.Ho; oh++)
        for (int ow = 0; ow < s.Wo; ow++)
        {
            double acc = bias?[co] ?? 0;
            for (int ci = 0; ci < s.Cin; ci++)
            for (int kh = 0; kh < s.K; kh++)
            for (int kw = 0; kw < s.K; kw++)
            {
                int ih = oh * s.Stride - s.Pad + kh, iw = ow * s.Stride - s.Pad + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += w[((co * s.CinMax + ci) * s.K + kh) * s.K + kw] * x[((n * s.Cin + ci) * s.H + ih) * s.W + iw];
            }
            y[((n * s.Cout + co) * s.Ho + oh) * s.Wo + ow] = acc;
        }
        return y;
    }

    /// <summary>The analytic gradients of L = Σ g·y in double (whole weight/bias: zero outside the prefix).</summary>
    private static (double[] dx, double[] dw, double[] db) RefBackward(Shape s, double[] x, double[] w, double[] g)
    {
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[s.CoutMax];
        for (int n = 0; n < s.N; n++)
        for (int co = 0; co < s.Cout; co++)
        for (int oh = 0; oh < s.Ho; oh++)
        for (int ow = 0; ow < s.Wo; ow++)
        {
            double gv = g[((n * s.Cout + co) * s.Ho + oh) * s.Wo + ow];
            db[co] += gv;
            for (int ci = 0; ci < s.Cin; ci++)
            for (int kh = 0; kh < s.K; kh++)
            for (int kw = 0; kw < s.K; kw++)
            {
                int ih = oh * s.Stride - s.Pad + kh, iw = ow * s.Stride - s.Pad + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                int xi = ((n * s.Cin + ci) * s.H + ih) * s.W + iw, wi = ((co * s.CinMax + ci) * s.K + kh) * s.K + kw;
                dx[xi] += w[wi] * gv;
                dw[wi] += x[xi] * gv;
            }
        }
        return (dx, dw, db);
    }

    private static readonly Shape[] Shapes =
    [
        new(2, 8, 6, 6, 8, 3, 1, 1, 32, 32),     // narrowest slim case: 2/8 of a (32, 32, 3, 3) weight
        new(3, 7, 7, 9, 5, 3, 2, 1, 10, 12),     // 3×3 stride 2, odd non-square image, N > threads
        new(1, 9, 5, 4, 11, 1, 1, 0, 12, 16),    // 1×1 pointwise (the image is the column matrix), N = 1
        new(2, 9, 4, 8, 11, 1, 1, 0, 12, 16),    // 1×1 over whole 16-pixel panels: direct, the image as one row
        new(2, 6, 8, 8, 4, 1, 2, 0, 6, 4),       // 1×1 stride 2 (not pointwise: goes through im2col)
        new(2, 5, 6, 7, 3, 3, 1, 0, 5, 3),       // 3×3 no padding, full width
        new(2, 3, 7, 6, 4, 5, 1, 2, 4, 6),       // 5×5 pad 2: general odd K
        new(1, 48, 4, 4, 12, 3, 1, 1, 48, 16),   // Cin·K·K = 432 > one GEMM K block (KC = 384)
        new(1, 2, 3, 34, 3, 3, 1, 1, 2, 4),      // wide rows: 16-pixel panels at the left edge, inside, and across rows
        new(2, 5, 3, 16, 7, 3, 1, 1, 6, 9),      // rows of 16: direct weight gradient, 7 = 3 + 3 + 1 output channels
        new(2, 2, 3, 1024, 4, 3, 1, 1, 2, 4),    // rows of 64 vectors; one image per 4096-pixel weight-gradient block
        new(2, 5, 16, 16, 7, 3, 2, 1, 6, 9),     // stride 2 direct: output rows of 8, two per 16-pixel panel
        new(1, 3, 4, 64, 5, 3, 2, 1, 4, 6),      // stride 2 direct: output rows of 32 (two panels each)
        new(2, 6, 4, 32, 1, 3, 1, 1, 8, 2),      // one output channel (thin kernels): 8 panels, 4 a k step
        new(2, 5, 5, 48, 3, 3, 1, 1, 6, 4),      // three (RGB): 15 panels, the last step 3
        new(2, 9, 2, 40, 2, 1, 1, 0, 12, 4),     // 1×1, two: 5 panels, the last step 1
    ];

    private static IEnumerable<TestCaseData> Cases()
    {
        for (int i = 0; i < Shapes.Length; i++)
        {
            yield return new TestCaseData(i, true).SetArgDisplayNames(Shapes[i].ToString(), "bias");
            yield return new TestCaseData(i, false).SetArgDisplayNames(Shapes[i].ToString(), "no bias");
        }
    }

    private static float[] Random(Rng r, int n) { var a = new float[n]; r.FillNormal(a); return a; }

    [TestCaseSource(nameof(Cases))]
    [Covers("conv_fwd_f32", "conv_bwd_data_f32", "conv_bwd_weight_f32", "conv_wgrad_reduce")]
    public void MatchesFloat64Reference(int shapeIndex, bool withBias)
    {
        var s = Shapes[shapeIndex];
        var r = new Rng(100 + (ulong)shapeIndex * 2 + (withBias ? 1UL : 0UL));
        var x = Input.Random(r, s.N, s.Cin, s.H, s.W);
        var w = Input.Random(r, s.CoutMax, s.CinMax, s.K, s.K);
        var b = Input.Random(r, s.CoutMax);
        Input[] inputs = withBias ? [x, w, b] : [x, w];
        Func<Tensor[], Tensor> op = t => F.Conv2d(t[0], t[1], withBias ? t[2] : null, s.Cout, s.Stride, s.Pad);
        OpCheck.Run(B, $"conv2d {s}", op, v => RefForward(s, v[0], v[1], withBias ? v[2] : null), inputs);

        // Every gradient element against the float64 analytic gradient, and exact zeros outside the prefix.
        using var scope = new TensorScope();
        var tx = Tensor.FromArray(B, x.Data, x.Shape); tx.RequiresGrad = true;
        var tw = Tensor.FromArray(B, w.Data, w.Shape); tw.RequiresGrad = true;
        var tb = Tensor.FromArray(B, b.Data, b.Shape); tb.RequiresGrad = withBias;
        var y = F.Conv2d(tx, tw, withBias ? tb : null, s.Cout, s.Stride, s.Pad);
        Assert.That(y.Shape, Is.EqualTo(new[] { s.N, s.Cout, s.Ho, s.Wo }));
        var g = Random(r, (int)y.Length);
        Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(B, g, y.Shape))));
        var (dx, dw, db) = RefBackward(s, D(x.Data), D(w.Data), D(g));
        OpCheck.AssertClose($"conv2d {s} dx", tx.Grad!.ToArray(), dx, 1e-3, 1e-3);
        var gw = tw.Grad!.ToArray();
        OpCheck.AssertClose($"conv2d {s} dW", gw, dw, 1e-3, 1e-3);
        for (int co = 0; co < s.CoutMax; co++)
        for (int ci = 0; ci < s.CinMax; ci++)
        for (int q = 0; q < s.K * s.K; q++)
            if ((co >= s.Cout || ci >= s.Cin) && gw[(co * s.CinMax + ci) * s.K * s.K + q] != 0f)
                Assert.Fail($"conv2d {s}: dW[{co},{ci}] outside the active prefix is " +
                            $"{gw[(co * s.CinMax + ci) * s.K * s.K + q]}, want exactly 0");
        if (withBias)
        {
            var gb = tb.Grad!.ToArray();
            OpCheck.AssertClose($"conv2d {s} dbias", gb, db, 1e-3, 1e-3);
            for (int co = s.Cout; co < s.CoutMax; co++)
                Assert.That(gb[co], Is.EqualTo(0f), $"dbias[{co}] outside the prefix");
        }
        else Assert.That(tb.Grad, Is.Null);
    }

    /// <summary>
    /// One image big enough that each GEMM is split across threads (N = 1 &lt; threads): forward, dx, dW
    /// and dbias against the float64 reference (same tolerances as above).
    /// </summary>
    [Test]
    [Covers("conv_fwd_f32", "conv_bwd_data_f32", "conv_bwd_weight_f32", "conv_wgrad_reduce", "conv_bias_grad")]
    public void SingleLargeImageSplitsGemmAcrossThreads()
    {
        var s = new Shape(1, 16, 16, 32, 16, 3, 1, 1, 24, 20);   // 32-wide rows: 16-pixel runs touching the left and
                                                                 // the right edge
        var r = new Rng(300);
        using var scope = new TensorScope();
        var xd = Random(r, s.N * s.Cin * s.H * s.W);
        var wd = Random(r, s.CoutMax * s.CinMax * 9);
        var bd = Random(r, s.CoutMax);
        var x = Tensor.FromArray(B, xd, s.N, s.Cin, s.H, s.W); x.RequiresGrad = true;
        var w = Tensor.FromArray(B, wd, s.CoutMax, s.CinMax, 3, 3); w.RequiresGrad = true;
        var b = Tensor.FromArray(B, bd, s.CoutMax); b.RequiresGrad = true;
        var y = F.Conv2d(x, w, b, s.Cout);
        OpCheck.AssertClose($"conv2d {s} forward", y.ToArray(), RefForward(s, D(xd), D(wd), D(bd)), 1e-4, 1e-3);
        var g = Random(r, (int)y.Length);
        Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(B, g, y.Shape))));
        var (dx, dw, db) = RefBackward(s, D(xd), D(wd), D(g));
        OpCheck.AssertClose($"conv2d {s} dx", x.Grad!.ToArray(), dx, 1e-3, 1e-3);
        OpCheck.AssertClose($"conv2d {s} dW", w.Grad!.ToArray(), dw, 1e-3, 1e-3);
        OpCheck.AssertClose($"conv2d {s} dbias", b.Grad!.ToArray(), db, 1e-3, 1e-3);
    }

    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();

    [Test]
    public void GradientsAccumulateAcrossBackwardCalls()
    {
        var s = Shapes[0];
        var r = new Rng(200);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(B, Random(r, s.N * s.Cin * s.H * s.W), s.N, s.Cin, s.H, s.W); x.RequiresGrad = true;
        var w = Tensor.FromArray(B, Random(r, s.CoutMax * s.CinMax * 9), s.CoutMax, s.CinMax, 3, 3);
        w.RequiresGrad = true;
        var b = Tensor.FromArray(B, Random(r, s.CoutMax), s.CoutMax); b.RequiresGrad = true;
        var g = Random(r, s.N * s.Cout * s.H * s.W);
        float[][] Pass()
        {
            var y = F.Conv2d(x, w, b, s.Cout);
            Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(B, g, y.Shape))));
            return [x.Grad!.ToArray(), w.Grad!.ToArray(), b.Grad!.ToArray()];
        }
        var once = Pass();
        Assert.That(once[1].Any(v => v != 0f), Is.True, "dW is not all zero");
        // Deterministic: the same backward from zeroed gradients gives bit-identical results.
        x.ZeroGrad(); w.ZeroGrad(); b.ZeroGrad();
        var again = Pass();
        for (int k = 0; k < 3; k++) Assert.That(again[k], Is.EqualTo(once[k]), $"gradient {k} is not reproducible");
        // Accumulating: a second call without zeroing doubles every gradient (up to float rounding
        // of the running sums, |err| ≤ 1e-5 + 1e-6·|ref|).
        var twice = Pass();
        for (int k = 0; k < 3; k++)
            OpCheck.AssertClose($"gradient {k} after two backward calls", twice[k],
                                once[k].Select(v => 2.0 * v).ToArray(), 1e-5, 1e-6);
    }

    [Test]
    public void BadInputNamesOpAndShapes()
    {
        using var scope = new TensorScope();
        var w = Tensor.Zeros(B, 16, 8, 3, 3);
        var ex = Assert.Throws<ArgumentException>(() => F.Conv2d(Tensor.Zeros(B, 1, 9, 4, 4), w, null, 8));
        Assert.That(ex!.Message, Does.Contain("conv2d").And.Contain("(1, 9, 4, 4)").And.Contain("(16, 8, 3, 3)"));
        ex = Assert.Throws<ArgumentException>(() => F.Conv2d(Tensor.Zeros(B, 1, 8, 4, 4), w, null, 17));
        Assert.That(ex!.Message, Does.Contain("conv2d").And.Contain("17").And.Contain("(16, 8, 3, 3)"));
        ex = Assert.Throws<ArgumentException>(() => F.Conv2d(Tensor.Zeros(B, 1, 8, 4, 4), w, Tensor.Zeros(B, 8), 8));
        Assert.That(ex!.Message, Does.Contain("conv2d").And.Contain("bias").And.Contain("(8)"));
        ex = Assert.Throws<ArgumentException>(() => F.Conv2d(Tensor.Zeros(B, 8, 4, 4), w, null, 8));
        Assert.That(ex!.Message, Does.Contain("conv2d").And.Contain("(8, 4, 4)"));
        ex = Assert.Throws<ArgumentException>(() =>
            F.Conv2d(Tensor.Zeros(B, 1, 8, 4, 4), Tensor.Zeros(B, 16, 8, 3, 1), null, 8));
        Assert.That(ex!.Message, Does.Contain("conv2d").And.Contain("(16, 8, 3, 1)"));
        using var other = new CpuBackend();
        var xOther = Tensor.Zeros(other, 1, 8, 4, 4);
        ex = Assert.Throws<ArgumentException>(() => F.Conv2d(xOther, w, null, 8));
        Assert.That(ex!.Message, Does.Contain("conv2d").And.Contain("(1, 8, 4, 4)").And.Contain("(16, 8, 3, 3)"));
    }
}
