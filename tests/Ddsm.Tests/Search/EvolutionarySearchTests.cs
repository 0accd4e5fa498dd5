using Ddsm.Diffusion;
using Ddsm.Search;

namespace Ddsm.Tests.Search;

/// <summary>
/// NSGA-II on <see cref="SyntheticObjective"/> (16 timesteps × 4 widths = 4^16 ≈ 4.3e9 genomes),
/// whose exact Pareto front (35 points) and weighted optimum (the target genome) are known.
/// </summary>
public class EvolutionarySearchTests
{
    private const int T = 16;
    private static SearchOptions Opts(ulong seed = 1, int gens = 10, double mutation = 1.0 / T) => new()
    {
        T = T, Widths = SyntheticObjective.Widths, Generations = gens, MutationRate = mutation, Seed = seed,
        SaveEveryEvaluation = false,
    };

    private static double HypervolumeRatio(EvolutionarySearch s, SyntheticObjective obj)
    {
        var truth = obj.TrueFront();
        // Reference point 10 % beyond the true front's worst quality and cost.
        var reference = new Objectives(truth.Max(p => p.Quality) * 1.1, truth.Max(p => p.Cost) * 1.1);
        return Hypervolume.Of(s.Front().Select(i => i.Objectives), reference) / Hypervolume.Of(truth, reference);
    }

    [Test]
    public void ParetoSearchApproachesTheTrueFront()
    {
        // Mutation 1/genes (one gene per child on average, as 0.001 is for the paper's T = 1000).
        var obj = new SyntheticObjective(T, 42);
        var s = new EvolutionarySearch(Opts(gens: 30), obj);
        s.Run();
        var truth = obj.TrueFront();
        Assert.That(truth.Count, Is.EqualTo(35));
        // No found point may beat the exact front (checks the DP and the objective bookkeeping).
        foreach (var i in s.Front())
            Assert.That(truth.Any(p => Nsga2.Dominates(i.Objectives, p)), Is.False, i.Genome.Key);
        // Measured 0.975 (seed 1); a random population of 50 scores ≈ 0.75 (see the next test's generation 0).
        Assert.That(HypervolumeRatio(s, obj), Is.GreaterThan(0.95));
    }

    [Test]
    public void PaperDefaultsImproveOnTheInitialPopulation()
    {
        // Paper settings (μ = 50, 10 generations, mutation 0.001): progress comes from crossover alone.
        var obj = new SyntheticObjective(T, 42);
        var s = new EvolutionarySearch(Opts(gens: 10, mutation: 0.001), obj);
        Assert.That(s.Options.PopulationSize, Is.EqualTo(50));
        s.Run(untilGeneration: 0);
        double initial = HypervolumeRatio(s, obj);
        s.Run();
        double final = HypervolumeRatio(s, obj);
        TestContext.Out.WriteLine($"hypervolume ratio: generation 0 {initial:0.0000}, generation 10 {final:0.0000}");
        Assert.That(final, Is.GreaterThan(0.90));                 // measured 0.949
        Assert.That(final, Is.GreaterThan(initial + 0.05));
    }

    [Test]
    public void WeightedModeFindsTheSingleObjectiveOptimum()
    {
        // quality + 0.1·cost per step: (w−target)² + 0.1·w is minimised at w = target (a 0.25 step
        // costs ≥ 0.0625 in quality but saves only 0.025), so the optimum is the target genome, score 0.1·Σtarget.
        var obj = new SyntheticObjective(T, 42);
        var s = new EvolutionarySearch(Opts(gens: 30) with { Mode = SearchMode.Weighted, Lambda = 0.1 }, obj);
        s.Run();
        var best = s.Best();
        Assert.That(best.Objectives.Weighted(0.1), Is.EqualTo(0.1 * obj.Target.Sum()).Within(1e-9));
        Assert.That(s.ToStrategy(best.Genome).Widths, Is.EqualTo(obj.Target));
    }

    [Test]
    public void InitialPopulationHoldsEveryUniformStrategy()
    {
        var s = new EvolutionarySearch(Opts(), new SyntheticObjective(T, 42));
        s.Initialize();
        Assert.That(s.Population.Count, Is.EqualTo(50));
        for (int w = 0; w < 4; w++) Assert.That(s.Population[w].Genome.Key, Is.EqualTo(new string((char)('0' + w), T)));
        Assert.That(s.Population.Select(i => i.Genome.Key).Distinct().Count(), Is.EqualTo(50));
    }

    [Test]
    public void MemoPreventsReEvaluation()
    {
        // Mutation 0.001 on 16 genes: most children of similar parents repeat a known genome.
        var obj = new SyntheticObjective(T, 42);   // throws if a strategy reaches it twice
        var s = new EvolutionarySearch(Opts(gens: 10, mutation: 0.001), obj);
        int reported = 0;
        s.OnEvaluation = _ => reported++;
        s.Run();
        Assert.That(obj.Calls, Is.EqualTo(s.Memo.Count));
        Assert.That(reported, Is.EqualTo(obj.Calls));
        Assert.That(obj.Calls, Is.LessThan(50 + 10 * 50), "some offspring were memo hits");
        // Running more generations never revisits a known genome either.
        int before = obj.Calls;
        s.Run(untilGeneration: 12);
        Assert.That(obj.Calls, Is.EqualTo(s.Memo.Count));
        Assert.That(obj.Calls, Is.GreaterThanOrEqualTo(before));
    }

    [Test]
    public void ProgressReportsEachGenerationWithTheBestScore()
    {
        var s = new EvolutionarySearch(Opts(gens: 4), new SyntheticObjective(T, 42));
        var gens = new List<SearchProgress>();
        s.OnGeneration = gens.Add;
        s.Run();
        Assert.That(gens.Select(p => p.Generation), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        Assert.That(gens.All(p => p.GenerationDone && p.Generations == 4), Is.True);
        double bestEver = s.Memo.Values.Min(o => o.Weighted(0.1));
        Assert.That(gens[^1].BestScore, Is.EqualTo(bestEver));
        Assert.That(gens[^1].BestQuality + 0.1 * gens[^1].BestCost, Is.EqualTo(bestEver).Within(1e-12));
        for (int i = 1; i < gens.Count; i++)
            Assert.That(gens[i].BestScore, Is.LessThanOrEqualTo(gens[i - 1].BestScore));
        Assert.That(gens[^1].Evaluations, Is.EqualTo(s.Evaluations));
    }

    [Test]
    public void ResumeAtAGenerationBoundaryMatchesAnUninterruptedRun()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-search-");
        try
        {
            var full = new EvolutionarySearch(Opts(seed: 7, gens: 10), new SyntheticObjective(T, 42));
            full.Run();

            string path = Path.Combine(dir.FullName, "state.json");
            var first = new SyntheticObjective(T, 42);
            new EvolutionarySearch(Opts(seed: 7, gens: 10), first, path).Run(untilGeneration: 3);
            var second = new SyntheticObjective(T, 42);
            foreach (var k in first.Seen) second.Seen.Add(k);        // a second evaluation of any of these fails
            var resumed = EvolutionarySearch.Resume(path, second);
            Assert.That(resumed.Generation, Is.EqualTo(3));
            resumed.Run();

            AssertSameRun(resumed, full);
            Assert.That(first.Calls + second.Calls, Is.EqualTo(full.Evaluations),
                        "nothing evaluated twice across the resume");
        }
        finally { dir.Delete(true); }
    }

    [Test]
    public void ResumeAfterAKillMidGenerationMatchesAndNeverReEvaluates()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-search-");
        try
        {
            var full = new EvolutionarySearch(Opts(seed: 3, gens: 10), new SyntheticObjective(T, 42));
            full.Run();

            // Killed mid-initialisation, then mid-generation: each resume restarts the interrupted
            // generation from its boundary and finds the evaluations already done in the memo.
            string path = Path.Combine(dir.FullName, "state.json");
            var seen = new HashSet<string>();
            int calls = 0, kills = 0;
            var opts = Opts(seed: 3, gens: 10) with { SaveEveryEvaluation = true };
            EvolutionarySearch? s = null;
            foreach (int failAfter in new[] { 20, 57, 80, 100000 })
            {
                var obj = new SyntheticObjective(T, 42) { FailAfter = failAfter };
                foreach (var k in seen) obj.Seen.Add(k);
                s = File.Exists(path) ? EvolutionarySearch.Resume(path, obj) : new EvolutionarySearch(opts, obj, path);
                try { s.Run(); }
                catch (OperationCanceledException) { kills++; }
                calls += obj.Calls;
                seen.UnionWith(obj.Seen);
            }
            Assert.That(kills, Is.EqualTo(3));
            AssertSameRun(s!, full);
            Assert.That(calls, Is.EqualTo(full.Evaluations));
        }
        finally { dir.Delete(true); }
    }

    private static void AssertSameRun(EvolutionarySearch a, EvolutionarySearch b)
    {
        Assert.That(a.Generation, Is.EqualTo(b.Generation));
        Assert.That(a.Population.Select(i => i.Genome.Key), Is.EqualTo(b.Population.Select(i => i.Genome.Key)));
        // exact
        Assert.That(a.Population.Select(i => i.Objectives), Is.EqualTo(b.Population.Select(i => i.Objectives)));
        Assert.That(a.Memo.Keys.Order(), Is.EqualTo(b.Memo.Keys.Order()));
        Assert.That(a.Best().Genome.Key, Is.EqualTo(b.Best().Genome.Key));
    }

    [Test]
    public void StateFileRejectsGarbageAndKeepsOptions()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-search-");
        try
        {
            string path = Path.Combine(dir.FullName, "state.json");
            var opts = Opts(seed: 5, gens: 2) with { BlockSize = 3, Lambda = 0.25, Mode = SearchMode.Weighted };
            var s = new EvolutionarySearch(opts with { T = 17 }, new SyntheticObjective(17, 1), path);
            s.Run();
            var back = EvolutionarySearch.Resume(path, new SyntheticObjective(17, 1));
            Assert.That(back.Options.BlockSize, Is.EqualTo(3));
            Assert.That(back.Options.Lambda, Is.EqualTo(0.25));
            Assert.That(back.Options.Mode, Is.EqualTo(SearchMode.Weighted));
            Assert.That(back.Options.Widths, Is.EqualTo(SyntheticObjective.Widths));
            Assert.That(back.Population.Select(i => i.Genome.Key), Is.EqualTo(s.Population.Select(i => i.Genome.Key)));
            Assert.That(back.Population[0].Genome.Length, Is.EqualTo(6), "17 steps in blocks of 3");

            File.WriteAllText(path, "{\"format\":\"something-else\"}");
            Assert.Throws<FormatException>(() => EvolutionarySearch.Resume(path, new SyntheticObjective(17, 1)));
            File.WriteAllText(path, "not json");
            Assert.Throws<FormatException>(() => EvolutionarySearch.Resume(path, new SyntheticObjective(17, 1)));
        }
        finally { dir.Delete(true); }
    }

    [Test]
    public void FailedCandidatesAreDominatedNotFatal()
    {
        var s = new EvolutionarySearch(Opts(gens: 3), new NanForWideSteps());
        s.Run();
        Assert.That(s.Front().All(i => double.IsFinite(i.Quality)), Is.True);
        Assert.That(s.Memo.Values.Any(o => double.IsPositiveInfinity(o.Quality)), Is.True,
                    "the uniform full-width genome failed");
    }

    private sealed class NanForWideSteps : IStrategyEvaluator
    {
        public (double quality, double cost) Evaluate(StepStrategy s) =>
            (s.Widths.Count(w => w == 1.0) > 8 ? double.NaN : s.Widths.Sum(w => (w - 0.5) * (w - 0.5)), s.Widths.Sum());
    }
}
