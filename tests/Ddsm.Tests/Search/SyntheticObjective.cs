using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Search;

namespace Ddsm.Tests.Search;

/// <summary>
/// An instant evaluator with a known answer: quality = Σ_t (w_t − target_t)², cost = Σ_t w_t, with
/// target_t drawn from the allowed widths. Separable per timestep, so the exact Pareto front comes
/// from a dynamic programme over timesteps (the least quality for every total cost).
/// </summary>
internal sealed class SyntheticObjective : IStrategyEvaluator
{
    public static readonly double[] Widths = [0.25, 0.5, 0.75, 1.0];
    public double[] Target { get; }
    public int Calls { get; private set; }
    public HashSet<string> Seen { get; } = [];
    /// <summary>Throw after this many calls (simulates a kill mid-run); -1 = never.</summary>
    public int FailAfter { get; set; } = -1;

    public SyntheticObjective(int T, ulong seed)
    {
        var rng = new Rng(seed);
        Target = Enumerable.Range(0, T).Select(_ => Widths[rng.NextInt(Widths.Length)]).ToArray();
    }

    public (double quality, double cost) Evaluate(StepStrategy s)
    {
        if (FailAfter >= 0 && Calls >= FailAfter) throw new OperationCanceledException("simulated kill");
        // The memo must make every evaluated strategy distinct.
        if (!Seen.Add(string.Join(",", s.Widths)))
            throw new AssertionException($"strategy evaluated twice: {string.Join(",", s.Widths)}");
        Calls++;
        double q = 0, c = 0;
        for (int t = 0; t < s.T; t++) { q += (s[t] - Target[t]) * (s[t] - Target[t]); c += s[t]; }
        return (q, c);
    }

    /// <summary>
    /// Exact Pareto front: for each total cost (in units of 0.25) the least quality, then non-dominated filter.
    /// </summary>
    public List<Objectives> TrueFront()
    {
        int T = Target.Length, maxU = 4 * T;
        var best = new double[maxU + 1];
        Array.Fill(best, double.PositiveInfinity);
        best[0] = 0;
        for (int t = 0; t < T; t++)
        {
            var next = new double[maxU + 1];
            Array.Fill(next, double.PositiveInfinity);
            for (int u = 0; u <= maxU; u++)
            {
                if (double.IsPositiveInfinity(best[u])) continue;
                for (int k = 1; k <= 4; k++)
                {
                    double w = k / 4.0, q = best[u] + (w - Target[t]) * (w - Target[t]);
                    if (u + k <= maxU && q < next[u + k]) next[u + k] = q;
                }
            }
            best = next;
        }
        var pts = Enumerable.Range(0, maxU + 1).Where(u => !double.IsPositiveInfinity(best[u]))
                            .Select(u => new Objectives(best[u], u / 4.0)).ToList();
        return pts.Where(p => !pts.Any(o => Nsga2.Dominates(o, p))).ToList();
    }
}
