using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

public abstract class ResampleOpTests : BackendFixture
{
    // Naive double references, indexed exactly as the definitions read.
    private static double[] Upsample(double[] x, int nc, int h, int w)
    {
        var y = new double[nc * 4 * h * w];
        for (int p = 0; p < nc; p++)
            for (int i = 0; i < 2 * h; i++)
                for (int j = 0; j < 2 * w; j++)
                    y[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
        return y;
    }

    private static double[] AvgPool(double[] x, int nc, int h, int w)
    {
        int ho = h / 2, wo = w / 2;
        var y = new double[nc * ho * wo];
        for (int p = 0; p < nc; p++)
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++)
                {
                    double s = 0;
                    for (int di = 0; di < 2; di++)
                        for (int dj = 0; dj < 2; dj++) s += x[(p * h + 2 * i + di) * w + 2 * j + dj];
                    y[(p * ho + i) * wo + j] = s / 4;
                }
        return y;
    }

    [TestCase(2, 3, 4, 5)]
    [TestCase(1, 1, 1, 1)]
    [TestCase(3, 2, 7, 3)]
    [Covers("upsample2x", "avgpool2x")]
    public void Upsample2x(int n, int c, int h, int w)
    {
        var x = Input.Random(new Rng(21), n, c, h, w);
        OpCheck.Run(B, "upsample2x", t =>
        {
            var y = F.Upsample2x(t[0]);
            Assert.That(y.Shape, Is.EqualTo(new[] { n, c, 2 * h, 2 * w }));
            return y;
        }, r => Upsample(r[0], n * c, h, w), [x], atol: 0, rtol: 0);
    }

    [TestCase(2, 3, 4, 6)]
    [TestCase(1, 1, 2, 2)]
    [TestCase(3, 2, 8, 2)]
    [Covers("avgpool2x", "upsample2x")]
    public void AvgPool2x(int n, int c, int h, int w)
    {
        var x = Input.Random(new Rng(22), n, c, h, w);
        OpCheck.Run(B, "avg_pool2x", t =>
        {
            var y = F.AvgPool2x(t[0]);
            Assert.That(y.Shape, Is.EqualTo(new[] { n, c, h / 2, w / 2 }));
            return y;
        }, r => AvgPool(r[0], n * c, h, w), [x], atol: 1e-6, rtol: 1e-6);
    }

    [Test]
    public void UpThenPoolIsIdentity()
    {
        // The pool of a nearest upsample averages four copies: exact in float.
        using var scope = new TensorScope();
        var d = new float[2 * 3 * 5 * 4];
        new Rng(23).FillNormal(d);
        var x = Tensor.FromArray(B, d, 2, 3, 5, 4);
        Assert.That(F.AvgPool2x(F.Upsample2x(x)).ToArray(), Is.EqualTo(d));
    }

    [Test]
    public void FlopsAreCounted()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(B, new float[2 * 3 * 4 * 4].Select((_, i) => i * 0.5f).ToArray(), 2, 3, 4, 4);
        using var fc = new FlopCounter();
        F.AvgPool2x(x);
        F.Upsample2x(x);
        Assert.That(fc.ByOp["avg_pool2x"], Is.EqualTo(96));
        Assert.That(fc.ByOp["upsample2x"], Is.EqualTo(0)); // a copy: recorded, no arithmetic
    }

    [Test]
    public void BadInputsNameOpAndShape()
    {
        using var scope = new TensorScope();
        var odd = Tensor.Full(B, 1.5f, 1, 2, 5, 4);
        var ex = Assert.Throws<ArgumentException>(() => F.AvgPool2x(odd));
        Assert.That(ex!.Message, Does.Contain("avg_pool2x").And.Contain("(1, 2, 5, 4)"));
        ex = Assert.Throws<ArgumentException>(() => F.AvgPool2x(Tensor.Full(B, 1.5f, 1, 2, 4, 3)));
        Assert.That(ex!.Message, Does.Contain("avg_pool2x").And.Contain("(1, 2, 4, 3)"));
        ex = Assert.Throws<ArgumentException>(() => F.Upsample2x(Tensor.Full(B, 1.5f, 2, 4, 3)));
        Assert.That(ex!.Message, Does.Contain("upsample2x").And.Contain("(2, 4, 3)"));
        ex = Assert.Throws<ArgumentException>(() => F.AvgPool2x(Tensor.Full(B, 1.5f, 8, 8)));
        Assert.That(ex!.Message, Does.Contain("avg_pool2x").And.Contain("(8, 8)"));
    }
}
