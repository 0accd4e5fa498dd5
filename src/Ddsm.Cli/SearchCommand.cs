using System.CommandLine;
using Ddsm.Diffusion;
using Ddsm.Runs;
using Ddsm.Search;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// <c>ddsm search</c>: NSGA-II over step strategies on (FD, GFLOPs), scored on common random numbers,
/// memoised and resumable; writes best.json, pareto.csv, best.svg and report.md.
/// </summary>
internal static class SearchCommand
{
    public static Command Create()
    {
        var ckpt = new Option<string>("--checkpoint")
        {
            Description = "checkpoint file or run directory (a stepadapt run: widths are capped at each group's)",
            Required = true,
        };
        var features = new Option<string>("--features")
        {
            Description = "feature net (ddsm eval train-features)",
            DefaultValueFactory = _ => "runs/features.safetensors",
        };
        var data = new Option<string?>("--data")
        {
            Description = "reference data set (default: the one the model was trained on, else fmnist-embedded)",
        };
        var sampler = new Option<string>("--sampler")
        {
            Description = "ddim | ddpm | edm | dpm++",
            DefaultValueFactory = _ => "ddim",
        };
        var steps = new Option<int>("--steps") { Description = "sampling steps", DefaultValueFactory = _ => 50 };
        var n = new Option<int>("-n")
        {
            Description = "images per candidate (same noise for every candidate)",
            DefaultValueFactory = _ => 500,
        };
        var batch = new Option<int>("--batch") { Description = "images per forward", DefaultValueFactory = _ => 50 };
        var pop = new Option<int>("--population") { DefaultValueFactory = _ => 50 };
        var gens = new Option<int>("--generations") { DefaultValueFactory = _ => 10 };
        var mut = new Option<double>("--mutation")
        {
            Description = "per-gene mutation rate", DefaultValueFactory = _ => 0.001,
        };
        var block = new Option<int>("--block")
        {
            Description = "timesteps per gene (cuts noise; 1 = per step)",
            DefaultValueFactory = _ => 50,
        };
        var lambda = new Option<double>("--lambda")
        {
            Description = "weight of GFLOPs in FD + λ·GFLOPs",
            DefaultValueFactory = _ => 0.1,
        };
        var outDir = new Option<string>("--out") { DefaultValueFactory = _ => "runs/search" };
        var resume = new Option<bool>("--resume") { Description = "continue the search state in --out" };
        var device = Common.Device(); var seed = Common.Seed(); var cache = Common.CacheDir();
        var cmd = new Command("search", "evolutionary search for the step strategy (NSGA-II on FD and GFLOPs)")
            { ckpt, features, data, sampler, steps, n, batch, pop, gens, mut, block, lambda, outDir, resume, device,
              seed, cache };
        cmd.SetAction(p => Common.Guard(() =>
        {
            Run(new SearchSettings(p.GetValue(ckpt)!, p.GetValue(features)!, p.GetValue(data), p.GetValue(cache)!,
                p.GetValue(outDir)!, Sampler.Parse(p.GetValue(sampler)!), p.GetValue(steps), p.GetValue(n),
                p.GetValue(batch),
                p.GetValue(pop), p.GetValue(gens), p.GetValue(mut), p.GetValue(block), p.GetValue(lambda),
                p.GetValue(resume), p.GetValue(seed)), p.GetValue(device)!);
            return 0;
        }));
        return cmd;
    }

    /// <summary>Runs the search with progress lines and prints the comparison table.</summary>
    public static SearchOutcome Run(SearchSettings s, string device)
    {
        static string Line(SearchProgress pr) =>
            $"generation {pr.Generation}/{pr.Generations}: {pr.Evaluations} strategies evaluated; best FD " +
            $"{pr.BestQuality:F3} at {pr.BestCost:F2} GFLOPs/image (score {pr.BestScore:F3})";
        var events = new SearchEvents(
            Note: Console.WriteLine,
            Evaluation: pr => { if (!Console.IsOutputRedirected) Console.Write("\r  " + Line(pr) + "   "); },
            Generation: pr => Console.WriteLine("\r  " + Line(pr) + "   "));
        var outcome = SearchRun.Run(s, Devices.Create(device), events);
        Console.WriteLine(StrategyComparison.Markdown(outcome.Rows, outcome.Baseline, outcome.FdSpread));
        AnsiConsole.WriteLine($"report: {Path.GetFullPath(outcome.ReportPath)}");
        return outcome;
    }
}
