using System.Diagnostics;

namespace Ddsm.Runs;

/// <summary>What the quickstart runs (every stage resumes in <see cref="OutDir"/>).</summary>
public sealed record QuickstartSettings(long Steps, int Batch, int Channels, string OutDir, int Samples, int SearchN,
    int Generations, ulong Seed, string Cache);

/// <summary>One row of the quickstart's table: a strategy, its GFLOPs per image (op counter) and wall time.</summary>
public sealed record QuickstartRow(string Strategy, double Gflops, double MsPerImage);

/// <summary>
/// The README's first command, as data and one last stage: train a small slimmable model on the embedded
/// Fashion-MNIST subset, train the feature net, search a strategy (the caller runs those three with the
/// settings given here), then <see cref="SampleAndReport"/>: sample at every width, with a DDSM-shaped and with
/// the searched strategy, and write report.md and samples.png.
/// </summary>
public static class Quickstart
{
    public const string Data = "fmnist-embedded";

    /// <summary>
    /// fmnist32 at <paramref name="channels"/> channels, no dropout. Channels 32 keep every width's count a
    /// multiple of 16 groups only at 1/2 and 1; so the model allows {0.5, 1} unless it has a multiple of 64
    /// channels (then 1/4 … 1).
    /// </summary>
    public static UNetConfig Config(int channels) => UNetConfig.Fmnist32 with
    {
        Name = "fmnist32-quick", ModelChannels = channels, Dropout = 0f,
        Widths = channels % 64 == 0 ? [0.25, 0.5, 0.75, 1.0] : [0.5, 1.0], HeadChannels = Math.Min(32, channels),
    };

    public static TrainOptions TrainOptions(QuickstartSettings s) => new()
    {
        BatchSize = s.Batch, Lr = 5e-4f, WarmupSteps = 50, EmaDecay = 0.995f,
        SandwichN = Math.Min(4, Config(s.Channels).Widths.Length),
    };

    public static RunOptions RunOptions(QuickstartSettings s) =>
        new(s.OutDir, s.Steps, CheckpointEvery: 100, KeepCheckpoints: 2, Resume: true, DataSpec: Data);

    public static string FeaturesPath(QuickstartSettings s) => Path.Combine(s.OutDir, "features.safetensors");

    public static SearchSettings Search(QuickstartSettings s) => new(s.OutDir, FeaturesPath(s), Data, s.Cache,
        Path.Combine(s.OutDir, "search"), SamplerKind.Ddim, SamplerSteps: 10, Count: s.SearchN, Batch: 32,
        Population: 8,
        Generations: s.Generations, Mutation: 0.02, Block: 100, Lambda: 0.1, Resume: true, Seed: s.Seed);

    /// <summary>
    /// Samples <see cref="QuickstartSettings.Samples"/> images per strategy (DDIM, 50 steps, EMA weights, the same
    /// noise in every row): each allowed width, the DDSM release's schedule shape, and the searched strategy.
    /// Writes samples.png (one row per strategy) and report.md; <paramref name="clock"/> has run since the start.
    /// </summary>
    public static (IReadOnlyList<QuickstartRow> Rows, string ReportPath, string GridPath) SampleAndReport(
        QuickstartSettings s, Backend be, SearchOutcome search, Stopwatch clock, Action<QuickstartRow>? onRow = null)
    {
        using var loaded = LoadedModel.Load(s.OutDir, be);
        var (model, cfg, sched) = (loaded.Plain!, loaded.Config, loaded.Schedule);
        var strategies = cfg.Widths.Select(w => ($"uniform {w:0.##}", StepStrategy.Uniform(w, sched.T))).ToList();
        // The shape of the DDSM release's CIFAR-10 schedule: full width for the last 27 % of the
        // denoising, the middle width next, the smallest for the noisiest 53 %.
        double mid = cfg.Widths[cfg.Widths.Length / 2], min = cfg.MinWidth;
        strategies.Add(("DDSM-shaped", new StepStrategy(Enumerable.Range(0, sched.T)
            .Select(t => t < 0.27 * sched.T ? 1.0 : t < 0.47 * sched.T ? mid : min).ToArray())));
        strategies.Add(("searched", search.Best));

        var spec = new SampleSpec(SamplerKind.Ddim, new SamplerOptions(50), s.Samples, s.Samples, s.Seed + 99);
        var rows = new List<QuickstartRow>();
        int perRow = s.Samples * cfg.Image.Floats;
        var grid = new float[strategies.Count * perRow];
        for (int i = 0; i < strategies.Count; i++)
        {
            var sw = Stopwatch.StartNew();
            using var flops = new FlopCounter();
            BatchSampler.Sample(model, sched, strategies[i].Item2, spec).CopyTo(grid, i * perRow);
            var row = new QuickstartRow(strategies[i].Item1, flops.Forward / 1e9 / s.Samples,
                                        sw.Elapsed.TotalMilliseconds / s.Samples);
            rows.Add(row);
            onRow?.Invoke(row);
        }
        var gridPath = Path.Combine(s.OutDir, "samples.png");
        ImageGrid.WritePng(gridPath, grid, strategies.Count * s.Samples, cfg.ImageChannels, cfg.ImageSize,
                           cfg.ImageSize, s.Samples);
        var reportPath = Path.Combine(s.OutDir, "report.md");
        AtomicFile.WriteAllText(reportPath, Report(s, loaded, be, rows, search, clock.Elapsed.TotalSeconds));
        return (rows, reportPath, gridPath);
    }

    private static string Report(QuickstartSettings s, LoadedModel loaded, Backend be, List<QuickstartRow> rows,
        SearchOutcome search, double seconds)
    {
        var inv = CultureInfo.InvariantCulture;
        var cfg = loaded.Config;
        var r = new StringBuilder();
        r.AppendLine("# DDSM quickstart report").AppendLine();
        r.AppendLine(inv, $"Model `{cfg.Name}` ({loaded.Plain!.ParameterCount:N0} parameters, widths " +
                          $"{string.Join(", ", cfg.Widths)}), trained {s.Steps} sandwich steps of batch {s.Batch} on " +
                          $"the embedded 2,000-image Fashion-MNIST subset; device {be.Name}; seed {s.Seed}.");
        r.AppendLine().AppendLine("DDIM, 50 steps, EMA weights. GFLOPs are counted by the engine's op counter during " +
                                  "sampling (equal to the analytic count).").AppendLine();
        r.AppendLine("| strategy | GFLOPs/image | wall ms/image |").AppendLine("|---|---:|---:|");
        foreach (var row in rows) r.AppendLine(inv, $"| {row.Strategy} | {row.Gflops:F3} | {row.MsPerImage:F1} |");
        r.AppendLine()
            .AppendLine("Rows of `samples.png`, top to bottom, follow the table (same initial noise in every row).");
        r.AppendLine().AppendLine("## Search").AppendLine();
        r.Append(SearchReport.Body(search, "search/"));
        r.AppendLine().AppendLine($"A {s.Steps}-step model on 2,000 images is a smoke test of the whole pipeline, " +
                                  $"not a quality result: compare FD with the real-vs-real baseline row, and see " +
                                  $"bench/RESULTS.md for the larger runs.");
        r.AppendLine().AppendLine(inv, $"Total time: {Durations.Text(seconds)}.");
        return r.ToString();
    }
}
