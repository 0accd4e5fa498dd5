using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;
using Ddsm.Tests.Model;
using Ddsm.Training;

namespace Ddsm.Tests.Training;

/// <summary>
/// Issue 12's acceptance for training on the CPU backend: after the first step, a sandwich step makes one
/// copy in (its staged inputs: batch, timesteps, coefficients, labels), one copy out (the per-width losses,
/// read with Adam's gradient norms) and no sync, whatever the widths, the labels or the distillation do.
/// </summary>
public class TrainStepTransferTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(8));

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    public void AStepCopiesInOnceAndReadsOnce(bool conditional, bool distill)
    {
        var cfg = conditional ? SlimUNetTests.TestConfig with { NumClasses = 10 } : SlimUNetTests.TestConfig;
        using var m = new SlimUNet(Cpu, cfg, 1);
        var opts = new TrainOptions { BatchSize = 4, SandwichN = 3, InplaceDistill = distill, LabelDropout = 0.2 };
        using var tr = new SandwichTrainer(m, Data.Value, opts, 5);
        tr.TrainStep();
        for (int s = 0; s < 3; s++)
        {
            var before = Cpu.Transfers;
            var r = tr.TrainStep();
            var d = Cpu.Transfers - before;
            Assert.That((d.CopiesIn, d.CopiesOut, d.Syncs), Is.EqualTo((1L, 1L, 0L)), $"step {r.Step}: {d}");
            int k1 = conditional ? 11 : 0;
            Assert.That(d.FloatsIn, Is.EqualTo(4L * 64 + 3 * 3 * 4 + 4 * k1),
                "batch + 3 passes × (t, √ᾱ, √(1−ᾱ)) + labels");
            Assert.That(d.FloatsOut, Is.EqualTo(m.Parameters().Count + 3), "Σg² per parameter and the 3 losses");
            Assert.That(r.Losses.Select(l => l.Loss), Has.All.Matches<double>(v => double.IsFinite(v) && v > 0));
        }
    }
}
