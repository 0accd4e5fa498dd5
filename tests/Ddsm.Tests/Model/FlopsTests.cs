using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;

namespace Ddsm.Tests.Model;

public class FlopsTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var w in SlimUNetTests.TestConfig.Widths) yield return new TestCaseData("test", w);
        foreach (var w in UNetConfig.Fmnist32.Widths) yield return new TestCaseData("fmnist32", w);
        yield return new TestCaseData("cifar10-noss", 0.375);      // no scale-shift norm, odd eighths
        foreach (var w in SlimUNetTests.TestConfig.Widths) yield return new TestCaseData("test-cond", w);   // label_emb
    }

    private static UNetConfig Config(string name) => name switch
    {
        "test" => SlimUNetTests.TestConfig,
        "test-cond" => SlimUNetTests.TestConfig with { NumClasses = 10 },
        "cifar10-noss" => UNetConfig.Cifar10 with { ChannelMult = [1, 2], NumResBlocks = 1, Widths = [0.375, 1.0] },
        _ => UNetConfig.Preset(name),
    };

    /// <summary>The analytic count equals what the ops report on a real forward, exactly.</summary>
    [TestCaseSource(nameof(Cases))]
    public void AnalyticCountEqualsTheOpCounter(string name, double width)
    {
        var cfg = Config(name);
        using var m = new SlimUNet(CpuBackend.Instance, cfg, 1);
        using var scope = new TensorScope();
        var x = Tensor.Zeros(CpuBackend.Instance, 2, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize);
        var t = Tensor.FromArray(CpuBackend.Instance, [3f, 700f], 2);
        using var counter = new FlopCounter();
        using (Tape.NoGrad()) m.Forward(x, t, width);
        var analytic = UNetFlops.Forward(cfg, width, batch: 2);
        Assert.That(analytic.Total, Is.EqualTo(counter.Forward),
                    string.Join(", ", counter.ByOp.Select(kv => $"{kv.Key}={kv.Value}")));
        Assert.That(analytic.Attention, Is.EqualTo(counter.ByOp["attention"]));
        Assert.That(analytic.Conv, Is.EqualTo(counter.ByOp["conv2d"]));
    }

    /// <summary>
    /// The count runs the model's forward on the meta backend: that is no work, and no enclosing counter sees it.
    /// </summary>
    [Test]
    public void CountingIsNotWorkDone()
    {
        var cfg = SlimUNetTests.TestConfig with { Name = "not-counted-before" };
        using var outer = new FlopCounter();
        Assert.That(UNetFlops.Forward(cfg, 1.0).Total, Is.GreaterThan(0));
        Assert.That(outer.Forward, Is.Zero);
        Assert.That(outer.ByOp, Is.Empty);
    }

    [Test]
    public void PinnedCountsPerWidth()
    {
        // fmnist32 at 32×32, per image: GFLOPs at each width (regression pins).
        var cfg = UNetConfig.Fmnist32;
        var g = cfg.Widths.Select(w => UNetFlops.Forward(cfg, w).Total).ToArray();
        TestContext.Out.WriteLine(string.Join(", ", g));
        Assert.That(g, Is.Ordered.Ascending);
        Assert.That(g, Is.EqualTo(new long[] { PinnedFmnist[0], PinnedFmnist[1], PinnedFmnist[2], PinnedFmnist[3] }));
        // Convolutions dominate; the attention matmuls are small but not zero at 16×16.
        var full = UNetFlops.Forward(cfg, 1.0);
        Assert.That((double)full.Conv / full.Total, Is.GreaterThan(0.9));
        Assert.That(full.Attention, Is.GreaterThan(0));
    }

    internal static readonly long[] PinnedFmnist = [237_044_096, 848_704_512, 1_834_985_088, 3_195_885_824];

    [Test]
    public void StrategyTotalsFollowTheSamplersCallPattern()
    {
        var cfg = UNetConfig.Fmnist32;
        using var m = new SlimUNet(CpuBackend.Instance, cfg, 1);
        var s = NoiseSchedule.Linear();
        double full = UNetFlops.Forward(cfg, 1.0).Total / 1e9, half = UNetFlops.Forward(cfg, 0.5).Total / 1e9;
        var uni = StepStrategy.Uniform(1.0, s.T);
        var (ddim, nd) = Sampler.Create(SamplerKind.Ddim).Cost(m, s, uni, new SamplerOptions(50));
        Assert.That(nd, Is.EqualTo(50));
        Assert.That(ddim, Is.EqualTo(50 * full).Within(1e-9));
        var (heun, nh) = Sampler.Create(SamplerKind.EdmHeun).Cost(m, s, uni, new SamplerOptions(18));
        Assert.That(nh, Is.EqualTo(35));
        Assert.That(heun, Is.EqualTo(35 * full).Within(1e-9));
        var split = new StepStrategy(Enumerable.Range(0, s.T).Select(t => t < 500 ? 1.0 : 0.5).ToArray());
        var (ddpm, _) = Sampler.Create(SamplerKind.Ddpm).Cost(m, s, split, new SamplerOptions());
        Assert.That(ddpm, Is.EqualTo(500 * full + 500 * half).Within(1e-6));
    }
}
