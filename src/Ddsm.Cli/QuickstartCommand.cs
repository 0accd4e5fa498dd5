using System.CommandLine;
using System.Diagnostics;
using Ddsm.Runs;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// <c>ddsm quickstart</c>, the README's first command: on the embedded Fashion-MNIST subset, train a
/// small slimmable model, train the feature net, run a small strategy search, sample at every width,
/// with a DDSM-shaped strategy and with the searched one, and write one report. Every stage resumes
/// from what an interrupted earlier run left in --out.
/// </summary>
internal static class QuickstartCommand
{
    public static Command Create()
    {
        var steps = Opt.Of<long>("--steps", 300, "training steps");
        var batch = Opt.Of<int>("--batch", 16, "images per step");
        var channels = Opt.Of<int>("--channels", 32, "model channels (fmnist32 layout)");
        var outDir = Opt.Of<string>("--out", "runs/quickstart", "run directory");
        var samples = Opt.Of<int>("--samples", 16, "images per width in the sample grid");
        var searchN = Opt.Of<int>("--search-n", 64, "images per search candidate");
        var gens = Opt.Of<int>("--generations", 3, "search generations");
        var seed = Common.Seed(); var device = Common.Device();
        var cmd = new Command("quickstart",
                              "train, search, sample and report on the embedded Fashion-MNIST subset (no " +
                              "network needed)")
            { steps, batch, channels, outDir, samples, searchN, gens, seed, device };
        cmd.SetAction(p => Common.Guard(() => Run(new QuickstartSettings(p.GetValue(steps), p.GetValue(batch),
            p.GetValue(channels), p.GetValue(outDir)!, p.GetValue(samples), p.GetValue(searchN), p.GetValue(gens),
            p.GetValue(seed),
            Common.DefaultCache), p.GetValue(device)!)));
        return cmd;
    }

    /// <summary>
    /// The four stages, each through its verb's own display; every stage resumes in the output directory.
    /// </summary>
    private static int Run(QuickstartSettings s, string device)
    {
        var clock = Stopwatch.StartNew();
        AnsiConsole.MarkupLine("[bold]1/4 training[/] on the embedded Fashion-MNIST subset");
        int rc = TrainCommand.Train(Quickstart.Config(s.Channels), Quickstart.TrainOptions(s), Quickstart.RunOptions(s),
            Quickstart.Data, s.Cache, device, s.Seed, profile: false);
        if (rc != 0) return rc;

        AnsiConsole.MarkupLine("[bold]2/4 feature net[/] for the quality metrics");
        if (!File.Exists(Quickstart.FeaturesPath(s)))
            EvalCommand.TrainFeatures(Quickstart.Data, s.Cache, 300, device, s.Seed, Quickstart.FeaturesPath(s));

        AnsiConsole.MarkupLine("[bold]3/4 strategy search[/] (NSGA-II on FD and GFLOPs, small budget)");
        var search = SearchCommand.Run(Quickstart.Search(s), device);

        AnsiConsole.MarkupLine(
            "[bold]4/4 sampling[/] at every width, with a DDSM-shaped strategy and with the searched one");
        var (_, report, grid) = Quickstart.SampleAndReport(s, Devices.Create(device), search, clock,
            row =>
                AnsiConsole.WriteLine(
                    $"  {row.Strategy,-14} {row.Gflops,8:F3} GFLOPs/image  {row.MsPerImage,8:F1} ms/image"));
        AnsiConsole.WriteLine($"report: {Path.GetFullPath(report)}  (samples: {grid})");
        return 0;
    }
}
