using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Kernels;

namespace Ddsm.Tests.Engine.Gpu;

/// <summary>
/// The training step's device-side kernels against the CPU oracle, bit for bit (integer draws, gathers, a
/// sequential double sum: nothing a GPU may round differently): uniform integers and the row gather with flips
/// and drops (the batch draw), the gradient guard and the guarded Adam step (clipping and the NaN stop). The
/// oracle's own semantics are checked on the way, so a wrong oracle cannot pass by matching a wrong kernel.
/// </summary>
public abstract class TrainStepKernelTests : BackendFixture
{
    private static CpuBackend Cpu => CpuBackend.Instance;

    private static float[] Down(DeviceBuffer b)
    {
        var a = new float[b.Length];
        b.Backend.CopyOut(b, 0, a);
        return a;
    }

    private static DeviceBuffer Up(Backend be, float[] a)
    {
        var b = be.Allocate(a.Length);
        be.CopyIn(b, 0, a);
        return b;
    }

    /// <summary>Runs <paramref name="op"/> on fresh copies of <paramref name="init"/> on both backends and
    /// returns the CPU's buffers after asserting the device's equal to them, bit for bit.</summary>
    private float[][] SameBits(string what, float[][] init, Action<Backend, DeviceBuffer[]> op)
    {
        var cpu = init.Select(a => Up(Cpu, a)).ToArray();
        var dev = init.Select(a => Up(B, a)).ToArray();
        op(Cpu, cpu);
        op(B, dev);
        var want = cpu.Select(Down).ToArray();
        for (int i = 0; i < init.Length; i++)
            Assert.That(Down(dev[i]), Is.EqualTo(want[i]), $"{what}: buffer {i} bit for bit");
        foreach (var b in cpu) Cpu.Free(b);
        foreach (var b in dev) B.Free(b);
        return want;
    }

    [Test]
    [Covers("uniform_ints", "gather_rows")]
    public void BatchDrawsMatchCpuBitForBit()
    {
        const int n = 1_001, lo = 3, hi = 9;   // a small range: every value drawn, both ends hit
        var ints = SameBits("uniform ints", [new float[n]], (be, b) => be.UniformInts(b[0], n, 0x5EED, 77, lo, hi))[0];
        Assert.That(ints.Distinct().Order(), Is.EqualTo(Enumerable.Range(lo, hi - lo + 1).Select(v => (float)v)));

        // 23 rows of 2 segments of 5 from a table of 13 rows whose last is the fallback; flips and drops.
        const int rows = 23, seg = 5, len = 2 * seg, srcRows = 13;
        var table = Enumerable.Range(0, srcRows * len).Select(v => (float)v).ToArray();
        var index = Enumerable.Range(0, rows).Select(r => (float)(r * 7 % (srcRows - 1))).ToArray();
        var desc = new GatherDesc(rows, len, srcRows, seg, Seed: 42, DropP: 0.3f, DropRow: srcRows - 1);
        var got = SameBits("gather rows", [table, index, new float[rows * len]],
            (be, b) => be.GatherRows(desc, b[0], b[1], b[2]))[2];
        int flipped = 0, dropped = 0;
        for (int r = 0; r < rows; r++)
        {
            bool drop = GatherMath.Drops(42, r, CounterHash.DropThreshold(0.3f)), flip = GatherMath.Flips(42, r);
            int src = drop ? srcRows - 1 : (int)index[r];
            var want = Enumerable.Range(0, len).Select(j => table[src * len + (flip ? j / seg * seg + seg - 1 -
                j % seg : j)]);
            Assert.That(got.Skip(r * len).Take(len), Is.EqualTo(want), $"row {r} (flip {flip}, drop {drop})");
            flipped += flip ? 1 : 0; dropped += drop ? 1 : 0;
        }
        Assert.That((flipped, dropped), Is.Not.EqualTo((0, 0)).And.Not.EqualTo((rows, rows)), "both draws vary");
    }

    [Test]
    [Covers("clip_guard", "adam_step_guarded")]
    public void GuardClipsAndStopsAdamLikeCpu()
    {
        // Σg² of 3 "parameters" = 4 + 9 + 12 = 25: norm 5, clip 1 → scale 1/(5 + 1e-6); two finite losses.
        float[] values = [4f, 9f, 12f, 0.5f, 0.25f];
        var guard = SameBits("guard", [values, new float[ClipGuard.Length]],
            (be, b) => be.GradientGuard(b[0], 3, 5, b[1], 1f))[1];
        Assert.That(ClipGuard.Norm(guard[ClipGuard.NormHi], guard[ClipGuard.NormLo]), Is.EqualTo(5.0));
        Assert.That(guard[ClipGuard.Scale], Is.EqualTo((float)(1 / (5 + 1e-6))));
        Assert.That(guard[ClipGuard.Diverged], Is.Zero);

        var r = new Rng(7);
        const int n = 301;
        float[] Rand() { var a = new float[n]; r.FillNormal(a); return a; }
        var (p, g, m) = (Rand(), Rand(), Rand());
        var v = Rand().Select(x => x * x).ToArray();
        var h = new AdamHyper(1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.19f, 0.002f, 2f);
        var after = SameBits("guarded adam", [p, g, m, v, guard],
            (be, b) => be.AdamStep(b[0], b[1], b[2], b[3], n, h, b[4]));
        var plain = SameBits("adam at the guard's scale", [p, g, m, v],
            (be, b) => be.AdamStep(b[0], b[1], b[2], b[3], n, h with { GradScale = 2f * guard[ClipGuard.Scale] }));
        Assert.That(after[0], Is.EqualTo(plain[0]).And.Not.EqualTo(p), "the guard's scale times GradScale");

        // A NaN loss sets the flag (sticky through a finite call); the guarded step then moves nothing.
        float[] nanLoss = [4f, 9f, 12f, float.NaN, 0.25f];
        var flagged = SameBits("guard, NaN loss then finite", [nanLoss, values, new float[ClipGuard.Length]],
            (be, b) => { be.GradientGuard(b[0], 3, 5, b[2], 1f); be.GradientGuard(b[1], 3, 5, b[2], 1f); })[2];
        Assert.That(flagged[ClipGuard.Diverged], Is.EqualTo(1f));
        var held = SameBits("guarded adam, diverged", [p, g, m, v, flagged],
            (be, b) => be.AdamStep(b[0], b[1], b[2], b[3], n, h, b[4]));
        Assert.That((held[0], held[2], held[3]), Is.EqualTo((p, m, v)), "nothing moved");
        float[] infGrad = [4f, float.PositiveInfinity, 12f, 0.5f, 0.25f];
        var inf = SameBits("guard, ∞ gradient", [infGrad, new float[ClipGuard.Length]],
            (be, b) => be.GradientGuard(b[0], 3, 5, b[1], 0f))[1];
        Assert.That(inf[ClipGuard.Diverged], Is.EqualTo(1f));
    }
}
