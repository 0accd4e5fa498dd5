namespace Ddsm.Training;

/// <summary>Where and how often a training run writes things.</summary>
/// <param name="DataSpec">The data set's spec (<c>--data</c>), recorded in the checkpoints so later runs on the
/// model can default to it.</param>
/// <param name="Force">a fresh start (no <paramref name="Resume"/>) in a directory that holds a run replaces it;
/// without it, that is refused.</param>
/// <param name="LogEvery">steps between reads of the losses from the device (the only host transfer of the step
/// loop); a read also comes before each checkpoint or sample grid, at the end and on cancel. metrics.jsonl still
/// gets one line per step.</param>
public sealed record RunOptions(
    string OutDir, long Steps, int CheckpointEvery = 500, int KeepCheckpoints = 3,
    int SampleEvery = 0, int SampleCount = 8, int SampleSteps = 20, bool Resume = false, string? DataSpec = null,
    bool Force = false, int LogEvery = 10);

/// <summary>
/// Drives a <see cref="SandwichTrainer"/> for a number of steps: reads the steps' losses from the device every
/// <see cref="RunOptions.LogEvery"/> steps and appends one JSON line of metrics per step to metrics.jsonl,
/// writes an atomic checkpoint every K steps (keeping the last few) and at the end, and a PNG grid of EMA
/// samples at several widths every K steps; a checkpoint or grid always follows a read that found every step
/// finite. A diverging step stops the run, names the step, and leaves the last good checkpoint as it was.
/// </summary>
public sealed class TrainRun(SandwichTrainer trainer, RunOptions options)
{
    public RunOptions Options => options;
    public CheckpointRotation Checkpoints { get; } =
        new(Path.Combine(options.OutDir, "checkpoints"), options.KeepCheckpoints);
    public string MetricsPath => Path.Combine(options.OutDir, "metrics.jsonl");
    /// <summary>
    /// Host transfers made inside the training steps of <see cref="Run"/> (not by saves or sample grids).
    /// </summary>
    public TransferCounts StepTransfers { get; private set; }
    /// <summary>Step graphs the training steps of <see cref="Run"/> captured and replayed.</summary>
    public StepGraphCounts StepGraphs { get; private set; }
    /// <summary>Training steps <see cref="Run"/> has taken.</summary>
    public long StepsRun { get; private set; }

    /// <summary>
    /// When resuming: restores the newest checkpoint that loads (a newer one that does not, e.g. cut short by a
    /// full disk, is named in a note and skipped), and cuts metrics.jsonl back to its step, so the steps a killed
    /// run made after it are not counted twice. Returns the checkpoint's path, or null (nothing to resume);
    /// throws the newest one's error when none loads.
    /// </summary>
    public string? TryResume(Action<string>? onNote = null)
    {
        if (!options.Resume) return null;
        DataFormatException? newest = null;
        foreach (var (_, path) in Checkpoints.List().Reverse())
        {
            try { Checkpoint.Restore(path, trainer); }
            catch (DataFormatException e)
            {
                newest ??= e;
                onNote?.Invoke($"cannot resume from {e.Message}; trying the checkpoint before it");
                continue;
            }
            if (newest is not null) onNote?.Invoke($"resuming from {path}, the newest checkpoint that loads");
            TruncateMetrics(MetricsPath, trainer.Step);
            return path;
        }
        if (newest is not null) throw newest;
        return null;
    }

    /// <summary>
    /// Keeps the lines of a metrics file up to <paramref name="step"/> (and drops a line cut by a kill).
    /// </summary>
    public static void TruncateMetrics(string metricsPath, long step)
    {
        if (!File.Exists(metricsPath)) return;
        var lines = File.ReadAllLines(metricsPath);
        var keep = lines.Where(l => StepOf(l) is { } s && s <= step).ToList();
        if (keep.Count == lines.Length) return;
        AtomicFile.WriteAllText(metricsPath, string.Concat(keep.Select(l => l + "\n")));
    }

    private static long? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.ValueKind == JsonValueKind.Object &&
                doc.RootElement.TryGetProperty("step", out var s) &&
                   s.TryGetInt64(out var v) ? v : null;
        }
        catch (JsonException) { return null; }
    }

    /// <summary>
    /// The data spec the newest readable checkpoint of a run directory records (null: none, or not recorded):
    /// what a resumed run trains on unless told otherwise.
    /// </summary>
    public static string? RecordedDataSpec(string outDir)
    {
        foreach (var (_, path) in new CheckpointRotation(Path.Combine(outDir, "checkpoints"), 1).List().Reverse())
        {
            try { return SafeTensors.ReadMetadata(path).GetValueOrDefault("data"); }
            catch (DataFormatException) { }
        }
        return null;
    }

    /// <summary>
    /// Trains to <see cref="RunOptions.Steps"/>. <paramref name="onStep"/> fires for each step once its losses are
    /// read (in bursts of up to <see cref="RunOptions.LogEvery"/> steps).
    /// </summary>
    public void Run(Action<StepResult>? onStep = null, Action<string>? onNote = null,
                    CancellationToken cancel = default)
    {
        if (options.LogEvery < 1) throw new ArgumentException($"log every must be ≥ 1 step, got {options.LogEvery}");
        Directory.CreateDirectory(options.OutDir);
        using var metrics =
            new StreamWriter(new FileStream(MetricsPath, FileMode.Append, FileAccess.Write, FileShare.Read));
        trainer.ReserveLog(options.LogEvery);
        var seconds = new List<double>();   // host wall time of each unread step
        while (trainer.Step < options.Steps && !cancel.IsCancellationRequested)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            var before = trainer.Model.Backend.Transfers;
            var graphsBefore = trainer.Model.Backend.StepGraphs;
            trainer.QueueStep();
            StepGraphs += trainer.Model.Backend.StepGraphs - graphsBefore;
            StepsRun++;
            long step = trainer.Step;
            bool checkpoint = options.CheckpointEvery > 0 && step % options.CheckpointEvery == 0;
            bool samples = options.SampleEvery > 0 && step % options.SampleEvery == 0;
            if (checkpoint || samples || trainer.UnreadSteps >= options.LogEvery || step >= options.Steps ||
                cancel.IsCancellationRequested)
                Log(metrics, seconds, t0, onStep, onNote);
            else seconds.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds);
            StepTransfers += trainer.Model.Backend.Transfers - before;
            // Save first, then tell: `onNote?.Invoke(Save())` would skip the save when nobody listens.
            if (checkpoint)
            {
                var saved = Checkpoint.Save(Checkpoints, trainer, options.DataSpec);
                onNote?.Invoke("checkpoint " + saved);
            }
            if (samples)
            {
                var grid = WriteSampleGrid(Path.Combine(options.OutDir, "samples", $"step-{step:D7}.png"));
                onNote?.Invoke("samples " + grid);
            }
        }
        Log(metrics, seconds, System.Diagnostics.Stopwatch.GetTimestamp(), onStep, onNote);
        if (Checkpoints.Latest() is not { } last || !last.Contains($"{trainer.Step:D9}"))
        {
            var saved = Checkpoint.Save(Checkpoints, trainer, options.DataSpec);
            onNote?.Invoke("checkpoint " + saved);
        }
    }

    /// <summary>
    /// Reads the unread steps (one transfer; the read's own time goes to the last step, whose wall time started at
    /// <paramref name="t0"/>), writes their metrics lines, tells <paramref name="onStep"/>, and throws at the first
    /// non-finite step after writing the lines of the good ones before it.
    /// </summary>
    private void Log(StreamWriter metrics, List<double> seconds, long t0, Action<StepResult>? onStep,
                     Action<string>? onNote)
    {
        int unread = trainer.UnreadSteps;
        if (unread == 0) return;
        var (good, diverged) = trainer.ReadSteps();
        if (seconds.Count < unread)
            seconds.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds);
        for (int i = 0; i < good.Length; i++) metrics.WriteLine(MetricsLine(good[i], seconds[i]));
        metrics.Flush();
        seconds.Clear();
        foreach (var r in good) onStep?.Invoke(r);
        if (diverged is null) return;
        onNote?.Invoke($"{diverged.Message}; last good checkpoint: {Checkpoints.Latest() ?? "none"} (not overwritten)");
        throw diverged;
    }

    /// <param name="seconds">Wall time of the step itself (what training cost is summed from).</param>
    public static string MetricsLine(StepResult r, double seconds)
    {
        var losses =
            r.Losses.Select(l => new Dictionary<string, double> { ["width"] = l.Width, ["loss"] = l.Loss }).ToArray();
        return JsonSerializer.Serialize(new { step = r.Step, losses, grad_norm = r.GradNorm, lr = r.Lr, seconds,
            time = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture) });
    }

    /// <summary>
    /// Training wall time of a run from its metrics.jsonl: the sum of the steps' "seconds" (so time between
    /// an interruption and its resume does not count). Lines written before steps were timed fall back to
    /// the gap since the previous line's timestamp, ignoring gaps over 10 minutes (a stop and a resume).
    /// </summary>
    public static double TrainingSeconds(string metricsPath)
    {
        if (!File.Exists(metricsPath)) return 0;
        double total = 0;
        DateTime? prev = null;
        foreach (var line in File.ReadLines(metricsPath))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException) { continue; }   // a line cut by a kill
            using (doc)
            {
                var root = doc.RootElement;
                DateTime? time = root.TryGetProperty("time", out var te) && te.ValueKind == JsonValueKind.String &&
                    DateTime.TryParse(te.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind,
                                      out var dt) ? dt : null;
                if (root.TryGetProperty("seconds", out var se) && se.TryGetDouble(out var s)) total += s;
                else if (time is { } now && prev is { } before && now - before is { TotalMinutes: >= 0 and < 10 } gap)
                    total += gap.TotalSeconds;
                prev = time ?? prev;
            }
        }
        return total;
    }

    /// <summary>Rows = widths (all allowed), columns = samples; EMA weights, DDIM, fixed seed.</summary>
    public string WriteSampleGrid(string path)
    {
        var model = trainer.Model;
        var cfg = model.Config;
        int n = options.SampleCount;
        var spec = new SampleSpec(SamplerKind.Ddim,
                                  new SamplerOptions(Math.Min(options.SampleSteps, trainer.Schedule.T)), n, n, 1234);
        var all = new float[cfg.Widths.Length * n * cfg.Image.Floats];
        using (trainer.Ema.SwapIn())
        {
            for (int wi = 0; wi < cfg.Widths.Length; wi++)
                BatchSampler.Sample(model, trainer.Schedule, StepStrategy.Uniform(cfg.Widths[wi], trainer.Schedule.T),
                                    spec)
                    .CopyTo(all, wi * n * cfg.Image.Floats);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageGrid.WritePng(path, all, cfg.Widths.Length * n, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize, n);
        return path;
    }
}
