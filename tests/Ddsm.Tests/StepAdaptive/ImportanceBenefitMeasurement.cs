using Ddsm.Data;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Model;
using Ddsm.StepAdaptive;
using Ddsm.Training;
using static Ddsm.Tests.StepAdaptive.StepAdaptiveTestUtil;

namespace Ddsm.Tests.StepAdaptive;

/// <summary>
/// A measurement, not a check (Explicit: ~1 min on 2 cores): train the test UNet at full width only, then
/// compare its width-½ ε-MSE on one timestep group as is, after the importance plan and after a random
/// full-width plan. All three compute the same full-width function; only the narrow prefix differs.
/// </summary>
[Explicit("measurement: run by hand")]
public class ImportanceBenefitMeasurement
{
    [Test]
    public void NarrowLossBeforeAndAfterImportanceOrdering()
    {
        var data = Datasets.EmbeddedFashionMnist().ToResolution(8);
        var cfg = ChannelPermutationTests.Cfg("test");
        using var m = new SlimUNet(Cpu, cfg, 1);
        var opts = new TrainOptions { BatchSize = 16, Lr = 2e-3f, WarmupSteps = 10, SandwichN = 1 };
        using (var tr = new SandwichTrainer(m, data, opts, 2))
            for (int i = 0; i < 200; i++) tr.TrainStep();
        var sched = NoiseSchedule.Linear(1000);
        var groups = TimestepGroups.Build(sched, 2);
        foreach (var g in groups.Groups)
        {
            var state = m.StateDict();
            double Eval(double w) => EvalLoss(m, data, sched, g, w);
            double full = Eval(1.0), narrow = Eval(0.5);
            var scores =
                ChannelImportance.Compute(m, data, sched, g, new ImportanceOptions(Batches: 8, BatchSize: 16, Seed: 3));
            ChannelPermutation.Apply(m, ChannelPermutation.Compute(m, scores));
            double fullImp = Eval(1.0), narrowImp = Eval(0.5);
            m.LoadState(state);
            var rnd = new List<double>();
            for (ulong s = 0; s < 3; s++)
            {
                ChannelPermutation.Apply(m, ChannelPermutation.Random(m, 100 + s));
                rnd.Add(Eval(0.5));
                m.LoadState(state);
            }
            TestContext.Out.WriteLine($"group {g.Index} (t {g.TFirst}-{g.TLast}): full {full:F4} -> {fullImp:F4}; " +
                                      $"width ½: original {narrow:F4}, importance {narrowImp:F4}, random plans " +
                                      $"{string.Join(" ", rnd.Select(r => r.ToString("F4")))}");
        }
    }

    private static double EvalLoss(SlimUNet m, ImageDataset data, NoiseSchedule sched, TimestepGroup g, double width) =>
        GroupLoss.Mean(m, data, sched, g.TFirst, g.TLast, width,
                       new GroupLossOptions(Batches: 4, BatchSize: 64, Seed: 99));
}
