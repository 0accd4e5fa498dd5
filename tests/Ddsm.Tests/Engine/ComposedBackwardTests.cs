using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// What backward passes composed of forward kernels rely on beyond OpCheck: the element-wise kernels
/// work in place.
/// </summary>
public abstract class ComposedBackwardTests : BackendFixture
{
    private static float[] Random(Rng rng, int n)
    {
        var d = new float[n];
        rng.FillNormal(d);
        return d;
    }

    /// <summary>Each element-wise kernel with its output on an input agrees with a separate output.</summary>
    [Test]
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
        foreach (var op in new[] { UnaryOp.SiLU, UnaryOp.Square, UnaryOp.Exp })
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

[TestFixture]
public class ComposedBackwardTestsCpu : ComposedBackwardTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}
