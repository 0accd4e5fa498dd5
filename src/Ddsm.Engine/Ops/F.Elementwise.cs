
namespace Ddsm.Engine;

/// <summary>
/// The differentiable ops. Each validates its arguments (ArgumentException naming op and shapes),
/// runs one backend kernel family, reports its FLOPs to the profiler, and records a tape node whose
/// backward accumulates into the inputs' gradients. Split by family over F.*.cs.
/// </summary>
public static partial class F
{
    internal static void RecordView(Tensor src, Tensor view)
    {
        if (!Tape.Needs(src)) return;
        Tape.Record("reshape", view, [src], g => Tape.Accumulate(src, g));
    }

    public static Tensor Add(Tensor a, Tensor b) => Binary("add", BinaryOp.Add, a, b);
    public static Tensor Sub(Tensor a, Tensor b) => Binary("sub", BinaryOp.Sub, a, b);
    public static Tensor Mul(Tensor a, Tensor b) => Binary("mul", BinaryOp.Mul, a, b);

    private static Tensor Binary(string name, BinaryOp op, Tensor a, Tensor b)
    {
        Check.SameBackend(name, a, b);
        Check.SameShape(name, a, b);
        var be = a.Backend;
        var z = Tensor.Empty(be, a.Shape);
        using (Profiler.Op(name, a.Length, be)) be.Binary(op, a.Buffer, b.Buffer, z.Buffer, a.Length);
        if (Tape.Needs(a, b))
            Tape.Record(name, z, [a, b], g => BinaryBackward(be, op, a.Buffer, b.Buffer, g.Buffer,
                Tape.GradOf(a), Tape.GradOf(b), a.Length));
        return z;
    }

    /// <summary>da += ∂z/∂a·dz, db += ∂z/∂b·dz (either may be null).</summary>
    private static void BinaryBackward(Backend be, BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer dz,
        DeviceBuffer? da, DeviceBuffer? db, long n)
    {
        if (op == BinaryOp.Mul)
        {
            if (da is not null) AccumulateTemp(be, da, n, 1f, t => be.Binary(BinaryOp.Mul, dz, b, t, n));
            if (db is not null) AccumulateTemp(be, db, n, 1f, t => be.Binary(BinaryOp.Mul, dz, a, t, n));
            return;
        }
        if (da is not null) be.Axpby(dz, da, n, 1f, 1f);
        if (db is not null) be.Axpby(dz, db, n, op == BinaryOp.Sub ? -1f : 1f, 1f);
    }

    /// <summary>alpha·x.</summary>
    public static Tensor Scale(Tensor x, float alpha)
    {
        var be = x.Backend;
        var z = Tensor.Empty(be, x.Shape);
        using (Profiler.Op("scale", x.Length, be)) be.Axpby(x.Buffer, z.Buffer, x.Length, alpha, 0f);
        if (Tape.Needs(x))
            Tape.Record("scale", z, [x], g => be.Axpby(g.Buffer, x.EnsureGrad().Buffer, x.Length, alpha, 1f));
        return z;
    }

    public static Tensor SiLU(Tensor x) => Unary("silu", UnaryOp.SiLU, x, 4);
    public static Tensor Square(Tensor x) => Unary("square", UnaryOp.Square, x, 1);
    public static Tensor Exp(Tensor x) => Unary("exp", UnaryOp.Exp, x, 1);

    private static Tensor Unary(string name, UnaryOp op, Tensor x, int flopsPerElement)
    {
        var be = x.Backend;
        var y = Tensor.Empty(be, x.Shape);
        using (Profiler.Op(name, flopsPerElement * x.Length, be)) be.Unary(op, x.Buffer, y.Buffer, x.Length);
        if (Tape.Needs(x))
            Tape.Record(name, y, [x], g => UnaryBackward(be, op, x.Buffer, g.Buffer, x.EnsureGrad().Buffer, x.Length));
        return y;
    }

    /// <summary>dx += f'(x)·dy, with f' recomputed from x (the forward output may be gone by now).</summary>
    private static void UnaryBackward(Backend be, UnaryOp op, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dx, long n)
    {
        if (op == UnaryOp.Square)
        {
            AccumulateTemp(be, dx, n, 2f, t => be.Binary(BinaryOp.Mul, x, dy, t, n));
            return;
        }
        var derivative = op switch
        {
            UnaryOp.SiLU => UnaryOp.SiLUGrad,
            UnaryOp.Exp => UnaryOp.Exp,
            _ => throw new ArgumentOutOfRangeException(nameof(op), op, "no backward for this map"),
        };
        AccumulateTemp(be, dx, n, 1f, t =>
        {
            be.Unary(derivative, x, t, n);
            be.Binary(BinaryOp.Mul, t, dy, t, n);
        });
    }

    /// <summary>
    /// a (N, C, …) op b broadcast over the trailing dims: b is (N, C) (per sample and channel, like
    /// ADM's "h + emb[:, :, None, None]") or (C) (per channel).
    /// </summary>
    public static Tensor AddChannels(Tensor a, Tensor b) => BroadcastChannels("add_channels", BinaryOp.Add, a, b);
    public static Tensor MulChannels(Tensor a, Tensor b) => BroadcastChannels("mul_channels", BinaryOp.Mul, a, b);

    private static Tensor BroadcastChannels(string name, BinaryOp op, Tensor a, Tensor b)
    {
        Check.SameBackend(name, a, b);
        Check.That(a.Rank >= 2, name, $"input must be (N, C, ...), got {ShapeUtil.Str(a.Shape)}");
        int n = a.Shape[0], c = a.Shape[1];
        int inner = (int)(a.Length / ((long)n * c));
        bool perOuter;
        if (b.Rank == 2 && b.Shape[0] == n && b.Shape[1] == c) perOuter = true;
        else if (b.Rank == 1 && b.Shape[0] == c) perOuter = false;
        else throw new ArgumentException($"{name}: operand {ShapeUtil.Str(b.Shape)} does not broadcast over " +
                                         $"{ShapeUtil.Str(a.Shape)} (want ({n}, {c}) or ({c}))");
        var be = a.Backend;
        var z = Tensor.Empty(be, a.Shape);
        using (Profiler.Op(name, a.Length, be)) be.Broadcast(op, a.Buffer, b.Buffer, z.Buffer, n, c, inner, perOuter);
        if (Tape.Needs(a, b))
            Tape.Record(name, z, [a, b], g => BroadcastBackward(be, op, a.Buffer, b.Buffer, g.Buffer,
                Tape.GradOf(a), Tape.GradOf(b), n, c, inner, perOuter));
        return z;
    }

    /// <summary>
    /// Backward of z = a op b[bo, m] over (outer, mid, inner): da element-wise, db summed over what b
    /// is broadcast across (<see cref="SumToBroadcast"/>).
    /// </summary>
    private static void BroadcastBackward(Backend be, BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer dz,
        DeviceBuffer? da, DeviceBuffer? db, int outer, int mid, int inner, bool perOuter)
    {
        long n = (long)outer * mid * inner;
        bool mul = op == BinaryOp.Mul;
        if (da is not null)
        {
            if (mul)
                AccumulateTemp(be, da, n, 1f, t => be.Broadcast(BinaryOp.Mul, dz, b, t, outer, mid, inner, perOuter));
            else be.Axpby(dz, da, n, 1f, 1f);
        }
        if (db is null) return;
        if (!mul)
        {
            SumToBroadcast(be, dz, db, op == BinaryOp.Sub ? -1f : 1f, outer, mid, inner, perOuter);
            return;
        }
        using var adz = new Scratch(be, n);
        be.Binary(BinaryOp.Mul, a, dz, adz.Buffer, n);
        SumToBroadcast(be, adz.Buffer, db, 1f, outer, mid, inner, perOuter);
    }

    /// <summary>Concatenation on dim 1 of (N, Ci, …) tensors with equal other dims (UNet skips).</summary>
    public static Tensor ConcatChannels(params Tensor[] xs)
    {
        const string name = "concat";
        Check.That(xs.Length > 0, name, "no inputs");
        var x0 = xs[0];
        Check.That(x0.Rank >= 2, name, $"inputs must be (N, C, ...), got {ShapeUtil.Str(x0.Shape)}");
        int n = x0.Shape[0];
        long inner = x0.Length / ((long)n * x0.Shape[1]);
        int cTotal = 0;
        foreach (var x in xs)
        {
            Check.SameBackend(name, x0, x);
            bool ok = x.Rank == x0.Rank && x.Shape[0] == n;
            for (int i = 2; ok && i < x.Rank; i++) ok = x.Shape[i] == x0.Shape[i];
            if (!ok)
                throw new ArgumentException($"{name}: shapes " +
                                            $"{string.Join(" and ", xs.Select(t => ShapeUtil.Str(t.Shape)))} differ " +
                                            $"outside dim 1");
            cTotal += x.Shape[1];
        }
        var shape = (int[])x0.Shape.Clone();
        shape[1] = cTotal;
        var be = x0.Backend;
        var z = Tensor.Empty(be, shape);
        long rowOut = cTotal * inner;
        using (Profiler.Op(name, 0, be))
        {
            long off = 0;
            foreach (var x in xs)
            {
                long len = x.Shape[1] * inner;
                be.CopyBlocks(x.Buffer, 0, len, z.Buffer, off, rowOut, n, len, accumulate: false);
                off += len;
            }
        }
        if (Tape.Needs(xs))
            Tape.Record(name, z, xs, g =>
            {
                long off = 0;
                foreach (var x in xs)
                {
                    long len = x.Shape[1] * inner;
                    if (x.RequiresGrad)
                        be.CopyBlocks(g.Buffer, off, rowOut, x.EnsureGrad().Buffer, 0, len, n, len, accumulate: true);
                    off += len;
                }
            });
        return z;
    }

    /// <summary>Channels [start, start+count) of an (N, C, …) tensor, as a new tensor.</summary>
    public static Tensor SliceChannels(Tensor x, int start, int count)
    {
        const string name = "slice_channels";
        Check.That(x.Rank >= 2, name, $"input must be (N, C, ...), got {ShapeUtil.Str(x.Shape)}");
        int n = x.Shape[0], c = x.Shape[1];
        Check.That(start >= 0 && count >= 0 && start + count <= c, name,
                   $"channels [{start}, {start + count}) out of range for {ShapeUtil.Str(x.Shape)}");
        long inner = x.Length / ((long)n * c);
        var shape = (int[])x.Shape.Clone();
        shape[1] = count;
        var be = x.Backend;
        var z = Tensor.Empty(be, shape);
        long len = count * inner;
        be.CopyBlocks(x.Buffer, start * inner, c * inner, z.Buffer, 0, len, n, len, accumulate: false);
        if (Tape.Needs(x))
            Tape.Record(name, z, [x],
                        g =>
                            be.CopyBlocks(g.Buffer, 0, len, x.EnsureGrad().Buffer, start * inner, c * inner, n, len,
                                          accumulate: true));
        return z;
    }
}
