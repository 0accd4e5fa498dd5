using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// Slimmable linear y = x·W[:out, :in]ᵀ + b[:out] against a float64 reference.
/// Tolerances: forward |err| ≤ 1e-4 + 1e-4·|ref|; gradients ≤ 1e-3 + 1e-3·|ref| (sums of ≤ 40 products).
/// </summary>
public abstract class LinearOpTests : BackendFixture
{
    internal static double[] Reference(double[] x, double[] w, double[]? b, int n, int inF, int outF, int inMax)
    {
        var y = new double[n * outF];
        for (int i = 0; i < n; i++)
            for (int o = 0; o < outF; o++)
            {
                double s = b?[o] ?? 0;
                for (int k = 0; k < inF; k++) s += x[i * inF + k] * w[o * inMax + k];
                y[i * outF + o] = s;
            }
        return y;
    }

    // (inMax, outMax, in, out, bias)
    [TestCase(24, 20, 24, 20, true)]
    [TestCase(24, 20, 6, 5, true)]
    [TestCase(24, 20, 6, 5, false)]
    [TestCase(40, 32, 17, 32, true)]
    [TestCase(16, 48, 16, 13, false)]
    public void ForwardAndGradients(int inMax, int outMax, int inF, int outF, bool bias)
    {
        var r = new Rng((ulong)(inMax * 7919 + outMax * 31 + inF * 3 + outF + (bias ? 1 : 0)));
        int n = 1 + r.NextInt(4);
        var inputs = new List<Input> { Input.Random(r, n, inF), Input.Random(r, outMax, inMax) };
        if (bias) inputs.Add(Input.Random(r, outMax));
        OpCheck.Run(B, $"linear N={n} in={inF}/{inMax} out={outF}/{outMax} bias={bias}",
            t => F.Linear(t[0], t[1], bias ? t[2] : null, outF),
            v => Reference(v[0], v[1], bias ? v[2] : null, n, inF, outF, inMax), inputs.ToArray(),
            atol: 1e-4 * TolScale, rtol: 1e-4 * TolScale, gradAtol: 1e-3 * TolScale, gradRtol: 1e-3 * TolScale,
            maxGradSamples: 64);
    }

    [Test]
    public void GradientOutsideActivePrefixIsExactlyZeroAndAccumulates()
    {
        const int n = 3, inMax = 12, outMax = 10, inF = 5, outF = 4;
        var r = new Rng(41);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(B, Rand(r, n * inF), n, inF);
        x.RequiresGrad = true;
        var w = Tensor.Parameter(B, "w", Rand(r, outMax * inMax), outMax, inMax);
        var b = Tensor.Parameter(B, "b", Rand(r, outMax), outMax);
        var gy = Tensor.FromArray(B, Rand(r, n * outF), n, outF);
        float[] w1 = [], b1 = [], x1 = [];
        for (int pass = 1; pass <= 2; pass++)
        {
            Tape.Backward(F.Sum(F.Mul(F.Linear(x, w, b, outF), gy)));
            var dw = w.Grad!.ToArray(); var db = b.Grad!.ToArray(); var dx = x.Grad!.ToArray();
            for (int o = 0; o < outMax; o++)
                for (int i = 0; i < inMax; i++)
                {
                    bool active = o < outF && i < inF;
                    if (!active)
                        Assert.That(dw[o * inMax + i], Is.EqualTo(0f), $"dW[{o}, {i}] outside [:{outF}, :{inF}]");
                    else Assert.That(dw[o * inMax + i], Is.Not.EqualTo(0f), $"dW[{o}, {i}] inside the prefix");
                }
            for (int o = outF; o < outMax; o++) Assert.That(db[o], Is.EqualTo(0f), $"db[{o}] outside [:{outF}]");
            if (pass == 1) { w1 = dw; b1 = db; x1 = dx; continue; }
            OpCheck.AssertClose("dW after two passes", dw, w1.Select(v => 2.0 * v).ToArray(), 1e-6, 1e-6);
            OpCheck.AssertClose("db after two passes", db, b1.Select(v => 2.0 * v).ToArray(), 1e-6, 1e-6);
            OpCheck.AssertClose("dx after two passes", dx, x1.Select(v => 2.0 * v).ToArray(), 1e-6, 1e-6);
        }
        w.Dispose(); b.Dispose();
    }

    [Test]
    public void BadInputNamesOpAndShapes()
    {
        using var scope = new TensorScope();
        var w = Tensor.Zeros(B, 10, 12); var b = Tensor.Zeros(B, 10);
        var ex = Assert.Throws<ArgumentException>(() => F.Linear(Tensor.Zeros(B, 3, 13), w, b, 10));
        Assert.That(ex!.Message, Does.Contain("linear").And.Contain("(3, 13)").And.Contain("(10, 12)"));
        ex = Assert.Throws<ArgumentException>(() => F.Linear(Tensor.Zeros(B, 3, 12), w, b, 11));
        Assert.That(ex!.Message, Does.Contain("linear").And.Contain("11").And.Contain("(10, 12)"));
        ex = Assert.Throws<ArgumentException>(() => F.Linear(Tensor.Zeros(B, 3, 12), w, Tensor.Zeros(B, 8), 10));
        Assert.That(ex!.Message, Does.Contain("linear").And.Contain("(8)").And.Contain("(10, 12)"));
        using var other = new CpuBackend();
        ex = Assert.Throws<ArgumentException>(() => F.Linear(Tensor.Zeros(other, 3, 12), w, b, 10));
        Assert.That(ex!.Message, Does.Contain("linear").And.Contain("different devices"));
    }

    private static float[] Rand(Rng r, int count)
    {
        var a = new float[count];
        r.FillNormal(a);
        return a;
    }
}
