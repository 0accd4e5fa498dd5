using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Model;
using Ddsm.StepAdaptive;
using static Ddsm.Tests.StepAdaptive.StepAdaptiveTestUtil;

namespace Ddsm.Tests.StepAdaptive;

public class GroupedDenoiserTests
{
    private static readonly UNetConfig Small =
        ChannelPermutationTests.Cfg("test") with { Name = "small", ModelChannels = 8 };

    private static SlimUNet[] Models()
    {
        var ms = new[]
        {
            new SlimUNet(Cpu, ChannelPermutationTests.Cfg("test"), 1),
            new SlimUNet(Cpu, Small, 2),                                   // a different architecture
            new SlimUNet(Cpu, ChannelPermutationTests.Cfg("test"), 3),
        };
        for (int i = 0; i < ms.Length; i++) Randomise(ms[i], 10 + (ulong)i);
        return ms;
    }

    private static Tensor Input(ulong seed)
    {
        var x = new float[64];
        new Rng(seed).FillNormal(x);
        return Tensor.FromArray(Cpu, x, 1, 1, 8, 8);
    }

    /// <summary>
    /// Every integer t of a T = 200 linear schedule, cut into 3 SNR groups, is served by its group's model at
    /// the group's fixed width, and ε̂ is exactly that model's ε̂ (and not another group's model's).
    /// </summary>
    [Test]
    public void EveryTimestepIsServedByItsGroupsModel()
    {
        var groups = TimestepGroups.Build(NoiseSchedule.Linear(200), 3);
        var ms = Models();
        try
        {
            double[] widths = [1.0, 0.5, 0.5];
            var den = new GroupedDenoiser(ms, groups, widths);
            using var scope = new TensorScope();
            var x = Input(4);
            for (int t = 0; t < groups.T; t++)
            {
                var (g, w) = den.Dispatch(t, 1.0);
                Assert.That(g, Is.EqualTo(groups.GroupOf(t)), $"t = {t}");
                Assert.That(w, Is.EqualTo(widths[g]), "fixed per-group width overrides the strategy's");
            }
            using (Tape.NoGrad())
            {
                foreach (var gr in groups.Groups)
                {
                    int t = (gr.TFirst + gr.TLast) / 2;
                    var got = den.PredictEps(x, t, 1.0).ToArray();
                    Assert.That(got, Is.EqualTo(ms[gr.Index].PredictEps(x, t, widths[gr.Index]).ToArray()));
                    var other = ms[(gr.Index + 1) % 3];
                    Assert.That(got, Is.Not.EqualTo(other.PredictEps(x, t, other.Config.MaxWidth).ToArray()));
                }
            }
            // Fractional and out-of-range t: the nearest step's group, clamped.
            var g1 = groups.Groups[1];
            double[] ts = [g1.TFirst - 0.4, g1.TFirst - 0.6, -3.0, groups.T + 5.0];
            Assert.That(ts.Select(t => den.Dispatch(t, 1.0).Group), Is.EqualTo(new[] { 1, 0, 0, 2 }));
        }
        finally { foreach (var m in ms) m.Dispose(); }
    }

    [Test]
    public void StrategyWidthsApplyWithinTheGroupModel()
    {
        var groups = TimestepGroups.Build(NoiseSchedule.Linear(200), 3);
        var ms = Models();
        try
        {
            var den = new GroupedDenoiser(ms, groups, mode: GroupWidthMode.CappedByGroup);
            using var scope = new TensorScope();
            var x = Input(5);
            using (Tape.NoGrad())
            {
                var a = den.PredictEps(x, 150, 0.5).ToArray();
                Assert.That(a, Is.EqualTo(ms[2].PredictEps(x, 150, 0.5).ToArray()));
                Assert.That(den.Dispatch(150, 0.5), Is.EqualTo((2, 0.5)));
                Assert.That(den.Dispatch(150, 1.0), Is.EqualTo((2, 1.0)));

                // With group widths, a strategy's wider request is capped at the group's width.
                var capped = new GroupedDenoiser(ms, groups, [1.0, 0.5, 0.5], GroupWidthMode.CappedByGroup);
                Assert.That(capped.PredictEps(x, 150, 1.0).ToArray(),
                            Is.EqualTo(ms[2].PredictEps(x, 150, 0.5).ToArray()));
                Assert.That(capped.Dispatch(150, 1.0), Is.EqualTo((2, 0.5)));
                Assert.That(capped.Dispatch(10, 0.5), Is.EqualTo((0, 0.5)), "a narrower request is kept");
                Assert.That(capped.FlopsPerImage(150, 1.0), Is.EqualTo(ms[2].FlopsPerImage(150, 0.5)),
                            "costed as it runs");
                Assert.Throws<ArgumentException>(() => den.PredictEps(x, 150, 0.3),
                                                 "the group model rejects a width it does not allow");
            }
            Assert.Throws<ArgumentException>(() => new GroupedDenoiser(ms[..2], groups));
            Assert.Throws<ArgumentException>(() => new GroupedDenoiser(ms, groups, [1.0, 0.3, 1.0]));
        }
        finally { foreach (var m in ms) m.Dispose(); }
    }

    /// <summary>
    /// Every sampler (its own timestep spacing, Heun's second evaluation at the next t, DPM-Solver's λ grid)
    /// sends each evaluation to the model of the group holding round(t), at the width EffectiveStrategy says;
    /// and the cost the sampler computes from the grouped denoiser (no side channel) equals what the ops did.
    /// </summary>
    [TestCase(SamplerKind.Ddpm)]
    [TestCase(SamplerKind.Ddim)]
    [TestCase(SamplerKind.EdmHeun)]
    [TestCase(SamplerKind.DpmSolver2M)]
    public void EverySamplerDispatchesEachEvaluationToItsTimestepsGroup(SamplerKind kind)
    {
        var sched = NoiseSchedule.Linear(200);
        var groups = TimestepGroups.Build(sched, 3);
        var cfg = ChannelPermutationTests.Cfg("test");
        var ms = Enumerable.Range(0, 3).Select(i => new SlimUNet(Cpu, cfg, 20 + (ulong)i)).ToArray();
        try
        {
            foreach (var (m, i) in ms.Select((m, i) => (m, i))) Randomise(m, 30 + (ulong)i);
            // A strategy that is full width at low noise and ½ above t = 120, capped at widths [½, 1, 1].
            var strategy = new StepStrategy(Enumerable.Range(0, 200).Select(t => t < 120 ? 1.0 : 0.5).ToArray());
            var den = new GroupedDenoiser(ms, groups, [0.5, 1.0, 1.0], GroupWidthMode.CappedByGroup);
            var eff = den.EffectiveStrategy(strategy);
            var o = new SamplerOptions(Steps: 12);
            var sampler = Sampler.Create(kind);
            using var scope = new TensorScope();
            var x = Input(6);
            using var flops = new FlopCounter();
            using (Tape.NoGrad()) sampler.Sample(den, sched, strategy, x, new Rng(1), o);
            var calls =
                sampler.EvaluationTimes(sched, o).Select(t => (T: t, D: den.Dispatch(t, strategy.At(t)))).ToList();
            Assert.That(calls.Select(c => c.D.Group).Distinct().Count(), Is.EqualTo(3),
                        "the trajectory crosses every group");
            foreach (var (t, (g, w)) in calls)
            {
                Assert.That(g, Is.EqualTo(groups.GroupOf(Math.Clamp((int)Math.Round(t), 0, 199))), $"t = {t}");
                Assert.That(w, Is.EqualTo(eff.At(t)), $"t = {t}");
                Assert.That(w, Is.EqualTo(Math.Min(strategy.At(t), g == 0 ? 0.5 : 1.0)));
            }
            Assert.That(calls.Select(c => c.D.Width).Distinct().Count(), Is.EqualTo(2), "both widths are run");
            var (gflops, nfe) = sampler.Cost(den, sched, strategy, o);
            Assert.That(nfe, Is.EqualTo(calls.Count));
            Assert.That(gflops * 1e9, Is.EqualTo((double)flops.Forward).Within(0.5),
                        "the grouped model's cost = op counter");
            Assert.That(sampler.Cost(ms[0], sched, eff, o).Gflops, Is.EqualTo(gflops).Within(1e-12),
                "= one model run at the effective strategy");
        }
        finally { foreach (var m in ms) m.Dispose(); }
    }
}
