namespace Ddsm.Runs;

/// <summary>
/// A training run made ready: the data set at the model's resolution, the model, the sandwich trainer and
/// the run loop around it, resumed from the newest checkpoint when asked. Run it with <see cref="Loop"/>;
/// owns the model and the trainer.
/// </summary>
public sealed class TrainSession : IDisposable
{
    public Backend Backend => Model.Backend;
    public SlimUNet Model => Trainer.Model;
    public required ImageDataset Data { get; init; }
    public required SandwichTrainer Trainer { get; init; }
    public required TrainRun Loop { get; init; }
    /// <summary>The checkpoint it resumed from; null for a fresh start.</summary>
    public string? ResumedFrom { get; init; }
    /// <summary>The data spec it trains on.</summary>
    public required string DataSpec { get; init; }
    /// <summary>What the person should know before it starts (a data set other than the checkpoint's, a skipped
    /// checkpoint that did not load).</summary>
    public required IReadOnlyList<string> Notes { get; init; }

    /// <summary>Training is already at or past the run's last step.</summary>
    public bool Finished => Trainer.Step >= Loop.Options.Steps;

    /// <summary>The data set a run trains on when no <c>--data</c> is given and no checkpoint records one.</summary>
    public const string DefaultData = "fmnist-embedded";

    /// <param name="run">Where it writes; its data spec is set to the one trained on.</param>
    /// <param name="dataSpec">the data set (<c>--data</c>); null: the one the resumed checkpoint records, else
    /// <see cref="DefaultData"/>. Given and different from the checkpoint's, it is used, and a note says so.</param>
    public static TrainSession Open(UNetConfig cfg, TrainOptions options, RunOptions run, string? dataSpec,
        string cache, Backend be, ulong seed)
    {
        if (run.Steps <= 0) throw new ArgumentException($"--steps must be positive, got {run.Steps}");
        if (run.CheckpointEvery < 0)
            throw new ArgumentException($"--checkpoint-every must be ≥ 0 (0 = never), got {run.CheckpointEvery}");
        if (run.SampleEvery < 0)
            throw new ArgumentException($"--sample-every must be ≥ 0 (0 = never), got {run.SampleEvery}");
        if (run.LogEvery < 1) throw new ArgumentException($"--log-every must be ≥ 1, got {run.LogEvery}");
        cfg.Validate();
        var notes = new List<string>();
        var checkpoints =
            new CheckpointRotation(Path.Combine(run.OutDir, "checkpoints"), Math.Max(1, run.KeepCheckpoints));
        IReadOnlyList<(long Step, string Path)> old = run.Resume ? [] : checkpoints.List();
        if (old.Count > 0 && !run.Force)
            throw new ArgumentException($"--out {run.OutDir} already holds a run (checkpoints up to step " +
                                        $"{old[^1].Step}): --resume continues it, --force starts over and replaces it");
        OutputFiles.CheckDirectory(run.OutDir);
        var recorded = run.Resume ? TrainRun.RecordedDataSpec(run.OutDir) : null;
        var data = dataSpec ?? recorded ?? DefaultData;
        if (dataSpec is not null && recorded is not null && dataSpec != recorded)
            notes.Add($"--data {dataSpec}: the checkpoint was trained on {recorded}; training continues on " +
                      $"{dataSpec}, as asked");
        var ds = Datasets.OpenAt(data, cache, cfg.ImageSize, cfg.ImageChannels);
        var model = new SlimUNet(be, cfg, seed);
        SandwichTrainer? trainer = null;
        try
        {
            trainer = new SandwichTrainer(model, ds, options, seed + 1);
            var loop = new TrainRun(trainer, run with { DataSpec = data });
            var resumed = loop.TryResume(notes.Add);
            if (old.Count > 0)   // --force, once everything else is known to work
            {
                foreach (var (_, path) in old) File.Delete(path);
                File.Delete(loop.MetricsPath);
                notes.Add($"--force: the run in {run.OutDir} was replaced");
            }
            return new TrainSession
            {
                Data = ds, Trainer = trainer, Loop = loop, ResumedFrom = resumed, DataSpec = data, Notes = notes,
            };
        }
        catch
        {
            trainer?.Dispose();
            model.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Trainer.Dispose();
        Model.Dispose();
    }
}
