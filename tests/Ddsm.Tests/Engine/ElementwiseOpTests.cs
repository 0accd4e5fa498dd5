using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

public abstract class ElementwiseOpTests : BackendFixture
{
    private static double[] Zip(double[] a, double[] b, Func<double, double, double> f) =>
        a.Select((v, i) => f(v, b[i])).ToArray();
    private static double SiLU(double x) => x / (1 + Math.Exp(-x));

    [Test]
    [Covers("binary", "axpby", "fill")]
    public void Binary()
    {
        var r = new Rng(11);
        var a = Input.Random(r, 3, 5, 7); var b = Input.Random(r, 3, 5, 7);
        OpCheck.Run(B, "add", t => F.Add(t[0], t[1]), x => Zip(x[0], x[1], (p, q) => p + q), [a, b]);
        OpCheck.Run(B, "sub", t => F.Sub(t[0], t[1]), x => Zip(x[0], x[1], (p, q) => p - q), [a, b]);
        OpCheck.Run(B, "mul", t => F.Mul(t[0], t[1]), x => Zip(x[0], x[1], (p, q) => p * q), [a, b]);
    }

    [Test]
    [Covers("unary", "binary", "axpby")]
    public void Unary()
    {
        var r = new Rng(12);
        var a = Input.Random(r, 4, 33);
        OpCheck.Run(B, "silu", t => F.SiLU(t[0]), x => x[0].Select(SiLU).ToArray(), [a]);
        OpCheck.Run(B, "square", t => F.Square(t[0]), x => x[0].Select(v => v * v).ToArray(), [a]);
        OpCheck.Run(B, "exp", t => F.Exp(t[0]), x => x[0].Select(Math.Exp).ToArray(), [a]);
        OpCheck.Run(B, "scale", t => F.Scale(t[0], -2.5f), x => x[0].Select(v => -2.5 * v).ToArray(), [a]);
    }

    [TestCase(true)]
    [TestCase(false)]
    [Covers("broadcast", "fill")]
    public void BroadcastChannels(bool perSample)
    {
        var r = new Rng(13);
        int n = 3, c = 4, h = 2, w = 5;
        var a = Input.Random(r, n, c, h, w);
        var b = perSample ? Input.Random(r, n, c) : Input.Random(r, c);
        double[] Ref(double[][] x, Func<double, double, double> f)
        {
            var z = new double[x[0].Length];
            for (int i = 0; i < z.Length; i++)
            {
                int ch = i / (h * w) % c, s = i / (c * h * w);
                z[i] = f(x[0][i], x[1][perSample ? s * c + ch : ch]);
            }
            return z;
        }
        OpCheck.Run(B, "add_channels", t => F.AddChannels(t[0], t[1]), x => Ref(x, (p, q) => p + q), [a, b]);
        OpCheck.Run(B, "mul_channels", t => F.MulChannels(t[0], t[1]), x => Ref(x, (p, q) => p * q), [a, b]);
    }

    [Test]
    [Covers("copy_blocks")]
    public void ConcatAndSlice()
    {
        var r = new Rng(14);
        var a = Input.Random(r, 2, 3, 2, 2); var b = Input.Random(r, 2, 5, 2, 2);
        double[] Cat(double[][] x)
        {
            var z = new List<double>();
            for (int s = 0; s < 2; s++)
            {
                z.AddRange(x[0].Skip(s * 12).Take(12));
                z.AddRange(x[1].Skip(s * 20).Take(20));
            }
            return z.ToArray();
        }
        OpCheck.Run(B, "concat", t => F.ConcatChannels(t[0], t[1]), Cat, [a, b]);
        OpCheck.Run(B, "slice", t => F.SliceChannels(t[0], 1, 3), x =>
            Enumerable.Range(0, 2).SelectMany(s => x[0].Skip(s * 20 + 4).Take(12)).ToArray(), [b]);
    }

    [Test]
    [Covers("reduce_partials", "reduce_final", "broadcast")]
    public void Reductions()
    {
        var r = new Rng(15);
        var a = Input.Random(r, 7, 9); var b = Input.Random(r, 7, 9);
        OpCheck.Run(B, "sum", t => F.Sum(t[0]), x => [x[0].Sum()], [a]);
        OpCheck.Run(B, "mean", t => F.Mean(t[0]), x => [x[0].Average()], [a]);
        OpCheck.Run(B, "mse", t => F.MseLoss(t[0], t[1]), x => [Zip(x[0], x[1], (p, q) => (p - q) * (p - q)).Average()],
                    [a, b]);
    }

    [Test]
    public void ReshapeKeepsGradientPath()
    {
        var r = new Rng(16);
        var a = Input.Random(r, 2, 6);
        OpCheck.Run(B, "reshape+silu", t => F.SiLU(t[0].Reshape(3, -1)), x => x[0].Select(SiLU).ToArray(), [a]);
    }

    [Test]
    public void BadInputNamesOpAndShapes()
    {
        using var scope = new TensorScope();
        var a = Tensor.Zeros(B, 2, 3); var b = Tensor.Zeros(B, 3, 2);
        var ex = Assert.Throws<ArgumentException>(() => F.Add(a, b));
        Assert.That(ex!.Message, Does.Contain("add").And.Contain("(2, 3)").And.Contain("(3, 2)"));
        var c = Tensor.Zeros(B, 2, 4, 3);
        ex = Assert.Throws<ArgumentException>(() => F.AddChannels(c, Tensor.Zeros(B, 3)));
        Assert.That(ex!.Message, Does.Contain("add_channels").And.Contain("(3)"));
    }
}
