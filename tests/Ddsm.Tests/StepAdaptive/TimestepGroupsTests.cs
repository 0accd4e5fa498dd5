using Ddsm.Diffusion;
using Ddsm.StepAdaptive;

namespace Ddsm.Tests.Search;

public class TimestepGroupsTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var sched in new[] { "linear", "cosine" })
            foreach (var mode in new[] { GroupingMode.EqualLogSnr, GroupingMode.EqualCount })
                foreach (var (T, G) in new[] { (1000, 4), (1000, 7), (250, 3) })
                    yield return new TestCaseData(sched, mode, T, G);
    }

    [TestCaseSource(nameof(Cases))]
    public void EveryTimestepLiesInExactlyOneOrderedGroup(string sched, GroupingMode mode, int T, int G)
    {
        var groups = TimestepGroups.Build(NoiseSchedule.ByName(sched, T), G, mode);
        Assert.That(groups.Count, Is.EqualTo(G));
        Assert.That(groups.Groups[0].TFirst, Is.EqualTo(0));
        Assert.That(groups.Groups[^1].TLast, Is.EqualTo(T - 1));
        for (int g = 0; g < G; g++)
        {
            Assert.That(groups.Groups[g].Index, Is.EqualTo(g));
            Assert.That(groups.Groups[g].Count, Is.GreaterThan(0));
            if (g > 0)
                Assert.That(groups.Groups[g].TFirst, Is.EqualTo(groups.Groups[g - 1].TLast + 1),
                            "contiguous, ordered by t");
            if (g > 0)
                Assert.That(groups.Groups[g].LogSnrHigh, Is.LessThanOrEqualTo(groups.Groups[g - 1].LogSnrLow + 1e-12),
                            "ordered low → high noise");
        }
        for (int t = 0; t < T; t++)
        {
            Assert.That(groups.Groups.Count(gr => gr.Contains(t)), Is.EqualTo(1), $"t = {t}");
            Assert.That(groups.Groups[groups.GroupOf(t)].Contains(t), Is.True);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => groups.GroupOf(T));
        Assert.That(groups.Describe().Split('\n').Length, Is.EqualTo(G));
    }

    [TestCase(1000, 4)]
    [TestCase(1000, 7)]
    [TestCase(10, 3)]
    public void EqualCountSizesDifferByAtMostOne(int T, int G)
    {
        var groups = TimestepGroups.Build(NoiseSchedule.Linear(T), G, GroupingMode.EqualCount);
        var sizes = groups.Groups.Select(g => g.Count).ToArray();
        Assert.That(sizes.Sum(), Is.EqualTo(T));
        Assert.That(sizes.Max() - sizes.Min(), Is.LessThanOrEqualTo(1));
    }

    [TestCase("linear", 4)]
    [TestCase("cosine", 5)]
    public void EqualLogSnrIntervalsHaveEqualWidthAndHoldTheirSteps(string sched, int G)
    {
        var s = NoiseSchedule.ByName(sched, 1000);
        var groups = TimestepGroups.Build(s, G, GroupingMode.EqualLogSnr);
        double total = s.LogSnr(0) - s.LogSnr(999);
        foreach (var g in groups.Groups)
        {
            Assert.That(g.LogSnrHigh - g.LogSnrLow, Is.EqualTo(total / G).Within(1e-9 * total));
            for (int t = g.TFirst; t <= g.TLast; t++)
                Assert.That(s.LogSnr(t), Is.InRange(g.LogSnrLow - 1e-9, g.LogSnrHigh + 1e-9),
                            $"t = {t} in group {g.Index}");
        }
        Assert.That(groups.Groups[0].LogSnrHigh, Is.EqualTo(s.LogSnr(0)).Within(1e-12));
        // Equal log-SNR is NOT equal counts on these schedules (else the option would be pointless).
        Assert.That(groups.Groups.Select(g => g.Count).Distinct().Count(), Is.GreaterThan(1));
    }

    [Test]
    public void DescribeNamesRangesAndEmptyIntervalsAreRefused()
    {
        var g = TimestepGroups.Build(NoiseSchedule.Linear(1000), 4).Groups[0];
        Assert.That(g.Describe(4), Does.StartWith($"group 1/4: t 0–{g.TLast} ({g.Count} steps), log-SNR "));
        // 50 equal log-SNR intervals over 50 unevenly spaced steps: some interval holds no step.
        Assert.Throws<ArgumentException>(() => TimestepGroups.Build(NoiseSchedule.Linear(50), 50));
        Assert.Throws<ArgumentException>(() =>
            TimestepGroups.Build(NoiseSchedule.Linear(5), 6, GroupingMode.EqualCount));
    }

    [Test]
    public void FlopsBudgetByHandForFourGroupsAndHalf()
    {
        // FLOPs_i = (i/N + (N−i)/N·k)·F, N = 4, k = 0.5: i=1 0.25+0.375, i=2 0.5+0.25, i=3 0.75+0.125, i=4 1.
        Assert.That(FlopsBudget.Fractions(4, 0.5), Is.EqualTo(new[] { 0.625, 0.75, 0.875, 1.0 }).Within(1e-15));
        Assert.That(FlopsBudget.Fractions(4, 0.5, highNoiseGetsMore: false),
                    Is.EqualTo(new[] { 1.0, 0.875, 0.75, 0.625 }).Within(1e-15));
        Assert.That(FlopsBudget.Fractions(1, 0.3), Is.EqualTo(new[] { 1.0 }));
        Assert.Throws<ArgumentException>(() => FlopsBudget.Fractions(4, 1.5));
    }

    /// <summary>Cost model of a slimmed conv net: both in and out channels scale with w, so FLOPs ∝ w².</summary>
    private static double QuadraticCost(double w) => w * w;

    [Test]
    public void FlopsFractionMapsToTheNearestWidth()
    {
        double[] widths = [0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0];
        // Quadratic cost: relative costs 0.0625 0.1406 0.25 0.3906 0.5625 0.7656 1.
        // |0.5625−0.625| = 0.0625 < 0.1406
        Assert.That(FlopsBudget.NearestWidth(0.625, widths, QuadraticCost), Is.EqualTo(0.75));
        // 0.109 vs 0.125 for 1.0
        Assert.That(FlopsBudget.NearestWidth(0.875, widths, QuadraticCost), Is.EqualTo(0.875));
        Assert.That(FlopsBudget.NearestWidth(0.3, widths, QuadraticCost), Is.EqualTo(0.5));
        Assert.That(FlopsBudget.NearestWidth(0.625, widths, w => w), Is.EqualTo(0.625), "linear cost model");
        Assert.That(FlopsBudget.NearestWidth(0.75, [0.5, 1.0], w => w), Is.EqualTo(1.0), "tie → the wider");
    }
}
