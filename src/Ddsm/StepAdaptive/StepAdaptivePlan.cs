namespace Ddsm.StepAdaptive;

/// <summary>Which end of the noise range gets the larger models.</summary>
public enum BudgetOrder
{
    /// <summary>
    /// Measured: the end whose loss rises less when the base model is narrowed is the easy one and gets the smaller
    /// models.
    /// </summary>
    Auto,
    /// <summary>Xu et al.'s order: the noisiest group gets the full model, the least noisy the smallest.</summary>
    HighNoiseGetsMore,
    /// <summary>DDSM's finding: noisy steps are prunable, so the least noisy group gets the full model.</summary>
    LowNoiseGetsMore,
}

/// <summary>
/// What step-adaptive training gives each timestep group: its FLOPs fraction from
/// <see cref="FlopsBudget.Fractions"/>, the allowed width whose analytic forward FLOPs come nearest to it,
/// and why the budget runs the way it does. <see cref="BaseLoss"/>[g][i] is the base model's ε-MSE on
/// group g at <see cref="LossWidths"/>[i], the measurement behind <see cref="BudgetOrder.Auto"/>.
/// </summary>
public sealed record StepAdaptivePlan(
    int GroupCount, GroupingMode Grouping, double K, bool HighNoiseGetsMore, string OrderReason,
    double[] Fractions, double[] GroupWidths, double[] CostFractions, double[] LossWidths, double[][] BaseLoss)
{
    /// <summary>Mean FLOPs fraction over timesteps (each group weighted by its step count).</summary>
    public double MeanCostFraction(TimestepGroups groups) =>
        groups.Groups.Sum(g => g.Count * CostFractions[g.Index]) / groups.T;

    /// <summary>
    /// Relative loss increase when group g's base model runs at the smallest instead of the largest width:
    /// L(w_min)/L(w_max) − 1. Small = the group tolerates pruning (an "easy" group).
    /// </summary>
    public static double[] PruningSensitivity(double[][] baseLoss) =>
        baseLoss.Select(l => l[0] / l[^1] - 1).ToArray();

    /// <summary>Mean width a strategy gives each group's timesteps.</summary>
    public static double[] MeanWidths(StepStrategy strategy, TimestepGroups groups) =>
        groups.Groups.Select(g => Enumerable.Range(g.TFirst, g.Count).Average(t => strategy[t])).ToArray();

    /// <param name="searched">
    /// A DDSM searched strategy of the base model: under <see cref="BudgetOrder.Auto"/> the half of the groups it
    /// gave less width is the easy end (a sample-quality measurement); without one, or when both halves got the
    /// same, the ε-MSE rise decides.
    /// </param>
    public static StepAdaptivePlan Create(UNetConfig cfg, TimestepGroups groups, double k, BudgetOrder order,
        double[][] baseLoss, StepStrategy? searched = null)
    {
        int n = groups.Count;
        var widths = cfg.Widths.Order().ToArray();
        if (baseLoss.Length != n || baseLoss.Any(l => l.Length != widths.Length))
            throw new ArgumentException($"step-adaptive plan: base loss must be {n} groups × {widths.Length} widths");
        if (searched is not null && searched.T != groups.T)
            throw new ArgumentException(
                $"step-adaptive plan: searched strategy has T = {searched.T}, the schedule {groups.T}");
        bool highMore;
        string reason;
        var sens = PruningSensitivity(baseLoss);
        string S(IEnumerable<double> v) =>
            string.Join(", ", v.Select(x => x.ToString("0.###", CultureInfo.InvariantCulture)));
        // The less noisy half of the groups against the noisier half (the middle group of an odd count sits out).
        int half = n / 2;
        (double Low, double High) Halves(double[] v) =>
            (v.Take(half).DefaultIfEmpty(0).Average(), v.Skip(n - half).DefaultIfEmpty(0).Average());
        var measured =
            $"narrowing the base model from width {widths[^1]} to {widths[0]} raises its ε-MSE by {S(sens)} " +
            $"(relative, groups from low to high noise)";
        var searchedWidths = searched is null ? null : MeanWidths(searched, groups);
        if (searchedWidths is not null)
            measured += $"; the searched strategy's mean width per group: {S(searchedWidths)}";
        if (order != BudgetOrder.Auto)
        {
            highMore = order == BudgetOrder.HighNoiseGetsMore;
            reason = $"chosen by option ({order}); measured: {measured}";
        }
        else if (n == 1)
        {
            highMore = true;
            reason = "one group: nothing to order";
        }
        else if (searchedWidths is not null && Halves(searchedWidths) is var (wl, wh) && Math.Abs(wl - wh) > 1e-9)
        {
            highMore = wh > wl;
            reason = $"measured: {measured}; the search gave the {(highMore ? "less" : "more")} noisy half less " +
                     $"width ({Math.Min(wl, wh):0.###} vs {Math.Max(wl, wh):0.###}), so the " +
                     $"{(highMore ? "high" : "low")}-noise end gets the larger models";
        }
        else
        {
            var (low, high) = Halves(sens);
            highMore = high >= low;
            reason = $"measured: {measured}; the {(highMore ? "less" : "more")} noisy half tolerates narrowing " +
                     $"better ({Math.Min(low, high):0.###} vs {Math.Max(low, high):0.###}), so the " +
                     $"{(highMore ? "high" : "low")}-noise end gets the larger models";
        }
        var fractions = FlopsBudget.Fractions(n, k, highMore);
        double Cost(double w) => UNetFlops.Forward(cfg, w).Total;
        var gw = fractions.Select(f => FlopsBudget.NearestWidth(f, widths, Cost)).ToArray();
        var cf = gw.Select(w => Cost(w) / Cost(widths[^1])).ToArray();
        return new StepAdaptivePlan(n, groups.Mode, k, highMore, reason, fractions, gw, cf, widths, baseLoss);
    }

    /// <summary>
    /// The config group g's model is built with: the base layout, allowing the widths up to the group's.
    /// </summary>
    public static UNetConfig GroupConfig(UNetConfig baseCfg, int g, double groupWidth) => baseCfg with
    {
        Name = $"{baseCfg.Name}-group{g}",
        Widths = baseCfg.Widths.Where(w => w <= groupWidth + 1e-12).Order().ToArray(),
    };

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    public string ToJson() => JsonSerializer.Serialize(this, Json);
    public static StepAdaptivePlan FromJson(string s) => JsonSerializer.Deserialize<StepAdaptivePlan>(s, Json) ??
        throw new FormatException("plan JSON is empty");

    /// <summary>Same groups, widths and budget (what a resumed run must not change).</summary>
    public bool SameAs(StepAdaptivePlan o) =>
        GroupCount == o.GroupCount && Grouping == o.Grouping && K == o.K && HighNoiseGetsMore == o.HighNoiseGetsMore &&
        GroupWidths.SequenceEqual(o.GroupWidths);

    public string Describe(TimestepGroups groups)
    {
        var sb = new StringBuilder();
        foreach (var g in groups.Groups)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{g.Describe(groups.Count)}: budget {Fractions[g.Index]:P1} of F → width {GroupWidths[g.Index]} " +
                $"({CostFractions[g.Index]:P1} of the full forward's FLOPs)"));
        sb.Append(string.Create(CultureInfo.InvariantCulture,
                                $"mean over timesteps: {MeanCostFraction(groups):P1} of full-width FLOPs; order: " +
                                $"{OrderReason}"));
        return sb.ToString();
    }
}
