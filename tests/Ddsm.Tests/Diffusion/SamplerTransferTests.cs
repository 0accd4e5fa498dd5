using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;
using Ddsm.StepAdaptive;
using Ddsm.Tests.Model;

namespace Ddsm.Tests.Diffusion;

/// <summary>
/// Issue 12's acceptance on the CPU backend: after its first step, a sampling step of every sampler makes
/// no host transfer and no sync (copies in, copies out, synchronisations all 0), plain, with classifier-free
/// guidance, with a width per step and with a step-adaptive grouped model. The CPU backend counts what
/// would be a transfer on a device (its CopyIn/CopyOut/Item/ToArray), so a host round trip anywhere in a
/// step (the old host noise, host clamp, host timestep array or per-call label upload) fails these. A run
/// uploads one thing before its first step: the step table (every step's coefficients, timesteps and noise
/// offsets), so that no step passes them as kernel arguments.
/// </summary>
public class SamplerTransferTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private const int T = 50;   // the linear schedule scaled to 50 steps (β up to 0.4): DDPM runs all of them
    private static readonly NoiseSchedule Sched = NoiseSchedule.Linear(T);
    private static readonly StepStrategy Alternating =
        new(Enumerable.Range(0, T).Select(t => t % 2 == 0 ? 0.5 : 1.0).ToArray());
    private static readonly SamplerOptions Options = new(Steps: 4, Eta: 1.0, ClipDenoised: true);

    private static UNetConfig Conditional => SlimUNetTests.TestConfig with { NumClasses = 3 };

    /// <summary>Transfers made by each step of one sampling run (index 0: the first step).</summary>
    private static List<TransferCounts> PerStep(IDenoiser den, SamplerKind kind, StepStrategy strategy)
    {
        using var scope = new TensorScope();
        var noise = new NoiseStream(7);
        var x = noise.Next(Cpu, 2, den.Image.Channels, den.Image.Size, den.Image.Size);
        var marks = new List<TransferCounts> { Cpu.Transfers };
        Sampler.Create(kind).Sample(den, Sched, strategy, x, noise, Options, (_, _) => marks.Add(Cpu.Transfers));
        Assert.That(x.ToArray().All(float.IsFinite), $"{kind}: finite samples");
        return marks.Zip(marks.Skip(1), (a, b) => b - a).ToList();
    }

    private static void AssertNoTransfersAfterFirstStep(List<TransferCounts> steps, string what)
    {
        Assert.That(steps, Has.Count.GreaterThanOrEqualTo(3), $"{what}: enough steps to say something");
        for (int i = 1; i < steps.Count; i++)
            Assert.That(steps[i], Is.EqualTo(default(TransferCounts)), $"{what}: step {i + 1} made host transfers");
    }

    private static IEnumerable<SamplerKind> Kinds => Enum.GetValues<SamplerKind>();

    [TestCaseSource(nameof(Kinds))]
    public void PlainModelStepsStayOnTheDevice(SamplerKind kind)
    {
        using var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        AssertNoTransfersAfterFirstStep(PerStep(m, kind, StepStrategy.Uniform(1.0, T)), $"{kind}, plain");
    }

    [TestCaseSource(nameof(Kinds))]
    public void WidthPerStepStrategyStepsStayOnTheDevice(SamplerKind kind)
    {
        using var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        AssertNoTransfersAfterFirstStep(PerStep(m, kind, Alternating), $"{kind}, width per step");
    }

    [TestCaseSource(nameof(Kinds))]
    public void GuidedStepsStayOnTheDeviceAfterTheLabelsGoUpOnce(SamplerKind kind)
    {
        using var m = new SlimUNet(Cpu, Conditional, 1);
        var steps = PerStep(new GuidedDenoiser(m, [0, 2], 2.0), kind, StepStrategy.Uniform(1.0, T));
        AssertNoTransfersAfterFirstStep(steps, $"{kind}, guided");
        Assert.That(steps[0].CopiesIn, Is.EqualTo(2),
                    $"{kind}: the step table, and the labels' one-hot once, at the first step");
    }

    [TestCaseSource(nameof(Kinds))]
    public void ConditionalModelWithoutLabelsBuildsTheNullClassOnTheDevice(SamplerKind kind)
    {
        using var m = new SlimUNet(Cpu, Conditional, 1);
        var steps = PerStep(m, kind, StepStrategy.Uniform(0.5, T));
        AssertNoTransfersAfterFirstStep(steps, $"{kind}, null class");
        Assert.That((steps[0].CopiesIn, steps[0].CopiesOut, steps[0].Syncs), Is.EqualTo((1L, 0L, 0L)),
                    $"{kind}: the first step uploads the step table and nothing else");
    }

    [TestCaseSource(nameof(Kinds))]
    public void GroupedModelStepsStayOnTheDevice(SamplerKind kind)
    {
        using var a = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        using var b = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 2);
        var den = new GroupedDenoiser([a, b], TimestepGroups.Build(Sched, 2), [1.0, 0.5], GroupWidthMode.CappedByGroup);
        AssertNoTransfersAfterFirstStep(PerStep(den, kind, Alternating), $"{kind}, grouped");
    }

    [Test]
    public void BatchSamplerReadsEachBatchOnceAndUploadsOnlyItsStepTable()
    {
        using var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        var before = Cpu.Transfers;
        BatchSampler.Sample(m, Sched, StepStrategy.Uniform(1.0, T), new SampleSpec(SamplerKind.Ddpm, Options, 5, 2, 3));
        var d = Cpu.Transfers - before;
        Assert.That((d.CopiesIn, d.CopiesOut, d.Syncs), Is.EqualTo((3L, 3L, 0L)),
                    "3 batches: 3 step tables up, 3 reads");
    }
}
