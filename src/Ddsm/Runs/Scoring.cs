using Ddsm.Data;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Eval;
using Ddsm.IO;
using Ddsm.Search;

namespace Ddsm.Runs;

/// <summary>
/// What the runs that score samples share: the feature net, the data set split into a reference part and
/// a held-out part of N images (for the real-vs-real baseline at the same N), the reference statistics
/// (cached per data set, split and feature net; rebuilt when any changes) and the evaluator.
/// </summary>
public sealed class Scoring : IDisposable
{
    public required FeatureNet Net { get; init; }
    public required ReferenceSet Reference { get; init; }
    public required Evaluator Scorer { get; init; }
    public required ImageDataset HeldOut { get; init; }

    /// <param name="count">N: the held-out part is N images (at most half the data set).</param>
    public static Scoring Open(Backend be, string features, string data, string cache, int count)
    {
        if (!File.Exists(features))
            throw new FileNotFoundException($"feature net '{features}' not found (ddsm eval train-features makes one)",
                                            features);
        var net = FeatureNet.Load(be, features);
        try
        {
            var ds = Datasets.OpenAt(data, cache, net.ImageSize, net.InputChannels);
            var (train, held) = FeatureNetTrainer.Split(ds, Math.Min(count, ds.Count / 2), 7);
            var refPath = Path.Combine(cache, "references", $"{train.Name}-heldout{held.Count}.safetensors");
            var reference = ReferenceSet.LoadOrBuild(refPath, net, train);
            return new Scoring
            {
                Net = net, Reference = reference, Scorer = new Evaluator(net, reference), HeldOut = held,
            };
        }
        catch { net.Dispose(); throw; }
    }

    /// <summary>A sampling evaluator whose quality is the FD of the samples' features to the reference.</summary>
    public SamplingEvaluator Sampling(IDenoiser model, NoiseSchedule sched, SampleSpec spec) =>
        new(model, sched, spec, (imgs, n) => FrechetDistance.Compute(Reference.Stats, Net.Extract(imgs, n)));

    /// <summary>
    /// FD, KID and precision/recall of a sample file (<c>ddsm sample</c>'s .safetensors) against the data set
    /// (its reference part, rebuilt for this N), and the real-vs-real baseline at the same N.
    /// </summary>
    public static (EvalResult Samples, EvalResult Baseline) ScoreFile(Backend be, string samples, string features,
        string data, string cache)
    {
        using var net = FeatureNet.Load(be, features);
        var ds = Datasets.OpenAt(data, cache, net.ImageSize, net.InputChannels);
        var f = SafeTensors.Read(samples);
        if (!f.Contains("samples"))
            throw new DataFormatException(samples, "no 'samples' tensor (ddsm sample writes one)");
        var t = f["samples"];
        int n = (int)t.Shape[0];
        var (train, held) = FeatureNetTrainer.Split(ds, Math.Min(n, ds.Count / 2), 7);
        var ev = new Evaluator(net, ReferenceSet.Build(net, train));
        return (ev.Evaluate(t.ToFloat(), n), ev.Baseline(held, Math.Min(n, held.Count)));
    }

    public void Dispose() => Net.Dispose();
}
