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
        var ckpt = Opt.Required<string>("--checkpoint",
            "checkpoint file or run directory (a stepadapt run: widths are capped at each group's)");
        var features = Opt.Of<string>("--features", "runs/features.safetensors",
            "feature net (ddsm eval train-features)");
        var data = Opt.Of<string?>("--data",
            "reference data set (default: the one the model was trained on, else fmnist-embedded)");
        var sampler = Opt.Of<string>("--sampler", "ddim", "ddim | ddpm | edm | dpm++");
        var steps = Opt.Of<int>("--steps", 50, "sampling steps");
        var n = Opt.Of<int>("-n", 500, "images per candidate (same noise for every candidate)");
        var batch = Opt.Of<int>("--batch", 50, "images per forward");
        var pop = Opt.Of<int>("--population", 50, "strategies per generation");
        var gens = Opt.Of<int>("--generations", 10, "NSGA-II generations");
        var mut = Opt.Of<double>("--mutation", 0.001, "per-gene mutation rate");
        var block = Opt.Of<int>("--block", 50, "timesteps per gene (cuts noise; 1 = per step)");
        var lambda = Opt.Of<double>("--lambda", 0.1, "weight of GFLOPs in FD + λ·GFLOPs");
        var outDir = Opt.Of<string>("--out", "runs/search");
        var resume = Opt.Of<bool>("--resume", "continue the search state in --out");
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
