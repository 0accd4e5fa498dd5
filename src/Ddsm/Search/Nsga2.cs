namespace Ddsm.Search;

/// <summary>
/// The ranking machinery of NSGA-II (Deb, Pratap, Agarwal & Meyarivan 2002) for two minimised
/// objectives: Pareto dominance, fast non-dominated sort, crowding distance and the crowded
/// comparison. Pure functions on index lists so they can be tested on hand-made points.
/// </summary>
public static class Nsga2
{
    /// <summary>a dominates b: no worse in both objectives and strictly better in at least one.</summary>
    public static bool Dominates(Objectives a, Objectives b) =>
        a.Quality <= b.Quality && a.Cost <= b.Cost && (a.Quality < b.Quality || a.Cost < b.Cost);

    /// <summary>
    /// Fast non-dominated sort (O(M·N²)): the fronts F1, F2, … as index lists (indices ascending
    /// within a front, so the result is deterministic) and each point's rank (0 = first front).
    /// </summary>
    public static List<int[]> NonDominatedSort(IReadOnlyList<Objectives> pts, out int[] rank)
    {
        int n = pts.Count;
        var dominated = new List<int>[n];   // S_p: the points p dominates
        var count = new int[n];             // n_p: how many points dominate p
        rank = new int[n];
        var fronts = new List<int[]>();
        var current = new List<int>();
        for (int p = 0; p < n; p++)
        {
            dominated[p] = [];
            for (int q = 0; q < n; q++)
            {
                if (p == q) continue;
                if (Dominates(pts[p], pts[q])) dominated[p].Add(q);
                else if (Dominates(pts[q], pts[p])) count[p]++;
            }
            if (count[p] == 0) current.Add(p);
        }
        int r = 0;
        while (current.Count > 0)
        {
            foreach (var p in current) rank[p] = r;
            fronts.Add(current.ToArray());
            var next = new List<int>();
            foreach (var p in current)
                foreach (var q in dominated[p])
                    if (--count[q] == 0) next.Add(q);
            next.Sort();
            current = next;
            r++;
        }
        return fronts;
    }

    /// <summary>
    /// Crowding distance of each member of <paramref name="front"/> (result aligned with it): the
    /// sum over objectives of the normalised gap between its two neighbours; the extremes of each
    /// objective get +∞ so the ends of the front always survive. An objective that is constant over
    /// the front (or infinite) adds nothing.
    /// </summary>
    public static double[] CrowdingDistance(IReadOnlyList<Objectives> pts, IReadOnlyList<int> front)
    {
        int m = front.Count;
        var d = new double[m];
        if (m <= 2) { Array.Fill(d, double.PositiveInfinity); return d; }
        foreach (var obj in new Func<Objectives, double>[] { o => o.Quality, o => o.Cost })
        {
            // Stable sort by the objective (ties keep front order) so results never depend on the sort's whims.
            var order = Enumerable.Range(0, m).OrderBy(i => obj(pts[front[i]])).ToArray();
            double lo = obj(pts[front[order[0]]]), hi = obj(pts[front[order[m - 1]]]);
            d[order[0]] = d[order[m - 1]] = double.PositiveInfinity;
            double span = hi - lo;
            if (!(span > 0) || double.IsInfinity(span)) continue;
            for (int k = 1; k < m - 1; k++)
                d[order[k]] += (obj(pts[front[order[k + 1]]]) - obj(pts[front[order[k - 1]]])) / span;
        }
        return d;
    }

    /// <summary>Deb's crowded comparison: lower rank wins, then larger crowding distance.</summary>
    public static bool CrowdedBetter(int rankA, double crowdA, int rankB, double crowdB) =>
        rankA < rankB || (rankA == rankB && crowdA > crowdB);

    /// <summary>
    /// Binary tournament: two members drawn uniformly (with replacement); the crowded-better one
    /// wins, the first drawn on a tie. Returns the winner's index.
    /// </summary>
    public static int BinaryTournament(Engine.Rng rng, IReadOnlyList<int> rank, IReadOnlyList<double> crowd)
    {
        int a = rng.NextInt(rank.Count), b = rng.NextInt(rank.Count);
        return CrowdedBetter(rank[b], crowd[b], rank[a], crowd[a]) ? b : a;
    }
}
