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
    /// FD, KID and precision/recall of a sample file (<c>ddsm sample</c>'s .safetensors) against a data set
    /// (its reference part, rebuilt for this N), and the real-vs-real baseline at the same N. The reference is
    /// the data set the feature net was trained on (<see cref="ReferenceData"/>); <paramref name="data"/> another
    /// one only with <paramref name="otherData"/>.
    /// </summary>
    public static (EvalResult Samples, EvalResult Baseline, string Reference) ScoreFile(Backend be, string samples,
        string features, string? data, string cache, bool otherData = false)
    {
        if (!File.Exists(samples)) throw new FileNotFoundException($"samples '{samples}' not found", samples);
        if (!File.Exists(features))
            throw new FileNotFoundException($"feature net '{features}' not found (ddsm eval train-features makes one)",
                                            features);
        using var net = FeatureNet.Load(be, features);
        var (images, n) = SampleFile.Read(samples, net.InputChannels, net.ImageSize);
        var reference = ReferenceData(net.Info, features, data, otherData);
        var ds = Datasets.OpenAt(reference, cache, net.ImageSize, net.InputChannels);
        var (train, held) = FeatureNetTrainer.Split(ds, Math.Min(n, ds.Count / 2), 7);
        var ev = new Evaluator(net, ReferenceSet.Build(net, train));
        return (ev.Evaluate(images, n), ev.Baseline(held, Math.Min(n, held.Count)), reference);
    }

    /// <summary>
    /// The data spec to score against: the one the feature net was trained on (recorded in it; for nets written
    /// before that, known from its data set's name), or <paramref name="given"/>. A given one that differs is refused
    /// unless <paramref name="otherData"/>: scores against another data set than the features were learnt on
    /// are silently wrong (MNIST samples scored against Fashion-MNIST: FD 95.9 instead of 354).
    /// </summary>
    public static string ReferenceData(FeatureNetInfo net, string features, string? given, bool otherData)
    {
        string? own = net.DataSpec ?? net.Dataset switch
        {
            "fashion-mnist-2k" => "fmnist-embedded", "fashion-mnist" => "fashion-mnist", "mnist" => "mnist", _ => null,
        };
        if (given is null)
            return own ?? throw new ArgumentException(
                $"feature net '{features}' does not record its data set ('{net.Dataset}'): give the reference " +
                $"with --data");
        if (own is not null && given != own && !otherData)
            throw new ArgumentException($"--data {given}: the feature net '{features}' was trained on {own}; scores " +
                                        $"against another data set are not comparable (--other-data to do it anyway)");
        return given;
    }

    public void Dispose() => Net.Dispose();
}
