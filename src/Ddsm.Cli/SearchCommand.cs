using System.CommandLine;
using Ddsm.Diffusion;
using Ddsm.Eval;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Search;
using Ddsm.Training;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// <c>ddsm search</c>: NSGA-II over step strategies on (FD, GFLOPs), scored on common random numbers,
/// memoised and resumable; writes best.json, pareto.csv, best.svg and report.md.
/// </summary>
internal static class SearchCommand
{
    public sealed record Settings(string Checkpoint, string Features, string Data, string Cache, string Device, string OutDir,
        SamplerKind Sampler, int SamplerSteps, int Count, int Batch, int Population, int Generations, double Mutation,
        int Block, double Lambda, bool Resume, ulong Seed);

    public static Command Create()
    {
        var ckpt = new Option<string>("--checkpoint") { Description = "checkpoint file or run directory (a stepadapt run: widths are capped at each group's)", Required = true };
        var features = new Option<string>("--features") { Description = "feature net (ddsm eval train-features)", DefaultValueFactory = _ => "runs/features.safetensors" };
        var data = new Option<string>("--data") { Description = "reference data set", DefaultValueFactory = _ => "fmnist-embedded" };
        var sampler = new Option<string>("--sampler") { Description = "ddim | ddpm | edm | dpm++", DefaultValueFactory = _ => "ddim" };
        var steps = new Option<int>("--steps") { Description = "sampling steps", DefaultValueFactory = _ => 50 };
        var n = new Option<int>("-n") { Description = "images per candidate (same noise for every candidate)", DefaultValueFactory = _ => 500 };
        var batch = new Option<int>("--batch") { Description = "images per forward", DefaultValueFactory = _ => 50 };
        var pop = new Option<int>("--population") { DefaultValueFactory = _ => 50 };
        var gens = new Option<int>("--generations") { DefaultValueFactory = _ => 10 };
        var mut = new Option<double>("--mutation") { Description = "per-gene mutation rate", DefaultValueFactory = _ => 0.001 };
        var block = new Option<int>("--block") { Description = "timesteps per gene (cuts noise; 1 = per step)", DefaultValueFactory = _ => 50 };
        var lambda = new Option<double>("--lambda") { Description = "weight of GFLOPs in FD + λ·GFLOPs", DefaultValueFactory = _ => 0.1 };
        var outDir = new Option<string>("--out") { DefaultValueFactory = _ => "runs/search" };
        var resume = new Option<bool>("--resume") { Description = "continue the search state in --out" };
        var device = Common.Device(); var seed = Common.Seed(); var cache = Common.CacheDir();
        var cmd = new Command("search", "evolutionary search for the step strategy (NSGA-II on FD and GFLOPs)")
            { ckpt, features, data, sampler, steps, n, batch, pop, gens, mut, block, lambda, outDir, resume, device, seed, cache };
        cmd.SetAction(p => Common.Guard(() => Run(new Settings(p.GetValue(ckpt)!, p.GetValue(features)!, p.GetValue(data)!, p.GetValue(cache)!,
            p.GetValue(device)!, p.GetValue(outDir)!, Sampler.Parse(p.GetValue(sampler)!), p.GetValue(steps), p.GetValue(n), p.GetValue(batch),
            p.GetValue(pop), p.GetValue(gens), p.GetValue(mut), p.GetValue(block), p.GetValue(lambda), p.GetValue(resume), p.GetValue(seed)))));
        return cmd;
    }

    public static int Run(Settings s)
    {
        var be = Common.CreateBackend(s.Device);
        var path = SampleCommand.ResolveCheckpoint(s.Checkpoint);
        // A step-adaptive checkpoint is searched with each candidate's widths capped at each group's.
        using var loaded = SampleCommand.Load(path, be, null, ema: true, capGroups: true);
        var (model, cfg, sched) = (loaded.Denoiser, loaded.Config, loaded.Schedule);
        if (loaded.Note is { } note) AnsiConsole.MarkupLineInterpolated($"{note}");
        using var scoring = Scoring.Open(be, s.Features, s.Data, s.Cache, s.Count);
        var (scorer, held) = (scoring.Scorer, scoring.HeldOut);
        var so = new SamplerOptions(s.SamplerSteps);
        SamplingEvaluator Make(ulong seed) => scoring.Sampling(model, cfg, sched, s.Sampler, so, s.Count, s.Batch, seed, loaded.WidthsRun);
        var evaluator = Make(s.Seed);

        Directory.CreateDirectory(s.OutDir);
        var statePath = Path.Combine(s.OutDir, "search-state.json");
        var opts = new SearchOptions
        {
            T = sched.T, Widths = cfg.Widths, BlockSize = s.Block, PopulationSize = s.Population, Generations = s.Generations,
            MutationRate = s.Mutation, Lambda = s.Lambda, Seed = s.Seed,
        };
        var search = s.Resume && File.Exists(statePath) ? EvolutionarySearch.Resume(statePath, evaluator) : new EvolutionarySearch(opts, evaluator, statePath);
        AnsiConsole.MarkupLineInterpolated($"search: {opts.GeneCount} genes × {cfg.Widths.Length} widths, population {opts.PopulationSize}, {opts.Generations} generations, {s.Count} images per candidate ({s.Sampler}, {s.SamplerSteps} steps)");
        string Line(SearchProgress pr) =>
            $"generation {pr.Generation}/{pr.Generations}: {pr.Evaluations} strategies evaluated; best FD {pr.BestQuality:F3} at {pr.BestCost:F2} GFLOPs/image (score {pr.BestScore:F3})";
        search.OnEvaluation = pr => { if (!Console.IsOutputRedirected) Console.Write("\r  " + Line(pr) + "   "); };
        search.OnGeneration = pr => Console.WriteLine("\r  " + Line(pr) + "   ");
        search.Run();
        search.WriteResults(s.OutDir);
        var best = search.ToStrategy(search.Best().Genome);

        AnsiConsole.MarkupLine("comparison on the same noise:");
        var gridPath = Path.Combine(s.OutDir, "samples.png");
        void Grid(string name, float[] images)
        {
            if (name != "searched") return;
            int k = Math.Min(s.Count, 64);
            ImageGrid.WritePng(gridPath, images.AsSpan(0, k * cfg.ImageChannels * cfg.ImageSize * cfg.ImageSize), k,
                cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize, (int)Math.Ceiling(Math.Sqrt(k)));
        }
        var (rows, baseline, spread) = StrategyComparison.Run(Make, scorer, held, cfg, best, s.Count, s.Seed, m => Console.WriteLine("  " + m), Grid);
        var table = StrategyComparison.Markdown(rows, baseline, spread);
        var report = $"# DDSM search report\n\nCheckpoint `{path}` (model `{cfg.Name}`{(loaded.Note is { } n ? "; " + n : "")}), sampler {s.Sampler} with {s.SamplerSteps} steps, " +
                     $"N = {s.Count} images per score, features: `{s.Features}`.\nSearch: population {opts.PopulationSize}, {opts.Generations} generations, " +
                     $"{opts.GeneCount} genes of {opts.BlockSize} timesteps, mutation {opts.MutationRate}, λ = {opts.Lambda}; {search.Evaluations} strategies evaluated.\n\n" +
                     table + "\nFiles: `best.json` (strategy), `pareto.csv` (front), `best.svg` (width vs timestep), `samples.png` (searched strategy).\n";
        File.WriteAllText(Path.Combine(s.OutDir, "report.md"), report);
        Console.WriteLine(table);
        AnsiConsole.MarkupLineInterpolated($"[green]report:[/] {Path.GetFullPath(Path.Combine(s.OutDir, "report.md"))}");
        return 0;
    }
}
