using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;
using Ddsm.Tests.Model;
using Ddsm.Training;

namespace Ddsm.Tests.Training;

/// <summary>
/// Issue 12's acceptance for training on the CPU backend: a sandwich step makes no host transfer and no sync
/// (its batch, flips, labels and timesteps are drawn on the device from the resident data set; clipping and the
/// NaN stop are device-side), whatever the widths, the labels or the distillation do; the losses of N steps come
/// back in one read.
/// </summary>
public class TrainStepTransferTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(8));

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    public void StepsMakeNoTransferAndNStepsAreReadOnce(bool conditional, bool distill)
    {
        var cfg = conditional ? SlimUNetTests.TestConfig with { NumClasses = 10 } : SlimUNetTests.TestConfig;
        using var m = new SlimUNet(Cpu, cfg, 1);
        var opts = new TrainOptions
        {
            BatchSize = 4, SandwichN = 3, InplaceDistill = distill, LabelDropout = 0.2, HorizontalFlip = true,
        };
        using var tr = new SandwichTrainer(m, Data.Value, opts, 5);
        tr.ReserveLog(3);
        var before = Cpu.Transfers;
        for (int s = 0; s < 3; s++)
        {
            var stepBefore = Cpu.Transfers;
            tr.QueueStep();
            var d = Cpu.Transfers - stepBefore;
            Assert.That((d.CopiesIn, d.CopiesOut, d.Syncs), Is.EqualTo((0L, 0L, 0L)), $"step {s + 1}: {d}");
        }
        var readBefore = Cpu.Transfers;
        var (good, diverged) = tr.ReadSteps();
        var r = Cpu.Transfers - readBefore;
        Assert.That((r.CopiesIn, r.CopiesOut, r.Syncs), Is.EqualTo((0L, 1L, 0L)), $"the read: {r}");
        Assert.That(r.FloatsOut, Is.EqualTo(3L * (3 + 2)), "3 steps × (3 losses + the norm's float pair)");
        Assert.That((Cpu.Transfers - before).CopiesOut, Is.EqualTo(1L), "one read for the 3 steps");
        Assert.That(diverged, Is.Null);
        Assert.That(good.Select(g => g.Step), Is.EqualTo(new long[] { 1, 2, 3 }));
        Assert.That(good.SelectMany(g => g.Losses.Select(l => l.Loss)),
                    Has.All.Matches<double>(v => double.IsFinite(v) && v > 0));
        Assert.That(good.Select(g => g.GradNorm), Has.All.Matches<double>(v => double.IsFinite(v) && v > 0));
    }
}
