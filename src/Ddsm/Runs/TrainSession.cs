using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Model;
using Ddsm.Training;

namespace Ddsm.Runs;

/// <summary>
/// A training run made ready: the data set at the model's resolution, the model, the sandwich trainer and
/// the run loop around it, resumed from the newest checkpoint when asked. Run it with <see cref="Loop"/>;
/// owns the model and the trainer.
/// </summary>
public sealed class TrainSession : IDisposable
{
    public required Backend Backend { get; init; }
    public required ImageDataset Data { get; init; }
    public required SlimUNet Model { get; init; }
    public required SandwichTrainer Trainer { get; init; }
    public required TrainRun Loop { get; init; }
    /// <summary>The checkpoint it resumed from; null for a fresh start.</summary>
    public string? ResumedFrom { get; init; }

    /// <summary>Training is already at or past the run's last step.</summary>
    public bool Finished => Trainer.Step >= Loop.Options.Steps;

    /// <param name="run">Where it writes; its data spec is set to <paramref name="dataSpec"/>.</param>
    public static TrainSession Open(UNetConfig cfg, TrainOptions options, RunOptions run, string dataSpec, string cache,
        Backend be, ulong seed)
    {
        cfg.Validate();
        var ds = Datasets.OpenAt(dataSpec, cache, cfg.ImageSize, cfg.ImageChannels);
        var model = new SlimUNet(be, cfg, seed);
        SandwichTrainer? trainer = null;
        try
        {
            trainer = new SandwichTrainer(model, ds, options, seed + 1);
            var loop = new TrainRun(trainer, run with { DataSpec = dataSpec });
            var resumed = loop.TryResume();
            return new TrainSession
            {
                Backend = be, Data = ds, Model = model, Trainer = trainer, Loop = loop, ResumedFrom = resumed,
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
