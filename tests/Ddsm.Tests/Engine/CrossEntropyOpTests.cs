using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// Mean cross-entropy against a float64 reference written the naive way (log of the softmax ratio,
/// no max shift: fine for the moderate logits used here). Tolerances: forward 1e-5 + 1e-5·|ref|
/// (the op works in double and rounds once); gradient vs central differences 1e-4 + 1e-3·|ref|.
/// </summary>
public abstract class CrossEntropyOpTests : BackendFixture
{
    private static double[] Reference(double[] z, int[] y, int n, int k)
    {
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(z[i * k + j]);
            loss += -Math.Log(Math.Exp(z[i * k + y[i]]) / sum);
        }
        return [loss / n];
    }

    [TestCase(1, 2)]
    [TestCase(5, 10)]
    [TestCase(16, 3)]
    [TestCase(7, 1)]
    [Covers("cross_entropy")]
    public void ForwardAndGradient(int n, int k)
    {
        var r = new Rng((ulong)(n * 131 + k));
        var y = Enumerable.Range(0, n).Select(_ => r.NextInt(k)).ToArray();
        var z = Input.Random(r, n, k);
        for (int i = 0; i < z.Data.Length; i++) z.Data[i] *= 3f; // spread the softmax away from uniform
        OpCheck.Run(B, $"cross_entropy N={n} K={k}", t => F.CrossEntropy(t[0], y), v => Reference(v[0], y, n, k), [z],
            atol: 1e-5, rtol: 1e-5, gradAtol: 1e-4, gradRtol: 1e-3);
    }

    [Test]
    public void StableForHugeLogitsAndKnownValue()
    {
        using var scope = new TensorScope();
        // Row 0: logits shifted by 1e4 (a naive exp overflows); row 1: uniform over 4 → log 4.
        var z = Tensor.FromArray(B, [10000f, 10001f, 10002f, 10003f, 0.5f, 0.5f, 0.5f, 0.5f], 2, 4);
        z.RequiresGrad = true;
        var loss = F.CrossEntropy(z, [3, 1]);
        double row0 = -(3 - Math.Log(1 + Math.Exp(1) + Math.Exp(2) + Math.Exp(3)));
        Assert.That(loss.Item(), Is.EqualTo((row0 + Math.Log(4)) / 2).Within(1e-6));
        Tape.Backward(loss);
        var g = z.Grad!.ToArray();
        Assert.That(g.All(float.IsFinite), "gradient finite at logits of 1e4");
        // Each row's gradient sums to 0 (softmax sums to 1, one-hot sums to 1); uniform row: (¼ − [j=1])/2.
        Assert.That(g.Take(4).Sum(), Is.EqualTo(0).Within(1e-6));
        Assert.That(g.Skip(4), Is.EqualTo(new[] { 0.125f, -0.375f, 0.125f, 0.125f }).Within(1e-6f));
    }

    [Test]
    public void GradientAccumulatesAcrossBackwardPasses()
    {
        using var scope = new TensorScope();
        var r = new Rng(5);
        var data = new float[12];
        r.FillNormal(data);
        var z = Tensor.Parameter(B, "z", data, 3, 4);
        try
        {
            Tape.Backward(F.CrossEntropy(z, [0, 2, 3]));
            var once = z.Grad!.ToArray();
            Tape.Backward(F.CrossEntropy(z, [0, 2, 3]));
            Assert.That(z.Grad!.ToArray(), Is.EqualTo(once.Select(v => 2 * v).ToArray()).Within(1e-6f));
        }
        finally { z.Dispose(); }
    }

    [Test]
    public void BadArgumentsNameTheOpAndShape()
    {
        using var scope = new TensorScope();
        var z = Tensor.Full(B, 1f, 2, 3);
        var ex = Assert.Throws<ArgumentException>(() => F.CrossEntropy(z, [0]));
        Assert.That(ex!.Message, Does.Contain("cross_entropy").And.Contain("(2, 3)"));
        ex = Assert.Throws<ArgumentException>(() => F.CrossEntropy(z, [0, 3]));
        Assert.That(ex!.Message, Does.Contain("label 3"));
        ex = Assert.Throws<ArgumentException>(() => F.CrossEntropy(z, [0, -1]));
        Assert.That(ex!.Message, Does.Contain("label -1"));
        ex = Assert.Throws<ArgumentException>(() => F.CrossEntropy(Tensor.Full(B, 1f, 6), [0, 1, 2, 0, 1, 2]));
        Assert.That(ex!.Message, Does.Contain("rank 2"));
    }
}
