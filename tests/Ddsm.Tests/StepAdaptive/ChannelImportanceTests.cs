using Ddsm.Data;
using Ddsm.Diffusion;
using Ddsm.Model;
using Ddsm.StepAdaptive;
using static Ddsm.Tests.StepAdaptive.StepAdaptiveTestUtil;

namespace Ddsm.Tests.StepAdaptive;

public class ChannelImportanceTests
{
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(8));
    private static readonly NoiseSchedule Schedule = NoiseSchedule.Linear(1000);
    private static readonly ImportanceOptions Opts = new(Batches: 2, BatchSize: 4, Seed: 5);

    /// <summary>
    /// Importance ordering end to end on the test UNet for the noisiest of 2 SNR groups: the plan keeps
    /// the full-width function; scores recomputed on the permuted model (same batches, same noise) are
    /// the old scores carried along with their channels, and are sorted — descending inside every leaf of
    /// the constraint tree, and by descending block sum among interchangeable blocks.
    /// </summary>
    [Test]
    public void ImportancePlanSortsEverySpaceAndKeepsTheFunction()
    {
        var cfg = ChannelPermutationTests.Cfg("test");
        using var m = new SlimUNet(Cpu, cfg, 1);
        Randomise(m, 2);
        var group = TimestepGroups.Build(Schedule, 2).Groups[1];
        var s0 = ChannelImportance.Compute(m, Data.Value, Schedule, group, Opts);
        Assert.That(s0.BySpace.Keys, Is.EquivalentTo(ChannelPermutation.Spaces(m).Select(s => s.Name)));
        foreach (var (name, s) in s0.BySpace)
            Assert.That(s.All(v => double.IsFinite(v) && v > 0), Is.True, $"{name}: every channel has some importance");
        Assert.That(m.Parameters().All(p => p.Grad is null || p.Grad.ToArray().All(g => g == 0)), Is.True,
                    "gradients are left zeroed");

        var before = Forward(m, 1.0, 9);
        var plan = ChannelPermutation.Compute(m, s0);
        Assert.That(plan.IsIdentity(), Is.False, "random weights are not already in importance order");
        ChannelPermutation.Apply(m, plan);
        Assert.That(RelDiff(before, Forward(m, 1.0, 9)), Is.LessThan(1e-5));

        var s1 = ChannelImportance.Compute(m, Data.Value, Schedule, group, Opts);
        var trees = ChannelPermutation.Trees(m);
        int checkedBlocks = 0;
        foreach (var (name, perm) in plan.Perms)
        {
            double[] a = s0.BySpace[name], b = s1.BySpace[name];
            double tol = 1e-4 * a.Max();
            for (int p = 0; p < perm.Length; p++)
                Assert.That(b[p], Is.EqualTo(a[perm[p]]).Within(tol + 1e-3 * a[perm[p]]), $"{name}[{p}]");
            checkedBlocks += CheckSorted(trees[name], b, tol, name);
        }
        Assert.That(checkedBlocks, Is.GreaterThan(50));
    }

    /// <summary>Asserts the ordering the plan promises; returns how many orderings were checked.</summary>
    private static int CheckSorted(PermutationTree node, double[] s, double tol, string name)
    {
        if (node.IsLeaf)
        {
            for (int p = node.Start; p + 1 < node.Start + node.Length; p++)
                Assert.That(s[p], Is.GreaterThanOrEqualTo(s[p + 1] - tol),
                            $"{name}: leaf at {node.Start}, position {p}");
            return 1;
        }
        int n = 0;
        var sums = node.Children.Select(c => Enumerable.Range(c.Start, c.Length).Sum(p => s[p])).ToArray();
        for (int i = 0; i < node.Children.Count; i++)
            for (int j = i + 1; j < node.Children.Count; j++)
                if (node.ClassOf[i] == node.ClassOf[j])
                {
                    Assert.That(sums[i], Is.GreaterThanOrEqualTo(sums[j] - tol),
                                $"{name}: blocks at {node.Children[i].Start} and {node.Children[j].Start}");
                    n++;
                }
        return n + node.Children.Sum(c => CheckSorted(c, s, tol, name));
    }

    [Test]
    public void ScoresDependOnTheTimestepGroupAndRejectBadInput()
    {
        using var m = new SlimUNet(Cpu, ChannelPermutationTests.Cfg("test"), 1);
        Randomise(m, 2);
        var groups = TimestepGroups.Build(Schedule, 2);
        var a =
            ChannelImportance.Compute(m, Data.Value, Schedule, groups.Groups[0], Opts).BySpace["input_blocks.0:out"];
        var b =
            ChannelImportance.Compute(m, Data.Value, Schedule, groups.Groups[1], Opts).BySpace["input_blocks.0:out"];
        Assert.That(a, Is.Not.EqualTo(b));
        Assert.Throws<ArgumentException>(() => ChannelImportance.Compute(m, Data.Value, Schedule, 5, 1000, Opts));
        Assert.Throws<ArgumentException>(() =>
            ChannelImportance.Compute(m, Data.Value.ToResolution(16), Schedule, 0, 10, Opts));
        Assert.Throws<ArgumentException>(() =>
            ChannelImportance.Compute(m, Data.Value, Schedule, 0, 10, Opts with { Width = 0.3 }));
    }
}
