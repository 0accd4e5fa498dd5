using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Eval;
using Ddsm.Model;
using Ddsm.Search;

namespace Ddsm.Cli;

/// <summary>
/// What the verbs that score samples share: the feature net, the data set split into a reference part and
/// a held-out part of N images (for the real-vs-real baseline at the same N), the reference statistics
/// (cached per data set, split and feature net; rebuilt when any changes) and the evaluator.
/// </summary>
internal sealed class Scoring : IDisposable
{
    public required FeatureNet Net { get; init; }
    public required ReferenceSet Reference { get; init; }
    public required Evaluator Scorer { get; init; }
    public required Data.ImageDataset HeldOut { get; init; }

    public static Scoring Open(Backend be, string features, string data, string cache, int count)
    {
        var net = FeatureNet.Load(be, features);
        try
        {
            var ds = Common.LoadData(data, cache, net.ImageSize, net.InputChannels);
            var (train, held) = FeatureNetTrainer.Split(ds, Math.Min(count, ds.Count / 2), 7);
            var refPath = Path.Combine(cache, "references", $"{train.Name}-heldout{held.Count}.safetensors");
            var reference = ReferenceSet.LoadOrBuild(refPath, net, train);
            return new Scoring { Net = net, Reference = reference, Scorer = new Evaluator(net, reference), HeldOut = held };
        }
        catch { net.Dispose(); throw; }
    }

    /// <summary>A sampling evaluator whose quality is the FD of the samples' features to the reference.</summary>
    public SamplingEvaluator Sampling(IDenoiser model, UNetConfig cfg, NoiseSchedule sched, SamplerKind kind, SamplerOptions o,
        int count, int batch, ulong seed, Func<StepStrategy, StepStrategy>? widthsRun = null) =>
        new(model, cfg, sched, kind, o, count, batch, seed, (imgs, n) => FrechetDistance.Compute(Reference.Stats, Net.Extract(imgs, n)), widthsRun);

    public void Dispose() => Net.Dispose();
}
