using Ddsm.Diffusion;
using Ddsm.Engine.Cpu;
using Ddsm.Model;
using Ddsm.Search;
using Ddsm.Tests.Model;

namespace Ddsm.Tests.Search;

public class SamplingEvaluatorTests
{
    [Test]
    public void CommonRandomNumbersAndAnalyticCost()
    {
        var cfg = SlimUNetTests.TestConfig;
        using var m = new SlimUNet(CpuBackend.Instance, cfg, 1);
        // Un-zero the output conv so widths matter.
        foreach (var (n, p) in m.NamedParameters())
            if (n.StartsWith("out.2"))
            {
                var a = p.ToArray();
                for (int i = 0; i < a.Length; i++) a[i] = 0.01f * (i % 7 - 3);
                p.CopyFrom(a);
            }
        var sched = NoiseSchedule.Linear(100);
        var o = new SamplerOptions(5, Eta: 1.0);             // η = 1: per-step noise is drawn too
        int calls = 0;
        var ev = new SamplingEvaluator(m, sched, new SampleSpec(SamplerKind.Ddim, o, Count: 6, Batch: 4, Seed: 9),
            (imgs, n) => { calls++; return imgs.Take(n * 64).Sum(v => (double)v * v) / n; });
        var full = StepStrategy.Uniform(1.0, sched.T);
        var half = StepStrategy.Uniform(0.5, sched.T);
        var first = ev.Sample(full);
        Assert.That(ev.Sample(full), Is.EqualTo(first), "same strategy, same noise, same bits");
        Assert.That(ev.Sample(half), Is.Not.EqualTo(ev.Sample(full)), "widths change the samples");
        var (q, cost) = ev.Evaluate(half);
        Assert.That(double.IsFinite(q), Is.True);
        Assert.That(cost, Is.EqualTo(5 * UNetFlops.Forward(cfg, 0.5).Total / 1e9).Within(1e-12));
        Assert.That(calls, Is.EqualTo(1));
    }

    /// <summary>A grouped denoiser's cap is what the cost is counted on, not the strategy it is handed.</summary>
    [Test]
    public void CostIsCountedOnTheWidthsTheModelRuns()
    {
        var cfg = SlimUNetTests.TestConfig;
        using var m = new SlimUNet(CpuBackend.Instance, cfg, 1);
        var sched = NoiseSchedule.Linear(100);
        var o = new SamplerOptions(5);
        var groups = Ddsm.StepAdaptive.TimestepGroups.Build(sched, 2);
        var den = new Ddsm.StepAdaptive.GroupedDenoiser([m, m], groups, [0.5, 1.0],
                                                        Ddsm.StepAdaptive.GroupWidthMode.CappedByGroup);
        var ev = new SamplingEvaluator(den, sched, new SampleSpec(SamplerKind.Ddim, o, 2, 2, 9), (_, _) => 0);
        var full = StepStrategy.Uniform(1.0, sched.T);
        // What the base model costs at the widths the grouped one runs (no side channel: the grouped model says).
        Assert.That(ev.Cost(full),
                    Is.EqualTo(Sampler.Create(SamplerKind.Ddim).Cost(m, sched, den.EffectiveStrategy(full), o).Gflops));
        Assert.That(ev.Cost(full), Is.LessThan(5 * UNetFlops.Forward(cfg, 1.0).Total / 1e9),
                    "the low-noise group runs at ½");
        Assert.That(ev.Cost(full), Is.GreaterThan(5 * UNetFlops.Forward(cfg, 0.5).Total / 1e9),
                    "the high-noise group at 1");
    }
}
