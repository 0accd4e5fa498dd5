using Ddsm.Kernels;

namespace Ddsm.Engine.Cpu;

// Device-side training inputs and the optimiser's guard: the oracles of kernels/Gather.cs and of clip_guard and
// adam_step_guarded (kernels/Adam.cs), calling the same GatherMath/ClipGuard code in the same order.
public sealed partial class CpuBackend
{
    public override void UniformInts(DeviceBuffer y, long n, ulong seed, ulong offset, int lo, int hi)
    {
        using var timer = Profiler.Kernel("uniform_ints");
        var ya = A(y);
        uint range = checked((uint)(hi - lo + 1));
        Chunked(n, (start, len) =>
        {
            for (int i = start; i < start + len; i++) ya[i] = GatherMath.UniformInt(seed, offset + (ulong)i, lo, range);
        }, 1 << 12);
    }

    public override void GatherRows(in GatherDesc d, DeviceBuffer src, DeviceBuffer index, DeviceBuffer dst)
    {
        using var timer = Profiler.Kernel("gather_rows");
        var s = A(src); var ix = A(index); var o = A(dst);
        var g = d;
        uint drop = CounterHash.DropThreshold(g.DropP);
        Parallel.For(0, g.Rows, Par, r =>
        {
            int row = drop != 0 && GatherMath.Drops(g.Seed, r, drop) ? g.DropRow : (int)ix[r];
            if ((uint)row >= (uint)g.SrcRows)
                throw new ArgumentOutOfRangeException(nameof(index),
                    $"gather_rows: row {row} out of 0..{g.SrcRows - 1}");
            bool flip = g.FlipSegment > 0 && GatherMath.Flips(g.Seed, r);
            long from = (long)row * g.RowLength, to = (long)r * g.RowLength;
            for (int j = 0; j < g.RowLength; j++)
                o[to + j] = s[from + (flip ? GatherMath.Mirrored(j, g.FlipSegment) : j)];
        });
    }

    public override void GradientGuard(DeviceBuffer values, int sumCount, int count, DeviceBuffer guard,
        float clipNorm)
    {
        using var timer = Profiler.Kernel("clip_guard");
        var v = A(values); var gd = A(guard);
        double s = 0.0;
        for (int i = 0; i < sumCount; i++) s += v[i];
        bool finite = s <= double.MaxValue;   // false for NaN and +∞ (the terms are ≥ 0)
        for (int i = sumCount; i < count; i++) finite &= ClipGuard.IsFinite(v[i]);
        double norm = Math.Sqrt(s);
        gd[ClipGuard.NormHi] = ClipGuard.Hi(norm);
        gd[ClipGuard.NormLo] = ClipGuard.Lo(norm);
        gd[ClipGuard.Scale] = ClipGuard.ScaleFor(norm, clipNorm);
        if (!finite) gd[ClipGuard.Diverged] = 1f;
    }

    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h, DeviceBuffer guard)
    {
        var gd = A(guard);
        if (gd[ClipGuard.Diverged] != 0f) return;
        AdamStep(param, grad, m, v, n, h with { GradScale = h.GradScale * gd[ClipGuard.Scale] });
    }
}
