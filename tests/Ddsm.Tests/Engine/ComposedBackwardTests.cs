using Ddsm.Engine;

namespace Ddsm.Tests.Engine;

/// <summary>
/// What the op layer's composed backward passes promise and rely on beyond OpCheck (which starts every
/// gradient at zero): they accumulate into gradients that already hold values, and the element-wise
/// kernels they are built from work in place.
/// </summary>
public abstract class ComposedBackwardTests : BackendFixture
{
    private static readonly Dictionary<string, (int[][] Shapes, Func<Tensor[], Tensor> Op)> Ops = new()
    {
        ["add"] = ([[3, 5], [3, 5]], t => F.Add(t[0], t[1])),
        ["sub"] = ([[3, 5], [3, 5]], t => F.Sub(t[0], t[1])),
        ["mul"] = ([[3, 5], [3, 5]], t => F.Mul(t[0], t[1])),
        ["silu"] = ([[3, 5]], t => F.SiLU(t[0])),
        ["square"] = ([[3, 5]], t => F.Square(t[0])),
        ["exp"] = ([[3, 5]], t => F.Exp(t[0])),
        ["add_channels per sample"] = ([[2, 3, 4], [2, 3]], t => F.AddChannels(t[0], t[1])),
        ["add_channels shared"] = ([[2, 3, 4], [3]], t => F.AddChannels(t[0], t[1])),
        ["mul_channels per sample"] = ([[2, 3, 4], [2, 3]], t => F.MulChannels(t[0], t[1])),
        ["mul_channels shared"] = ([[2, 3, 4], [3]], t => F.MulChannels(t[0], t[1])),
        ["sum"] = ([[3, 5]], t => F.Sum(t[0])),
        ["mean"] = ([[3, 5]], t => F.Mean(t[0])),
        ["mse"] = ([[3, 5], [3, 5]], t => F.MseLoss(t[0], t[1])),
        ["upsample2x"] = ([[1, 2, 3, 2]], t => F.Upsample2x(t[0])),
        ["avg_pool2x"] = ([[1, 2, 4, 2]], t => F.AvgPool2x(t[0])),
        ["dropout"] = ([[3, 5]], t => F.Dropout(t[0], 0.5f, 7, training: true)),
    };

    private static IEnumerable<string> OpNames => Ops.Keys;

    private static float[] Random(Rng rng, int n)
    {
        var d = new float[n];
        rng.FillNormal(d);
        return d;
    }

    /// <summary>Two identical backward passes without zeroing must leave twice the one-pass gradient.</summary>
    [TestCaseSource(nameof(OpNames))]
    public void BackwardAccumulatesIntoExistingGradients(string op)
    {
        var (shapes, f) = Ops[op];
        var rng = new Rng(41);
        var xs = shapes.Select((s, k) => Tensor.Parameter(B, $"in{k}", Random(rng, (int)ShapeUtil.Count(s)), s))
            .ToArray();
        float[]? gy = null;
        float[][] Pass()
        {
            using (new TensorScope())
            {
                var y = f(xs);
                gy ??= Random(rng, (int)y.Length);
                Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(B, gy, y.Shape))));
            }
            return xs.Select(x => x.Grad!.ToArray()).ToArray();
        }
        try
        {
            var once = Pass();
            var twice = Pass();
            for (int k = 0; k < xs.Length; k++)
            {
                Assert.That(once[k], Has.Some.Not.EqualTo(0f), $"{op}: input {k} got no gradient");
                OpCheck.AssertClose($"{op}: input {k} after two passes", twice[k],
                    once[k].Select(v => 2.0 * v).ToArray(), 1e-6, 1e-5);
            }
        }
        finally
        {
            foreach (var x in xs) x.Dispose();
        }
    }

    /// <summary>Each element-wise kernel with its output on an input agrees with a separate output.</summary>
    [Test]
    [Covers("axpby", "binary", "broadcast", "unary")]
    public void ElementwiseKernelsRunInPlace()
    {
        const int outer = 3, mid = 4, inner = 5, n = outer * mid * inner;
        var rng = new Rng(42);
        var a = Random(rng, n);
        var other = B.Allocate(n);
        var row = B.Allocate(outer * mid);
        B.CopyIn(other, 0, Random(rng, n));
        B.CopyIn(row, 0, Random(rng, outer * mid));
        // kernel(x, z): x holds a; z is x itself, or a separate buffer that also starts as a (Axpby reads it).
        float[] Run(Action<DeviceBuffer, DeviceBuffer> kernel, bool inPlace)
        {
            var x = B.Allocate(n);
            B.CopyIn(x, 0, a);
            var z = x;
            if (!inPlace) { z = B.Allocate(n); B.CopyIn(z, 0, a); }
            try
            {
                kernel(x, z);
                var r = new float[n];
                B.CopyOut(z, 0, r);
                return r;
            }
            finally
            {
                B.Free(x);
                if (!inPlace) B.Free(z);
            }
        }
        var kernels = new List<(string, Action<DeviceBuffer, DeviceBuffer>)>
        {
            ("axpby", (x, z) => B.Axpby(x, z, n, 0.5f, 1.5f)),
        };
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            kernels.Add(($"binary {op}, z = a", (x, z) => B.Binary(op, x, other, z, n)));
            kernels.Add(($"binary {op}, z = b", (x, z) => B.Binary(op, other, x, z, n)));
            foreach (bool perOuter in new[] { true, false })
                kernels.Add(($"broadcast {op}, per outer {perOuter}",
                    (x, z) => B.Broadcast(op, x, row, z, outer, mid, inner, perOuter)));
        }
        foreach (var op in Enum.GetValues<UnaryOp>())
            kernels.Add(($"unary {op}", (x, z) => B.Unary(op, x, z, n)));
        try
        {
            foreach (var (name, kernel) in kernels)
            {
                var separate = Run(kernel, inPlace: false);
                Assert.That(separate, Is.Not.EqualTo(a), $"{name} changes its input");
                var inPlace = Run(kernel, inPlace: true);
                OpCheck.AssertClose(name, inPlace, separate.Select(v => (double)v).ToArray(), 1e-6, 1e-6);
            }
        }
        finally
        {
            B.Free(other);
            B.Free(row);
        }
    }
}
