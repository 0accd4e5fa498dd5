
namespace Ddsm.Engine;

public static partial class F
{
    /// <summary>Σ x as a one-element tensor.</summary>
    public static Tensor Sum(Tensor x) => SumScaled("sum", x, 1f);

    /// <summary>mean(x) as a one-element tensor.</summary>
    public static Tensor Mean(Tensor x) => SumScaled("mean", x, 1f / x.Length);

    private static Tensor SumScaled(string name, Tensor x, float factor)
    {
        var be = x.Backend;
        var z = Tensor.Empty(be, 1);
        using (Profiler.Op(name, x.Length, be))
        {
            be.Sum(x.Buffer, x.Length, z.Buffer);
            if (factor != 1f) be.Axpby(z.Buffer, z.Buffer, 1, factor, 0f);
        }
        if (Tape.Needs(x))
            Tape.Record(name, z, [x], g => AddScalar(be, g.Buffer, factor, x.EnsureGrad().Buffer, x.Length));
        return z;
    }

    /// <summary>dx[i] += factor·g[0] for every i; g[0] stays on the device (no host sync, graph-safe).</summary>
    private static void AddScalar(Backend be, DeviceBuffer g, float factor, DeviceBuffer dx, long n)
    {
        using var k = new Scratch(be, 1);
        be.Axpby(g, k.Buffer, 1, factor, 0f);
        be.Broadcast(BinaryOp.Add, dx, k.Buffer, dx, 1, 1, checked((int)n), false);
    }

    /// <summary>mean((a − b)²) as a one-element tensor: the ε-prediction loss.</summary>
    public static Tensor MseLoss(Tensor prediction, Tensor target)
    {
        const string name = "mse_loss";
        Check.SameBackend(name, prediction, target);
        Check.SameShape(name, prediction, target);
        var be = prediction.Backend;
        long n = prediction.Length;
        var z = Tensor.Empty(be, 1);
        using (Profiler.Op(name, 3 * n, be))
        {
            be.SquaredError(prediction.Buffer, target.Buffer, n, z.Buffer);
            be.Axpby(z.Buffer, z.Buffer, 1, 1f / n, 0f);
        }
        if (Tape.Needs(prediction, target))
            Tape.Record(name, z, [prediction, target], g => SquaredErrorBackward(be, prediction.Buffer, target.Buffer,
                g.Buffer, 2f / n, Tape.GradOf(prediction), Tape.GradOf(target), n));
        return z;
    }

    /// <summary>da += factor·g[0]·(a − b), db −= the same; g[0] stays on the device (graph-safe).</summary>
    private static void SquaredErrorBackward(Backend be, DeviceBuffer a, DeviceBuffer b, DeviceBuffer g, float factor,
        DeviceBuffer? da, DeviceBuffer? db, long n)
    {
        using var d = new Scratch(be, n);
        be.Binary(BinaryOp.Sub, a, b, d.Buffer, n);
        be.Broadcast(BinaryOp.Mul, d.Buffer, g, d.Buffer, 1, 1, checked((int)n), false);
        if (da is not null) be.Axpby(d.Buffer, da, n, factor, 1f);
        if (db is not null) be.Axpby(d.Buffer, db, n, -factor, 1f);
    }
}
