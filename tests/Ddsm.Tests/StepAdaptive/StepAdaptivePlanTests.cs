using Ddsm.Diffusion;
using Ddsm.Model;
using Ddsm.StepAdaptive;

namespace Ddsm.Tests.StepAdaptive;

public class StepAdaptivePlanTests
{
    private static readonly UNetConfig Cfg = UNetConfig.Fmnist32;   // widths ¼ ½ ¾ 1
    private static readonly TimestepGroups Groups = TimestepGroups.Build(NoiseSchedule.Linear(1000), 4);

    /// <summary>
    /// Base losses (groups × widths ¼..1) whose rise from width 1 to ¼ is <paramref name="rise"/> per group.
    /// </summary>
    private static double[][] Losses(params double[] rise) =>
        rise.Select((r, g) =>
            { double full = 0.1 + 0.05 *
              g; return new[] { full * (1 + r), full * (1 + r / 2), full * (1 + r / 4), full }; }).ToArray();

    private static double[] Expected(bool highMore, double k = 0.5) =>
        FlopsBudget.Fractions(4, k, highMore)
            .Select(f => FlopsBudget.NearestWidth(f, Cfg.Widths, w => UNetFlops.Forward(Cfg, w).Total)).ToArray();

    [Test]
    public void AutoOrderGivesTheLargerModelsToTheEndThatNarrowingHurtsMore()
    {
        var hardHigh = StepAdaptivePlan.Create(Cfg, Groups, 0.5, BudgetOrder.Auto, Losses(0.1, 0.2, 0.6, 0.9));
        Assert.That(hardHigh.HighNoiseGetsMore, Is.True, hardHigh.OrderReason);
        Assert.That(hardHigh.GroupWidths, Is.EqualTo(Expected(true)));
        Assert.That(hardHigh.GroupWidths, Is.Ordered.Ascending);
        Assert.That(hardHigh.GroupWidths[^1], Is.EqualTo(1.0));
        Assert.That(hardHigh.GroupWidths[0], Is.LessThan(1.0), "k = 0.5 must prune the easy end");

        var hardLow = StepAdaptivePlan.Create(Cfg, Groups, 0.5, BudgetOrder.Auto, Losses(0.9, 0.6, 0.2, 0.1));
        Assert.That(hardLow.HighNoiseGetsMore, Is.False, hardLow.OrderReason);
        Assert.That(hardLow.GroupWidths, Is.EqualTo(Expected(false)));
        Assert.That(hardLow.GroupWidths, Is.EqualTo(hardHigh.GroupWidths.Reverse()));
        Assert.That(hardLow.OrderReason, Does.Contain("low-noise end gets the larger models"));

        // Cost fractions are the real analytic FLOPs of the chosen widths, and their step-weighted mean is reported.
        for (int g = 0; g < 4; g++)
            Assert.That(hardHigh.CostFractions[g],
                        Is.EqualTo((double)UNetFlops.Forward(Cfg, hardHigh.GroupWidths[g]).Total /
                                   UNetFlops.Forward(Cfg, 1.0).Total));
        double mean = Groups.Groups.Sum(g => g.Count * hardHigh.CostFractions[g.Index]) / 1000.0;
        Assert.That(hardHigh.MeanCostFraction(Groups), Is.EqualTo(mean).Within(1e-12));
        Assert.That(mean, Is.LessThan(1.0));
    }

    [Test]
    public void ASearchedStrategyDecidesTheOrderBeforeTheLossAndAnOptionOverridesBoth()
    {
        var lossSaysHigh = Losses(0.1, 0.2, 0.6, 0.9);
        // DDSM-shaped: full width at low noise, ¼ for the noisiest half of the steps.
        var ddsm = new StepStrategy(Enumerable.Range(0, 1000).Select(t => t < 500 ? 1.0 : 0.25).ToArray());
        var p = StepAdaptivePlan.Create(Cfg, Groups, 0.5, BudgetOrder.Auto, lossSaysHigh, ddsm);
        Assert.That(p.HighNoiseGetsMore, Is.False, p.OrderReason);
        Assert.That(p.OrderReason, Does.Contain("the search gave the more noisy half less width"));

        // A uniform searched strategy says nothing about the order: the loss decides.
        var flat =
            StepAdaptivePlan.Create(Cfg, Groups, 0.5, BudgetOrder.Auto, lossSaysHigh, StepStrategy.Uniform(0.5, 1000));
        Assert.That(flat.HighNoiseGetsMore, Is.True, flat.OrderReason);

        var forced = StepAdaptivePlan.Create(Cfg, Groups, 0.5, BudgetOrder.HighNoiseGetsMore, lossSaysHigh, ddsm);
        Assert.That(forced.HighNoiseGetsMore, Is.True);
        Assert.That(forced.OrderReason, Does.StartWith("chosen by option"));

        Assert.That(StepAdaptivePlan.MeanWidths(ddsm, Groups)[0], Is.EqualTo(1.0));
        Assert.That(StepAdaptivePlan.MeanWidths(ddsm, Groups)[^1], Is.EqualTo(0.25));
    }

    [Test]
    public void GroupConfigKeepsTheLayoutAndAllowsTheWidthsUpToTheGroups()
    {
        var c = StepAdaptivePlan.GroupConfig(Cfg, 2, 0.75);
        Assert.That(c.SameArchitecture(Cfg), Is.True);
        Assert.That(c.Widths, Is.EqualTo(new[] { 0.25, 0.5, 0.75 }));
        Assert.That(c.MaxWidth, Is.EqualTo(0.75));
        Assert.That(c.Name, Is.EqualTo("fmnist32-group2"));
    }

    [Test]
    public void PlanRoundTripsThroughJsonAndBadInputIsAnError()
    {
        var p = StepAdaptivePlan.Create(Cfg, Groups, 0.3, BudgetOrder.Auto, Losses(0.1, 0.2, 0.6, 0.9));
        var back = StepAdaptivePlan.FromJson(p.ToJson());
        Assert.That(back.SameAs(p), Is.True);
        Assert.That(back.BaseLoss, Is.EqualTo(p.BaseLoss));
        Assert.That((p with { K = 0.5 }).SameAs(p), Is.False);
        Assert.Throws<ArgumentException>(() =>
            StepAdaptivePlan.Create(Cfg, Groups, 0.5, BudgetOrder.Auto, Losses(0.1, 0.2, 0.3)));
        Assert.Throws<ArgumentException>(() =>
            StepAdaptivePlan.Create(Cfg, Groups, 0.5, BudgetOrder.Auto, Losses(0.1, 0.2, 0.3, 0.4),
                                    StepStrategy.Uniform(1, 500)));
        Assert.Throws<ArgumentException>(() =>
            StepAdaptivePlan.Create(Cfg, Groups, 1.5, BudgetOrder.Auto, Losses(0.1, 0.2, 0.3, 0.4)));
    }
}
