using Ddsm.Search;

namespace Ddsm.Tests.Search;

/// <summary>How good a front is, for judging the search in tests.</summary>
internal static class Hypervolume
{
    /// <summary>
    /// Area dominated by the non-dominated subset of <paramref name="pts"/> and bounded by the
    /// reference point (both objectives minimised); points not strictly better than the reference
    /// in both objectives add nothing. The usual single-number measure of how good a front is.
    /// </summary>
    public static double Of(IEnumerable<Objectives> pts, Objectives reference)
    {
        var inside = pts.Where(p => p.Quality < reference.Quality && p.Cost < reference.Cost)
                        .OrderBy(p => p.Cost).ThenBy(p => p.Quality).ToList();
        double area = 0, bestQ = reference.Quality;
        for (int i = 0; i < inside.Count; i++)
        {
            // Sweep by ascending cost: each point that improves quality adds a slab up to the next cost.
            if (inside[i].Quality >= bestQ) continue;
            bestQ = inside[i].Quality;
            double nextCost = reference.Cost;
            for (int j = i + 1; j < inside.Count; j++)
                if (inside[j].Quality < bestQ) { nextCost = inside[j].Cost; break; }
            area += (nextCost - inside[i].Cost) * (reference.Quality - bestQ);
        }
        return area;
    }
}
