using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.Model;
using Ddsm.StepAdaptive;

namespace Ddsm.Kernels.Tests;

/// <summary>
/// Sampling with replayed step graphs on ILGPU's CPU accelerator, where a replay reissues the launches recorded
/// at capture with their baked arguments, as a CUDA graph would: bit-identical to sampling with every step run as
/// it is, for every sampler (each in one setting), with guidance and a width per step (several graphs) and with a
/// step-adaptive grouped model. So no step passes a per-step host value as a kernel argument; and a denoiser that
/// does (the timestep as a host fill) is caught. Each case replays a graph for a step after the one it was
/// captured at (a replay at the capture step itself is right even with baked host values). A UNet of every block
/// kind at 4×4 pixels and 8 channels and a cosine schedule of 6 steps (the linear one is not a schedule at so few
/// steps: β > 1) keep it to seconds a run.
/// </summary>
[TestFixture]
public class SamplingStepGraphTests
{
    private static IlgpuBackend Gpu => IlgpuBackend.CpuAccelerator;
    private const int T = 6;
    private static readonly NoiseSchedule Sched = NoiseSchedule.Cosine(T);
    private static readonly StepStrategy HalfBelow3 =
        new(Enumerable.Range(0, T).Select(t => t < 3 ? 0.5 : 1.0).ToArray());
    private static UNetConfig Config => UNetConfig.Tiny with
    {
        Name = "nano", ImageSize = 4, ModelChannels = 8, Groups = 2, HeadChannels = 8, AttentionResolutions = [2],
    };

    [SetUp]
    public void Exact() => Gpu.ExactFp32 = true;

    /// <summary>A model with its zero-initialised output convolution un-zeroed (else ε̂ = 0 at every step).</summary>
    private static SlimUNet Model(UNetConfig c, ulong seed)
    {
        var m = new SlimUNet(Gpu, c, seed);
        var r = new Rng(seed + 100);
        foreach (var (_, p) in m.NamedParameters())
        {
            var a = p.ToArray();
            for (int i = 0; i < a.Length; i++) a[i] += (float)(0.05 * r.NextNormal());
            p.CopyFrom(a);
        }
        return m;
    }

    /// <summary>One image sampled from seed 5, and the step graphs captured and replayed meanwhile.</summary>
    private static (float[] Image, StepGraphCounts Graphs) Sample(IDenoiser den, SamplerKind kind, int steps,
        StepStrategy strategy, bool graphs)
    {
        using var scope = new TensorScope();
        var noise = new NoiseStream(5);
        var x = noise.Next(Gpu, 1, den.Image.Channels, den.Image.Size, den.Image.Size);
        var before = Gpu.StepGraphs;
        Sampler.Create(kind).Sample(den, Sched, strategy, x, noise,
            new SamplerOptions(steps, Eta: 1.0, StepGraphs: graphs));
        return (x.ToArray(), Gpu.StepGraphs - before);
    }

    /// <summary>Samples with and without graphs: bit-identical, with the graphs it was expected to use.</summary>
    private static void ReplaysBitIdentically(IDenoiser den, SamplerKind kind, int steps, StepStrategy strategy,
        StepGraphCounts expected)
    {
        var (eager, none) = Sample(den, kind, steps, strategy, graphs: false);
        var (replayed, used) = Sample(den, kind, steps, strategy, graphs: true);
        Assert.That(none, Is.EqualTo(default(StepGraphCounts)), $"{kind}: no graph without StepGraphs");
        Assert.That(used, Is.EqualTo(expected), $"{kind}: graphs captured and replayed");
        Assert.That(used.Replayed, Is.GreaterThan(used.Captured), $"{kind}: a graph replayed for a later step");
        Assert.That(eager.All(float.IsFinite), $"{kind}: finite samples");
        Assert.That(replayed, Is.EqualTo(eager), $"{kind}: replayed steps give the same bits");
    }

    // Every sampler once (each run costs seconds here): EDM and DPM-Solver++ plain, DDIM with guidance and a width
    // per step, DDPM with the grouped model. Expected graphs: a step's first occurrence runs as it is, its second
    // is captured and replayed, later ones replay. EDM (4 steps): 3 Heun steps and the final Euler one;
    // DPM-Solver++ (5 steps): first, 3 second-order, last.
    [TestCase(SamplerKind.EdmHeun, 4, 1, 2)]
    [TestCase(SamplerKind.DpmSolver2M, 5, 1, 2)]
    public void PlainSamplingReplaysItsStepsBitIdentically(SamplerKind kind, int steps, int captured, int replayed)
    {
        using var m = Model(Config, 1);
        ReplaysBitIdentically(m, kind, steps, StepStrategy.Uniform(0.5, T), new(captured, replayed));
    }

    [Test]
    public void GuidedSamplingWithAWidthPerStepReplaysOneGraphPerWidth()
    {
        // DDIM's 6 timesteps 5 … 0: noised steps at width 1 (t = 5, 4, 3: one graph, captured at 4, replayed at 4
        // and 3) and ½ (t = 2, 1: captured at 1); the last step (t = 0, no noise) runs as it is.
        using var m = Model(Config with { NumClasses = 3 }, 2);
        ReplaysBitIdentically(new GuidedDenoiser(m, [2], 2.0), SamplerKind.Ddim, T, HalfBelow3, new(2, 3));
    }

    [Test]
    public void GroupedModelReplaysOneGraphPerGroupModel()
    {
        // DDPM over all 6 steps; each step's graph is its group's model at the group's width, so the steps span
        // two graphs (a step's key: noised or last, and its route).
        using var a = Model(Config, 3);
        using var b = Model(Config, 4);
        var den = new GroupedDenoiser([a, b], TimestepGroups.Build(Sched, 2), [0.5, 1.0]);
        var keys = Enumerable.Range(0, T).Reverse().Select(t => (t > 0, den.Route(t, 1.0))).ToList();
        Assert.That(keys.Select(k => k.Item2).Distinct().Count(), Is.EqualTo(2), "the steps span both groups");
        int captured = keys.GroupBy(k => k).Count(g => g.Count() >= 2);
        int replayed = keys.GroupBy(k => k).Sum(g => Math.Max(0, g.Count() - 1));
        Assert.That(replayed, Is.GreaterThan(0), "some group's step is replayed");
        ReplaysBitIdentically(den, SamplerKind.Ddpm, T, StepStrategy.Uniform(1.0, T), new(captured, replayed));
    }

    /// <summary>The timestep filled from its host value: right when run, wrong when a graph replays it.</summary>
    private sealed class HostTimestepDenoiser(IDenoiser inner) : IDenoiser
    {
        public Backend Backend => inner.Backend;
        public ImageShape Image => inner.Image;
        public long FlopsPerImage(double t, double width) => inner.FlopsPerImage(t, width);
        public Tensor PredictEps(Tensor x, Timestep t, double width) => inner.PredictEps(x, t.Value, width);
    }

    [Test]
    public void AStepThatPassesAHostScalarIsCaught()
    {
        using var m = Model(Config, 1);
        var den = new HostTimestepDenoiser(m);
        var strategy = StepStrategy.Uniform(0.5, T);
        // DDIM, 4 steps: three noised ones and the last. The second is captured and replayed (right: it is the
        // captured step), the third replays the second's record: there the host timestep is stale.
        var (eager, _) = Sample(den, SamplerKind.Ddim, 4, strategy, graphs: false);
        var (replayed, used) = Sample(den, SamplerKind.Ddim, 4, strategy, graphs: true);
        Assert.That(used, Is.EqualTo(new StepGraphCounts(1, 2)), "one graph, replayed for two steps");
        Assert.That(eager.All(float.IsFinite), "finite samples");
        Assert.That(replayed, Is.Not.EqualTo(eager), "a replay reused the captured step's timestep");
    }
}
