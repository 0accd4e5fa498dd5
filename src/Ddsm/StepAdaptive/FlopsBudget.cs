namespace Ddsm.StepAdaptive;

/// <summary>
/// The per-group compute budget of step-adaptive training (Xu et al.): with N groups numbered
/// i = 1..N from low noise to high noise and a minimum ratio k, group i may spend
/// FLOPs_i = (i/N + (N−i)/N·k)·F of the full model's F — a straight line from (1/N + (N−1)/N·k)·F
/// for the least noisy group to the full F for the noisiest. <c>highNoiseGetsMore: false</c>
/// reverses the order (the least noisy group gets F). Group index here is 0-based like
/// <see cref="TimestepGroups"/>: result[g] is group g's fraction.
/// </summary>
public static class FlopsBudget
{
    public static double[] Fractions(int groups, double k, bool highNoiseGetsMore = true)
    {
        if (groups < 1) throw new ArgumentException($"flops budget: {groups} groups < 1");
        if (!(k >= 0 && k <= 1)) throw new ArgumentException($"flops budget: k = {k} outside [0, 1]");
        var f = new double[groups];
        for (int g = 0; g < groups; g++)
        {
            int i = highNoiseGetsMore ? g + 1 : groups - g;
            f[g] = (double)i / groups + (double)(groups - i) / groups * k;
        }
        return f;
    }

    /// <summary>
    /// The allowed width whose relative cost cost(w)/cost(max width) is nearest to
    /// <paramref name="fraction"/> (ties: the wider, so a budget is never undershot on a tie).
    /// </summary>
    public static double NearestWidth(double fraction, IReadOnlyList<double> widths, Func<double, double> costOfWidth)
    {
        if (widths.Count == 0) throw new ArgumentException("flops budget: no allowed widths");
        double full = costOfWidth(widths.Max());
        if (!(full > 0)) throw new ArgumentException("flops budget: cost of the widest width must be > 0");
        double best = widths[0], bestErr = double.PositiveInfinity;
        foreach (var w in widths)
        {
            double err = Math.Abs(costOfWidth(w) / full - fraction);
            if (err < bestErr || (err == bestErr && w > best)) { best = w; bestErr = err; }
        }
        return best;
    }
}
