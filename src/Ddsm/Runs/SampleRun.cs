using System.Diagnostics;

namespace Ddsm.Runs;

/// <summary>What <c>ddsm sample</c> asks for: how to sample, and for class-conditional models which classes.</summary>
/// <param name="ClassSpec">a class index, or "all" to cycle through the classes; null: unconditional.</param>
/// <param name="Guidance">classifier-free guidance scale (needs a class; default 1).</param>
public sealed record SampleRequest(SampleSpec Spec, string? ClassSpec = null, double? Guidance = null);

/// <summary>What a sample run wrote and what it cost.</summary>
/// <param name="AttentionShare">the attention matmuls' share of the FLOPs the ops counted while sampling.</param>
/// <param name="Transfers">host round trips of the whole sampling (each batch: its last images out, and the
/// labels in at its first step), over <paramref name="Steps"/> sampler steps.</param>
/// <param name="Graphs">step graphs captured and replayed meanwhile, and what a replay is on this backend.</param>
public sealed record SampleResult(string GridPath, string RawPath, double Gflops, int Evaluations,
    double AttentionShare, double MsPerImage, int[]? Labels, double GuidanceScale, TransferCounts Transfers = default,
    long Steps = 0, StepGraphCounts Graphs = default, string GraphKind = "");

/// <summary>
/// Images from a loaded model with its strategy: sampled in batches from the seed, written as a PNG grid and
/// as raw samples (safetensors, with how they were made as metadata), counted in GFLOPs and timed.
/// </summary>
public static class SampleRun
{
    /// <param name="force">replace a checkpoint at an output path (never an input of this run).</param>
    public static SampleResult Run(LoadedModel model, SampleRequest request, string outPath,
        Action<SampleProgress>? progress = null, bool force = false)
    {
        var (cfg, spec) = (model.Config, request.Spec.Validate());
        var raw = RawPath(outPath);
        if (Path.GetFullPath(raw) == Path.GetFullPath(outPath))
            throw new ArgumentException(
                $"--out {outPath}: the grid is a PNG; the raw samples go beside it as .safetensors");
        OutputFiles.Check([outPath, raw], [model.Path, model.StrategyName], force);
        var labels = Labels(request.ClassSpec, cfg, spec.Count);
        if (request.Guidance is not null && labels is null)
            throw new ArgumentException("--guidance needs --class (the class to guide towards)");
        double scale = request.Guidance ?? 1.0;
        var denoiser = model.Denoiser;
        Func<int, int, IDenoiser>? perBatch = null;
        if (labels is not null)
        {
            var unet = model.Plain ?? throw new ArgumentException("--class: a step-adaptive model is unconditional");
            denoiser = new GuidedDenoiser(unet, labels, scale);
            perBatch = (start, b) => new GuidedDenoiser(unet, labels[start..(start + b)], scale);
        }
        var (gflops, nfe) = Sampler.Create(spec.Sampler).Cost(denoiser, model.Schedule, model.Strategy, spec.Options);

        var sw = Stopwatch.StartNew();
        using var counter = new FlopCounter();
        var before = denoiser.Backend.Transfers;
        var graphsBefore = denoiser.Backend.StepGraphs;
        long steps = 0;
        var images = BatchSampler.Sample(denoiser, model.Schedule, model.Strategy, spec, perBatch, pr =>
        {
            steps++;
            progress?.Invoke(pr);
        });
        var transfers = denoiser.Backend.Transfers - before;
        var graphs = denoiser.Backend.StepGraphs - graphsBefore;
        double ms = sw.Elapsed.TotalMilliseconds / spec.Count;
        double attention = (double)counter.ByOp.GetValueOrDefault("attention") / counter.Forward;

        int n = spec.Count, c = cfg.ImageChannels, s = cfg.ImageSize;
        ImageGrid.WritePng(outPath, images, n, c, s, s, (int)Math.Ceiling(Math.Sqrt(n)));
        var meta = new Dictionary<string, string>
        {
            ["sampler"] = spec.Sampler.ToString(),
            ["steps"] = spec.Options.Steps.ToString(CultureInfo.InvariantCulture),
            ["strategy"] = model.StrategyName, ["checkpoint"] = model.Path, ["class"] = request.ClassSpec ?? "",
            ["guidance"] = labels is null ? "" : scale.ToString(CultureInfo.InvariantCulture),
        };
        SampleFile.Write(raw, images, n, c, s, meta);
        return new SampleResult(outPath, raw, gflops, nfe, attention, ms, labels, scale, transfers, steps, graphs,
                                denoiser.Backend.StepGraphKind);
    }

    /// <summary>Where the raw samples go: beside the grid, as .safetensors.</summary>
    public static string RawPath(string gridPath) => Path.ChangeExtension(gridPath, ".safetensors");

    /// <summary>
    /// Labels of images 0..n−1 for --class: K for all, or i mod NumClasses for 'all'; null without --class.
    /// </summary>
    public static int[]? Labels(string? spec, UNetConfig cfg, int n)
    {
        if (spec is null) return null;
        if (cfg.NumClasses <= 0)
            throw new ArgumentException($"--class: model '{cfg.Name}' is unconditional (trained without --classes)");
        if (spec.Trim().Equals("all", StringComparison.OrdinalIgnoreCase))
            return Enumerable.Range(0, n).Select(i => i % cfg.NumClasses).ToArray();
        if (!int.TryParse(spec, CultureInfo.InvariantCulture, out int k) || k < 0 || k >= cfg.NumClasses)
            throw new ArgumentException($"--class: '{spec}' is not 'all' or a class in [0, {cfg.NumClasses - 1}]");
        return Enumerable.Repeat(k, n).ToArray();
    }
}
