using Ddsm.Engine;
using Ddsm.Engine.Optim;
using Ddsm.Kernels;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The training step's table-read ops (kernels/StepDraws.cs, adam_step_table, kernels/TrainScalars.cs) on every
/// backend: each draw, copy and update computes, bit for bit, what its plain twin computes with the table row's
/// values as arguments, row after row; and the two scalar kernels turn the device counters into what the host
/// computes for that step and pass from its own state (the old per-step kernel arguments), independently derived
/// here: the draw keys, the warm-up rate, Adam's bias corrections, the EMA decay, the Rng's next outputs.
/// </summary>
public abstract class TrainStepOpTests : BackendFixture
{
    private const int Seed = 0, Offset = 3, Slot = 4, Lr = 5, Stride = 8;

    private float[] Down(Tensor t) => t.ToArray();

    private Tensor Up(float[] a) => Tensor.FromArray(B, a, a.Length);

    /// <summary>Two rows: a 64-bit seed, an offset, a slot, Adam's rate and bias corrections.</summary>
    private static float[] Rows(out ulong[] seeds)
    {
        seeds = [0x9E37_79B9_7F4A_7C15UL, 0x0123_4567_89AB_CDEFUL];
        var rows = new float[2 * Stride];
        for (int r = 0; r < 2; r++)
        {
            var row = new HostCells(rows, r * Stride);
            TrainMath.Put64(row, Seed, seeds[r]);
            (row[Offset], row[Slot]) = (37 * r, 2 * r);
            (row[Lr], row[Lr + 1], row[Lr + 2]) = (1e-3f * (r + 1), 0.1f + 0.09f * r, 0.001f * (r + 1));
        }
        return rows;
    }

    [Test]
    [Covers("uniform_ints_step", "gather_rows_step", "dropout_step", "copy_step", "adam_step_table", "uniform_ints",
        "gather_rows", "dropout", "adam_step_guarded", "advance_step")]
    public void TableReadOpsEqualTheirPlainTwinsRowAfterRow()
    {
        int n = Small ? 300 : 5000;
        var rows = Rows(out var seeds);
        using var scope = new TensorScope();
        using var table = new StepTable(B, rows, Stride);
        var r = new Rng(81);
        var x = new float[n];
        r.FillNormal(x);
        var src = new float[6 * 4];
        r.FillNormal(src);
        var (xs, ys, yp, ms, mp) = (Up(x), Up(new float[n]), Up(new float[n]), Up(new float[n]), Up(new float[n]));
        var (table6, index) = (Up(src), Up([5f, 0f, 3f, 1f, 4f]));
        var (gs, gp) = (Up(new float[5 * 4]), Up(new float[5 * 4]));
        var (cs, cp) = (Up(new float[12]), Up(new float[12]));
        var w = new float[n]; var g = new float[n];
        r.FillNormal(w); r.FillNormal(g);
        var (ws, wp, gr) = (Up(w), Up(w), Up(g));
        var (m1, v1, m2, v2) = (Up(new float[n]), Up(new float[n]), Up(new float[n]), Up(new float[n]));
        var guard = Up([0f, 0f, 0.5f, 0f]);
        var hyper = new AdamHyper(7f, 0.9f, 0.999f, 1e-8f, 0.01f, 7f, 7f, 1f);   // the 7s: replaced by the row's
        for (int row = 0; row < 2; row++)
        {
            float At(int col) => rows[row * Stride + col];
            B.UniformIntsStep(ys.Buffer, n, table[Seed], 5, table[Offset], -3, 40);
            B.UniformInts(yp.Buffer, n, seeds[row], 5 + (ulong)At(Offset), -3, 40);
            Assert.That(Down(ys), Is.EqualTo(Down(yp)), $"uniform ints, row {row}");
            var desc = new GatherDesc(5, 4, 6, FlipSegment: 2, DropP: 0.4f, DropRow: 2);
            B.GatherRowsStep(desc, table6.Buffer, index.Buffer, gs.Buffer, table[Seed]);
            B.GatherRows(desc with { Seed = seeds[row] }, table6.Buffer, index.Buffer, gp.Buffer);
            Assert.That(Down(gs), Is.EqualTo(Down(gp)), $"gather, row {row}");
            B.DropoutStep(xs.Buffer, ys.Buffer, ms.Buffer, n, 0.3f, table[Seed], 0xABCDUL);
            B.Dropout(xs.Buffer, yp.Buffer, mp.Buffer, n, 0.3f, seeds[row] ^ 0xABCDUL);
            Assert.That((Down(ys), Down(ms)), Is.EqualTo((Down(yp), Down(mp))), $"dropout, row {row}");
            B.CopyStep(xs.Buffer, 1, cs.Buffer, 2, 2, table[Slot], 3);
            B.Copy(xs.Buffer, 1, cp.Buffer, 2 + (long)At(Slot) * 3, 2);
            Assert.That(Down(cs), Is.EqualTo(Down(cp)), $"copy to slot {At(Slot)}, row {row}");
            B.AdamStep(ws.Buffer, gr.Buffer, m1.Buffer, v1.Buffer, n, hyper, guard.Buffer, table[Lr]);
            B.AdamStep(wp.Buffer, gr.Buffer, m2.Buffer, v2.Buffer, n,
                hyper with { Lr = At(Lr), BiasCorrection1 = At(Lr + 1), BiasCorrection2 = At(Lr + 2) }, guard.Buffer);
            Assert.That((Down(ws), Down(m1), Down(v1)), Is.EqualTo((Down(wp), Down(m2), Down(v2))), $"adam, row {row}");
            table.Advance();
        }
        Assert.That(Down(ws), Is.Not.EqualTo(w), "adam moved the weights");
    }

    /// <summary>The draw key of the trainer's family f at a step, as the host computed it before the device did.
    /// </summary>
    private static ulong HostStepKey(ulong key, ulong step, int f)
    {
        ulong k = step * 4 + (ulong)f;
        return ((ulong)CounterHash.Of(key, 2 * k) << 32) | CounterHash.Of(key, 2 * k + 1);
    }

    private static float[] BiasRun(float beta) =>
        Enumerable.Range(0, 1000).Select(t => (float)(1 - Math.Pow(beta, t))).TakeWhile(v => v != 1f).ToArray();

    [TestCase(3L, 5_000_000L)]     // inside both bias runs; a step count beyond 2^24 (two 24-bit halves)
    [TestCase(150L, 12L)]          // past β1's run (its corrections round to 1), inside β2's
    [Covers("train_step_scalars", "train_pass_scalars")]
    public void TrainScalarsFollowTheHostCounters(long adamT, long step)
    {
        const float beta1 = 0.5f, beta2 = 0.95f, lr = 1e-3f, ema = 0.999f;
        const ulong key = 0xD00D_FEEDUL, noise = (7UL << 24) + 123;
        const int warmup = 10, widthDraws = 2, batch = 4;
        var (b1, b2) = (BiasRun(beta1), BiasRun(beta2));
        var row = new float[TrainState.Bias + b1.Length + b2.Length];
        var cells = new HostCells(row, 0);
        TrainMath.Put48(cells, TrainState.Step, (ulong)step);
        TrainMath.Put48(cells, TrainState.AdamT, (ulong)adamT);
        TrainMath.Put48(cells, TrainState.Noise, noise);
        var rng = new Rng(9);
        var words = rng.GetState();
        for (int i = 0; i < 4; i++) TrainMath.Put64(cells, TrainState.Rng + 3 * i, words[i]);
        b1.CopyTo(row, TrainState.Bias);
        b2.CopyTo(row, TrainState.Bias + b1.Length);
        using var table = new StepTable(B, row, row.Length);

        B.TrainStepScalars(table, new TrainStepScalarsArgs
        {
            DataKey = key, Lr = lr, EmaDecay = ema, WarmupSteps = warmup, Bias1 = b1.Length, Bias2 = b2.Length,
            WidthDraws = widthDraws,
        });
        var pass = new TrainPassScalarsArgs { PassFloats = 1000, Batch = batch };
        B.TrainPassScalars(table, pass);
        B.TrainPassScalars(table, pass);
        var got = new float[table.Buffer.Length];
        B.CopyOut(table.Buffer, 0, got);
        var s = new HostCells(got, 1);

        long t = adamT + 1;
        for (int f = 0; f < 3; f++)
            Assert.That(TrainMath.Get64(s, TrainState.IndexSeed + 3 * f), Is.EqualTo(HostStepKey(key, (ulong)step, f)),
                $"draw key of family {f}");
        Assert.That(s[TrainState.Lr], Is.EqualTo(LrSchedule.LinearWarmup(t, warmup, lr)), "rate");
        Assert.That(s[TrainState.Bc1], Is.EqualTo((float)(1 - Math.Pow(beta1, t))), "bias correction 1");
        Assert.That(s[TrainState.Bc2], Is.EqualTo((float)(1 - Math.Pow(beta2, t))), "bias correction 2");
        float decay = Math.Min(ema, (1f + step) / (10f + step));
        Assert.That((s[TrainState.EmaAlpha], s[TrainState.EmaBeta]), Is.EqualTo((1f - decay, decay)), "EMA");
        for (int i = 0; i < widthDraws + 1; i++) rng.NextULong();   // the widths, then pass 0's seed
        Assert.That(TrainMath.Get64(s, TrainState.DropoutSeed), Is.EqualTo(rng.NextULong()), "pass 1's dropout seed");
        Assert.That(TrainMath.Get48(s, TrainState.NoiseOffset), Is.EqualTo(noise + 1000), "pass 1's noise offset");
        Assert.That((s[TrainState.TOffset], s[TrainState.LossSlot], s[TrainState.Pass]),
            Is.EqualTo((2f * batch, 1f, 2f)), "pass 1's timestep offset and loss slot, then the next pass");
        Assert.That(TrainMath.Get48(s, TrainState.Noise), Is.EqualTo(noise + 2000), "noise position after 2 passes");
        Assert.That((TrainMath.Get48(s, TrainState.Step), TrainMath.Get48(s, TrainState.AdamT)),
            Is.EqualTo(((ulong)step + 1, (ulong)t)), "the step counters moved on");
        var after = rng.GetState();
        for (int i = 0; i < 4; i++)
            Assert.That(TrainMath.Get64(s, TrainState.Rng + 3 * i), Is.EqualTo(after[i]), $"generator word {i}");
    }
}
