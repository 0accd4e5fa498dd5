using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

public abstract class MiscOpTests : BackendFixture
{
    // ---- timestep embedding ----------------------------------------------------------------------

    /// <summary>ADM's formula in double, written with Pow (the kernel uses Exp/Log).</summary>
    private static double[] EmbeddingRef(float[] ts, int dim, double maxPeriod)
    {
        int half = dim / 2;
        var y = new double[ts.Length * dim];
        for (int b = 0; b < ts.Length; b++)
            for (int j = 0; j < half; j++)
            {
                double a = ts[b] * Math.Pow(maxPeriod, -(double)j / half);
                y[b * dim + j] = Math.Cos(a);
                y[b * dim + half + j] = Math.Sin(a);
            }
        return y; // an odd dim's last column stays 0
    }

    [TestCase(8, 10000f)]
    [TestCase(7, 10000f)]
    [TestCase(128, 10000f)]
    [TestCase(33, 500f)]
    [TestCase(2, 10000f)]
    [TestCase(1, 10000f)]
    [Covers("timestep_embedding")]
    public void TimestepEmbeddingMatchesReference(int dim, float maxPeriod)
    {
        var ts = new[] { 0f, 1f, 999f, 537.25f, 3.5f };
        using var scope = new TensorScope();
        var t = Tensor.FromArray(B, ts, ts.Length);
        var y = F.TimestepEmbedding(t, dim, maxPeriod);
        Assert.That(y.Shape, Is.EqualTo(new[] { ts.Length, dim }));
        // Values are cos/sin in [−1, 1] computed in double and rounded: within a few float ulps.
        OpCheck.AssertClose($"timestep_embedding dim {dim}", y.ToArray(), EmbeddingRef(ts, dim, maxPeriod), 2e-6, 0);
    }

    [Test]
    public void TimestepEmbeddingKnownValues()
    {
        // t = 1, dim 4: frequencies 1 and 10000^(−1/2) = 0.01.
        using var scope = new TensorScope();
        var y = F.TimestepEmbedding(Tensor.FromArray(B, [1f, 0f], 2), 4).ToArray();
        Assert.That(y,
                    Is.EqualTo(new[] { 0.5403023f, 0.99995f, 0.84147096f, 0.0099998331f, 1f, 1f, 0f, 0f })
                        .Within(1e-6f));
    }

    [Test]
    public void TimestepEmbeddingRecordsNoGradient()
    {
        using var scope = new TensorScope();
        var t = Tensor.FromArray(B, [3f, 40f], 2);
        t.RequiresGrad = true;
        using var fc = new FlopCounter();
        var y = F.TimestepEmbedding(t, 6);
        Assert.That(y.RequiresGrad, Is.False);
        Assert.That(fc.ByOp["timestep_embedding"], Is.EqualTo(2 * 2 * 6));
    }

    [Test]
    public void TimestepEmbeddingBadArguments()
    {
        using var scope = new TensorScope();
        var ex = Assert.Throws<ArgumentException>(() => F.TimestepEmbedding(Tensor.Full(B, 2f, 2, 3), 8));
        Assert.That(ex!.Message, Does.Contain("timestep_embedding").And.Contain("(2, 3)"));
        ex = Assert.Throws<ArgumentException>(() => F.TimestepEmbedding(Tensor.Full(B, 2f, 2), 0));
        Assert.That(ex!.Message, Does.Contain("timestep_embedding"));
        ex = Assert.Throws<ArgumentException>(() => F.TimestepEmbedding(Tensor.Full(B, 2f, 2), 4, 0f));
        Assert.That(ex!.Message, Does.Contain("timestep_embedding"));
    }

    // ---- dropout ---------------------------------------------------------------------------------

    /// <summary>The mask from its definition: keep iff hash(seed, i) ≥ p·2³².</summary>
    private static bool Keep(ulong seed, long i, float p) =>
        Rng.Hash(seed, (ulong)i) >= (uint)((double)p * 4294967296.0);

    [TestCase(0.25f)]
    [TestCase(0.5f)]
    [Covers("dropout", "binary")]
    public void DropoutMatchesDefinitionAndGradient(float p)
    {
        const ulong seed = 1234;
        var x = Input.Random(new Rng(31), 3, 4, 5);
        OpCheck.Run(B, $"dropout p={p}", t => F.Dropout(t[0], p, seed, training: true),
            r => r[0].Select((v, i) => Keep(seed, i, p) ? v / (1 - p) : 0).ToArray(), [x]);
    }

    [TestCase(0.1f)]
    [TestCase(0.5f)]
    [TestCase(0.9f)]
    public void DropoutStatistics(float p)
    {
        int n = Small ? 20_000 : 100_000;   // the tolerances below scale with 1/√n
        const float c = 1.7f;
        using var scope = new TensorScope();
        var x = Tensor.Full(B, c, n);
        x.RequiresGrad = true;
        var y = F.Dropout(x, p, seed: 77, training: true);
        var ya = y.ToArray();
        int kept = ya.Count(v => v != 0f);
        double keepFrac = kept / (double)n;
        // Binomial: σ(keep fraction) = √(p(1−p)/n) ≤ 0.0016; allow 5σ.
        double sigma = Math.Sqrt(p * (1 - p) / n);
        Assert.That(keepFrac, Is.EqualTo(1 - p).Within(5 * sigma), "keep fraction");
        // E[y] = x: mean(y)/c = keepFrac/(1−p), whose σ is σ/(1−p).
        Assert.That(ya.Average(v => (double)v) / c, Is.EqualTo(1.0).Within(5 * sigma / (1 - p)), "mean scale");
        float keptValue = c * (1f / (1f - p));
        Assert.That(ya.Where(v => v != 0f).All(v => v == keptValue), Is.True, "kept values are x/(1−p)");

        // The gradient is the mask: with dy = 1, dx[i] = y[i]/x[i] exactly.
        Tape.Backward(F.Sum(y));
        var gx = x.Grad!.ToArray();
        for (int i = 0; i < n; i++)
            if (gx[i] * c != ya[i]) Assert.Fail($"dropout grad [{i}] = {gx[i]}, y = {ya[i]}");
    }

    [Test]
    public void DropoutSeedDecidesTheMask()
    {
        const int n = 20_000;
        using var scope = new TensorScope();
        var d = new float[n];
        new Rng(32).FillNormal(d);
        var x = Tensor.FromArray(B, d, n);
        var a = F.Dropout(x, 0.5f, 5, true).ToArray();
        var b = F.Dropout(x, 0.5f, 5, true).ToArray();
        var c = F.Dropout(x, 0.5f, 6, true).ToArray();
        Assert.That(b, Is.EqualTo(a), "same seed, same mask");
        // Independent masks at p = 0.5 disagree on half the elements (σ = 0.0035).
        double differ = Enumerable.Range(0, n).Count(i => (a[i] == 0f) != (c[i] == 0f)) / (double)n;
        Assert.That(differ, Is.EqualTo(0.5).Within(0.02), "different seed, different mask");
    }

    [Test]
    public void DropoutOffIsAView()
    {
        using var scope = new TensorScope();
        var d = new float[12];
        new Rng(33).FillNormal(d);
        var x = Tensor.FromArray(B, d, 3, 4);
        x.RequiresGrad = true;
        using var fc = new FlopCounter();
        foreach (var (p, training) in new[] { (0.3f, false), (0f, true) })
        {
            var y = F.Dropout(x, p, 9, training);
            Assert.That(y, Is.Not.SameAs(x));
            Assert.That(y.Shape, Is.EqualTo(x.Shape));
            Assert.That(y.ToArray(), Is.EqualTo(d));
            Tape.Backward(F.Sum(y)); // the gradient still reaches x
            y.Dispose();             // the caller owns the view: disposing it leaves x intact
            Assert.That(x.IsDisposed, Is.False);
            Assert.That(x.ToArray(), Is.EqualTo(d));
        }
        Assert.That(x.Grad!.ToArray(), Is.All.EqualTo(2f));
        Assert.That(fc.ByOp.ContainsKey("dropout"), Is.False, "no kernel ran");
        F.Dropout(x, 0.3f, 9, true);
        Assert.That(fc.ByOp["dropout"], Is.EqualTo(12));
    }

    [TestCase(-0.1f)]
    [TestCase(1f)]
    [TestCase(float.NaN)]
    public void DropoutRejectsBadP(float p)
    {
        using var scope = new TensorScope();
        var x = Tensor.Full(B, 1f, 2, 3);
        var ex = Assert.Throws<ArgumentException>(() => F.Dropout(x, p, 1, true));
        Assert.That(ex!.Message, Does.Contain("dropout").And.Contain("(2, 3)"));
        Assert.Throws<ArgumentException>(() => F.Dropout(x, p, 1, false), "checked even when off");
    }
}
