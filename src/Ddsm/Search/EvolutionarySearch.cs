namespace Ddsm.Search;

/// <summary>
/// DDSM's search stage: NSGA-II over per-step (or per-block) width genomes, minimising
/// (quality, cost). Elitist (μ+λ) with λ = μ: binary tournament on (rank, crowding), single-point
/// crossover, per-gene mutation; the initial population is every uniform strategy plus random ones.
/// Beyond the public code: results are memoised by gene string (an evaluation is minutes of
/// sampling), and the whole state is saved atomically after every generation (and, by default,
/// after every evaluation) so <see cref="Resume"/> continues a killed run bit for bit.
/// </summary>
public sealed class EvolutionarySearch
{
    private readonly IStrategyEvaluator _evaluator;
    private readonly Rng _rng;
    private readonly Dictionary<string, Objectives> _memo = [];
    private List<Individual> _population = [];
    private int[] _rank = [];
    private double[] _crowd = [];
    private (string Key, Objectives Obj)? _best;
    // Rng state at the last generation boundary: what a resume must restart from (see SearchState).
    private ulong[] _boundaryRng;

    public SearchOptions Options { get; }
    /// <summary>Completed generations; −1 before the initial population is evaluated, 0 after.</summary>
    public int Generation { get; private set; } = -1;
    public IReadOnlyList<Individual> Population => _population;
    /// <summary>Every candidate ever evaluated (gene string → objectives).</summary>
    public IReadOnlyDictionary<string, Objectives> Memo => _memo;
    /// <summary>Calls made to the evaluator over the whole run, resumes included (= memo size).</summary>
    public int Evaluations => _memo.Count;
    /// <summary>Where state is saved (null = nowhere).</summary>
    public string? StatePath { get; }
    public Action<SearchProgress>? OnEvaluation { get; set; }
    public Action<SearchProgress>? OnGeneration { get; set; }

    public EvolutionarySearch(SearchOptions options, IStrategyEvaluator evaluator, string? statePath = null)
    {
        options.Validate();
        Options = options;
        _evaluator = evaluator;
        StatePath = statePath;
        _rng = new Rng(options.Seed);
        _boundaryRng = _rng.GetState();
    }

    /// <summary>Continues the run saved at <paramref name="path"/> (options come from the file).</summary>
    public static EvolutionarySearch Resume(string path, IStrategyEvaluator evaluator)
    {
        var st = SearchState.Load(path);
        var s = new EvolutionarySearch(st.Options, evaluator, path);
        s._rng.SetState(st.Rng);
        s._boundaryRng = st.Rng;
        foreach (var (k, v) in st.Memo)
        {
            var g = Genome.Parse(k, st.Options.BlockSize);
            if (g.Length != st.Options.GeneCount)
                throw new FormatException(
                    $"search state '{path}': memo genome of {g.Length} genes, options need {st.Options.GeneCount}");
            s.Remember(k, new Objectives(v[0], v[1]));
        }
        s.Generation = st.Generation;
        s.SetPopulation(st.Population.Select(k => new Individual(Genome.Parse(k, st.Options.BlockSize), s._memo[k]))
            .ToList());
        return s;
    }

    /// <summary>
    /// Runs until <paramref name="untilGeneration"/> generations are complete (default: Options.Generations).
    /// </summary>
    public void Run(int? untilGeneration = null, CancellationToken cancel = default)
    {
        int until = untilGeneration ?? Options.Generations;
        if (Generation < 0) { cancel.ThrowIfCancellationRequested(); Initialize(); }
        while (Generation < until) { cancel.ThrowIfCancellationRequested(); Step(); }
    }

    /// <summary>
    /// Generation 0: every uniform strategy (one per allowed width, narrowest first) plus random genomes.
    /// </summary>
    public void Initialize()
    {
        if (Generation >= 0) throw new InvalidOperationException("search: already initialised");
        int n = Options.GeneCount, mu = Options.PopulationSize;
        var genomes = new List<Genome>();
        var seen = new HashSet<string>();
        void Add(Genome g) { if (genomes.Count < mu && seen.Add(g.Key)) genomes.Add(g); }
        for (int w = 0; w < Options.Widths.Length; w++) Add(Genome.Uniform(w, n, Options.BlockSize));
        // Bounded: a tiny space (few genes, few widths) may hold fewer than μ distinct genomes.
        double space = Math.Pow(Options.Widths.Length, n);
        for (int tries = 0; genomes.Count < mu && genomes.Count < space && tries < 100 * mu; tries++)
            Add(Genome.Random(_rng, n, Options.Widths.Length, Options.BlockSize));
        SetPopulation(genomes.Select(Evaluate).ToList());
        Generation = 0;
        _boundaryRng = _rng.GetState();
        SaveState();
        ReportGeneration();
    }

    /// <summary>One generation: μ offspring, evaluated, then (μ+λ) survival.</summary>
    public void Step()
    {
        if (Generation < 0) throw new InvalidOperationException("search: Initialize first");
        // All random choices of the generation happen before any evaluation: a resume from the
        // boundary Rng state then re-creates exactly these offspring whatever was evaluated.
        var children = MakeOffspring(Options.PopulationSize);
        var evaluated = children.Select(Evaluate).ToList();
        SetPopulation(Survive(_population.Concat(evaluated).ToList()));
        Generation++;
        _boundaryRng = _rng.GetState();
        SaveState();
        ReportGeneration();
    }

    /// <summary>The non-dominated members of the current population, by ascending cost.</summary>
    public IReadOnlyList<Individual> Front()
    {
        var pts = _population.Select(i => i.Objectives).ToList();
        var fronts = Nsga2.NonDominatedSort(pts, out _);
        return fronts.Count == 0 ? []
            : fronts[0].Select(i => _population[i]).OrderBy(i => i.Cost).ThenBy(i => i.Quality).ToList();
    }

    /// <summary>The single pick: the lowest quality + λ·cost on the final front (ties: lower cost).</summary>
    public Individual Best()
    {
        var front = Front();
        if (front.Count == 0) throw new InvalidOperationException("search: no population yet");
        return front.OrderBy(i => i.Objectives.Weighted(Options.Lambda)).ThenBy(i => i.Cost)
            .ThenBy(i => i.Genome.Key, StringComparer.Ordinal).First();
    }

    public StepStrategy ToStrategy(Genome g) => g.ToStrategy(Options.T, Options.Widths);

    /// <summary>Writes best.json (StepStrategy), pareto.csv and best.svg into <paramref name="dir"/>.</summary>
    public void WriteResults(string dir)
    {
        Directory.CreateDirectory(dir);
        var best = ToStrategy(Best().Genome);
        best.Save(Path.Combine(dir, "best.json"));
        ParetoCsv.Write(Path.Combine(dir, "pareto.csv"), Front(), Options.Lambda);
        StrategyPlot.WriteSvg(Path.Combine(dir, "best.svg"), best, $"DDSM searched strategy (generation {Generation})");
    }

    private Individual Evaluate(Genome g)
    {
        if (_memo.TryGetValue(g.Key, out var known)) return new Individual(g, known);
        var (q, c) = _evaluator.Evaluate(ToStrategy(g));
        var obj = Objectives.Sanitised(q, c);
        Remember(g.Key, obj);
        if (Options.SaveEveryEvaluation) SaveState();
        var b = _best!.Value;
        OnEvaluation?.Invoke(new SearchProgress(Generation + 1, Options.Generations, false, Evaluations, b.Obj.Quality,
                                                b.Obj.Cost, b.Obj.Weighted(Options.Lambda)));
        return new Individual(g, obj);
    }

    private void Remember(string key, Objectives obj)
    {
        _memo[key] = obj;
        double s = obj.Weighted(Options.Lambda);
        if (_best is not { } b || s < b.Obj.Weighted(Options.Lambda)
            || (s == b.Obj.Weighted(Options.Lambda) && string.CompareOrdinal(key, b.Key) < 0))
            _best = (key, obj);
    }

    private void SetPopulation(List<Individual> pop)
    {
        _population = pop;
        var pts = pop.Select(i => i.Objectives).ToList();
        _rank = new int[pop.Count];
        _crowd = new double[pop.Count];
        if (Options.Mode == SearchMode.Weighted)
        {
            // Single objective: rank = position by score, so the crowded comparison reduces to "lower score wins".
            var order = Enumerable.Range(0, pop.Count).OrderBy(i => pts[i].Weighted(Options.Lambda)).ToArray();
            for (int r = 0; r < order.Length; r++) _rank[order[r]] = r;
            return;
        }
        foreach (var front in Nsga2.NonDominatedSort(pts, out _rank))
        {
            var d = Nsga2.CrowdingDistance(pts, front);
            for (int k = 0; k < front.Length; k++) _crowd[front[k]] = d[k];
        }
    }

    private int Tournament() => Nsga2.BinaryTournament(_rng, _rank, _crowd);

    private List<Genome> MakeOffspring(int count)
    {
        var kids = new List<Genome>(count);
        int n = Options.GeneCount;
        while (kids.Count < count)
        {
            var p1 = _population[Tournament()].Genome.Genes.ToArray();
            var p2 = _population[Tournament()].Genome.Genes.ToArray();
            if (n > 1 && _rng.NextDouble() < Options.CrossoverRate)
            {
                int cut = 1 + _rng.NextInt(n - 1);     // swap the tails [cut, n)
                for (int i = cut; i < n; i++) (p1[i], p2[i]) = (p2[i], p1[i]);
            }
            Mutate(p1); Mutate(p2);
            kids.Add(new Genome(p1, Options.BlockSize));
            if (kids.Count < count) kids.Add(new Genome(p2, Options.BlockSize));
        }
        return kids;
    }

    private void Mutate(int[] genes)
    {
        int nw = Options.Widths.Length;
        if (nw < 2) return;
        for (int i = 0; i < genes.Length; i++)
            if (_rng.NextDouble() < Options.MutationRate)
                genes[i] = (genes[i] + 1 + _rng.NextInt(nw - 1)) % nw;   // uniformly one of the OTHER widths
    }

    /// <summary>
    /// (μ+λ) survival on parents ∪ children with duplicates removed (a copy would take a slot and
    /// shrink diversity): whole fronts while they fit, the last one cut by crowding distance.
    /// </summary>
    private List<Individual> Survive(List<Individual> union)
    {
        var seen = new HashSet<string>();
        var unique = union.Where(i => seen.Add(i.Genome.Key)).ToList();
        int mu = Options.PopulationSize;
        var pts = unique.Select(i => i.Objectives).ToList();
        if (Options.Mode == SearchMode.Weighted)
            return Enumerable.Range(0, unique.Count).OrderBy(i => pts[i].Weighted(Options.Lambda)).Take(mu)
                .Select(i => unique[i]).ToList();
        var next = new List<Individual>(mu);
        foreach (var front in Nsga2.NonDominatedSort(pts, out _))
        {
            if (next.Count + front.Length <= mu) { next.AddRange(front.Select(i => unique[i])); continue; }
            var d = Nsga2.CrowdingDistance(pts, front);
            next.AddRange(Enumerable.Range(0, front.Length).OrderByDescending(k => d[k]).Take(mu - next.Count)
                .Select(k => unique[front[k]]));
            break;
        }
        return next;
    }

    private void SaveState()
    {
        if (StatePath is null) return;
        new SearchState
        {
            Options = Options,
            Generation = Generation,
            Rng = _boundaryRng,
            Population = _population.Select(i => i.Genome.Key).ToList(),
            Memo = _memo.ToDictionary(kv => kv.Key, kv => new[] { kv.Value.Quality, kv.Value.Cost }),
        }.Save(StatePath);
    }

    private void ReportGeneration()
    {
        var b = _best!.Value;
        OnGeneration?.Invoke(new SearchProgress(Generation, Options.Generations, true, Evaluations, b.Obj.Quality,
                                                b.Obj.Cost, b.Obj.Weighted(Options.Lambda)));
    }
}
