namespace Ddsm.Runs;

/// <summary>What <c>ddsm search</c> runs.</summary>
/// <param name="Data">the reference data set; null: the one the model was trained on (else fmnist-embedded).</param>
public sealed record SearchSettings(string Checkpoint, string Features, string? Data, string Cache, string OutDir,
    SamplerKind Sampler, int SamplerSteps, int Count, int Batch, int Population, int Generations, double Mutation,
    int Block, double Lambda, bool Resume, ulong Seed);

/// <summary>A finished search: what was searched, the best strategy, and its comparison on the same noise.</summary>
public sealed record SearchOutcome(SearchSettings Settings, string CheckpointPath, string ModelName, string? ModelNote,
    SearchOptions Options, int Evaluations, StepStrategy Best, IReadOnlyList<ComparisonRow> Rows, EvalResult Baseline,
    double FdSpread, string ReportPath);

/// <summary>Where a search tells how it is going (each null: not told).</summary>
public sealed record SearchEvents(Action<string>? Note = null, Action<SearchProgress>? Evaluation = null,
    Action<SearchProgress>? Generation = null);

/// <summary>
/// NSGA-II over step strategies of a checkpoint on (FD, GFLOPs), every candidate sampled from the same noise,
/// memoised and resumable; then the comparison table (full width, searched, the uniform width of equal cost,
/// a second seed, real-vs-real) on the same noise. Writes best.json, pareto.csv, best.svg, samples.png
/// (the searched strategy's first 64 images) and report.md into the output directory.
/// </summary>
public static class SearchRun
{
    public static SearchOutcome Run(SearchSettings s, Backend be, SearchEvents? events = null)
    {
        var ev = events ?? new SearchEvents();
        if (s.Count < 2 || s.SamplerSteps <= 0 || s.Generations < 0)
            throw new ArgumentException("search: -n must be ≥ 2, --steps positive and --generations ≥ 0");
        OutputFiles.CheckDirectory(s.OutDir);
        // A step-adaptive checkpoint is searched with each candidate's widths capped at each group's.
        using var loaded = LoadedModel.Load(s.Checkpoint, be, new LoadOptions(CapGroups: true));
        var (model, cfg, sched) = (loaded.Denoiser, loaded.Config, loaded.Schedule);
        if (loaded.Note is { } note) ev.Note?.Invoke(note);
        using var scoring =
            Scoring.Open(be, s.Features, s.Data ?? loaded.DataSpec ?? "fmnist-embedded", s.Cache, s.Count);
        var so = new SamplerOptions(s.SamplerSteps);
        SamplingEvaluator Make(ulong seed) =>
            scoring.Sampling(model, sched, new SampleSpec(s.Sampler, so, s.Count, s.Batch, seed));

        Directory.CreateDirectory(s.OutDir);
        var statePath = Path.Combine(s.OutDir, "search-state.json");
        var opts = new SearchOptions
        {
            T = sched.T, Widths = cfg.Widths, BlockSize = s.Block, PopulationSize = s.Population,
            Generations = s.Generations,
            MutationRate = s.Mutation, Lambda = s.Lambda, Seed = s.Seed,
        };
        var search = s.Resume && File.Exists(statePath)
            ? EvolutionarySearch.Resume(statePath, Make(s.Seed))
            : new EvolutionarySearch(opts, Make(s.Seed), statePath);
        opts = search.Options;
        ev.Note?.Invoke($"search: {opts.GeneCount} genes × {cfg.Widths.Length} widths, population " +
                        $"{opts.PopulationSize}, {opts.Generations} generations, {s.Count} images per candidate " +
                        $"({s.Sampler}, {s.SamplerSteps} steps)");
        search.OnEvaluation = ev.Evaluation;
        search.OnGeneration = ev.Generation;
        search.Run();
        search.WriteResults(s.OutDir);
        var best = search.ToStrategy(search.Best().Genome);

        ev.Note?.Invoke("comparison on the same noise:");
        void Grid(string name, float[] images)
        {
            if (name != "searched") return;
            int k = Math.Min(s.Count, 64), c = cfg.ImageChannels, px = cfg.ImageSize;
            ImageGrid.WritePng(Path.Combine(s.OutDir, "samples.png"), images.AsSpan(0, k * cfg.Image.Floats), k, c, px,
                px, (int)Math.Ceiling(Math.Sqrt(k)));
        }
        var (rows, baseline, spread) = StrategyComparison.Run(Make, scoring.Scorer, scoring.HeldOut, cfg, best, s.Count,
            s.Seed, m => ev.Note?.Invoke("  " + m), Grid);
        var outcome = new SearchOutcome(s, loaded.Path, cfg.Name, loaded.Note, opts, search.Evaluations, best, rows,
            baseline, spread, Path.Combine(s.OutDir, "report.md"));
        AtomicFile.WriteAllText(outcome.ReportPath, SearchReport.Markdown(outcome));
        return outcome;
    }
}
