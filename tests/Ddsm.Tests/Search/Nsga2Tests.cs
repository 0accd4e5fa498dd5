using Ddsm.Search;

namespace Ddsm.Tests.Search;

public class Nsga2Tests
{
    private static List<Objectives> P(params (double q, double c)[] pts) =>
        pts.Select(p => new Objectives(p.q, p.c)).ToList();

    [Test]
    public void DominanceIsStrictInOneAndWeakInBoth()
    {
        Assert.That(Nsga2.Dominates(new(1, 1), new(1, 2)), Is.True);
        Assert.That(Nsga2.Dominates(new(1, 1), new(1, 1)), Is.False, "equal points do not dominate");
        Assert.That(Nsga2.Dominates(new(0, 3), new(1, 2)), Is.False, "a trade-off does not dominate");
        Assert.That(Nsga2.Dominates(new(2, 2), new(1, 1)), Is.False);
    }

    [Test]
    public void NonDominatedSortFindsHandMadeFronts()
    {
        // Front 0: (1,5) (2,3) (4,1); front 1: (3,4) (5,2) [dominated by (2,3)/(4,1)]; front 2: (6,6); duplicate (2,3)
        // shares front 0.
        var pts = P((3, 4), (1, 5), (6, 6), (2, 3), (5, 2), (4, 1), (2, 3));
        var fronts = Nsga2.NonDominatedSort(pts, out var rank);
        Assert.That(fronts.Count, Is.EqualTo(3));
        Assert.That(fronts[0], Is.EqualTo(new[] { 1, 3, 5, 6 }));
        Assert.That(fronts[1], Is.EqualTo(new[] { 0, 4 }));
        Assert.That(fronts[2], Is.EqualTo(new[] { 2 }));
        Assert.That(rank, Is.EqualTo(new[] { 1, 0, 2, 0, 1, 0, 0 }));
    }

    [Test]
    public void NonDominatedSortAgreesWithBruteForceOnRandomPoints()
    {
        var rng = new Ddsm.Engine.Rng(11);
        // Integer-valued coordinates so ties and duplicates occur.
        var pts = Enumerable.Range(0, 60).Select(_ => new Objectives(rng.NextInt(10), rng.NextInt(10))).ToList();
        Nsga2.NonDominatedSort(pts, out var rank);
        // Brute-force definition: rank(p) = 1 + max rank of the points dominating p (0 if none).
        var expect = new int[pts.Count];
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int p = 0; p < pts.Count; p++)
            {
                int r = 0;
                for (int q = 0; q < pts.Count; q++) if (Nsga2.Dominates(pts[q], pts[p])) r = Math.Max(r, expect[q] + 1);
                if (r != expect[p]) { expect[p] = r; changed = true; }
            }
        }
        Assert.That(rank, Is.EqualTo(expect));
        Assert.That(rank.Max(), Is.GreaterThan(2), "the random set must have several fronts to test anything");
    }

    [Test]
    public void CrowdingDistanceByHand()
    {
        // Front sorted by quality: (0,10) (1,6) (3,3) (6,1) (10,0); quality span 10, cost span 10.
        var pts = P((3, 3), (0, 10), (10, 0), (1, 6), (6, 1), (99, 99));
        var front = new[] { 0, 1, 2, 3, 4 };
        var d = Nsga2.CrowdingDistance(pts, front);
        Assert.That(double.IsPositiveInfinity(d[1]) && double.IsPositiveInfinity(d[2]), Is.True, "the extremes");
        // (1,6): (3−0)/10 + (10−3)/10 = 1.0; (3,3): (6−1)/10 + (6−1)/10 = 1.0; (6,1): (10−3)/10 + (3−0)/10 = 1.0
        Assert.That(d[3], Is.EqualTo(1.0).Within(1e-12));
        Assert.That(d[0], Is.EqualTo(1.0).Within(1e-12));
        Assert.That(d[4], Is.EqualTo(1.0).Within(1e-12));

        // Uneven spacing: (0,4) (1,3) (3,1) (4,0): interior (1,3): 3/4 + 3/4 = 1.5; (3,1): 3/4+3/4 = 1.5; move one
        // point to break symmetry.
        var pts2 = P((0, 4), (1, 3.5), (3, 1), (4, 0));
        var d2 = Nsga2.CrowdingDistance(pts2, [0, 1, 2, 3]);
        Assert.That(d2[1], Is.EqualTo(3.0 / 4 + 3.0 / 4).Within(1e-12));   // quality gap 3−0, cost gap 4−1, spans 4
        Assert.That(d2[2], Is.EqualTo(3.0 / 4 + 3.5 / 4).Within(1e-12));   // quality gap 4−1, cost gap 3.5−0
        Assert.That(Nsga2.CrowdingDistance(pts2, [1, 2]), Is.All.EqualTo(double.PositiveInfinity));
    }

    [Test]
    public void CrowdedComparisonPrefersRankThenSpread()
    {
        Assert.That(Nsga2.CrowdedBetter(0, 0.1, 1, double.PositiveInfinity), Is.True);
        Assert.That(Nsga2.CrowdedBetter(1, 2.0, 1, 1.0), Is.True);
        Assert.That(Nsga2.CrowdedBetter(1, 1.0, 1, 1.0), Is.False);
    }

    [Test]
    public void BinaryTournamentPicksTheCrowdedBetterOfTwoDraws()
    {
        var rng = new Ddsm.Engine.Rng(3);
        int[] rank = [2, 0, 1, 0, 1, 3, 0, 2];
        double[] crowd = [1, 0.5, double.PositiveInfinity, 2, 0.1, 9, 0.5, 3];
        var shadow = new Ddsm.Engine.Rng(3);          // replays the two draws
        int bestWins = 0;
        for (int k = 0; k < 2000; k++)
        {
            int w = Nsga2.BinaryTournament(rng, rank, crowd);
            int a = shadow.NextInt(rank.Length), b = shadow.NextInt(rank.Length);
            Assert.That(w, Is.EqualTo(a).Or.EqualTo(b));
            int loser = w == a ? b : a;
            Assert.That(rank[w] < rank[loser] || (rank[w] == rank[loser] && crowd[w] >= crowd[loser]), Is.True,
                        $"{w} beat {loser}");
            if (w == 3) bestWins++;
        }
        // Member 3 (rank 0, largest crowding among rank 0) wins every tournament it enters: 1 − (7/8)² ≈ 23 % of 2000.
        Assert.That(bestWins, Is.InRange(380, 560));
    }

    [Test]
    public void HypervolumeByHand()
    {
        // Staircase (1,3) (2,1) with reference (4,4): [1..2)×(4−3)... in (cost, quality) terms:
        // sorted by cost: (q=2,c=1) covers cost 1..3 at height 4−2 = 2 → 4; (q=1,c=3) covers 3..4 at height 3 → 3.
        var pts = P((2, 1), (1, 3), (3, 3.5), (5, 0));   // (3,3.5) dominated, (5,0) outside the reference
        Assert.That(Hypervolume.Of(pts, new Objectives(4, 4)), Is.EqualTo(7.0).Within(1e-12));
    }
}
