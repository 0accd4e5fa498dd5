namespace Ddsm.Runs;

/// <summary>Training the feature net the quality metrics use, on a data set's labels, and saving it.</summary>
public static class FeatureNetRun
{
    /// <summary>
    /// Trains on 90 % of the data set (at 32×32, one channel), measures the accuracy on the other 10 %, saves
    /// the net to <paramref name="outPath"/> and returns it (the caller disposes it).
    /// </summary>
    public static FeatureNet Train(Backend be, string dataSpec, string cache, int steps, ulong seed, string outPath,
        Action<string>? log = null)
    {
        var ds = Datasets.OpenAt(dataSpec, cache, 32, 1);
        var (train, held) = FeatureNetTrainer.Split(ds, Math.Max(1, ds.Count / 10), seed + 11);
        log?.Invoke(
            $"feature net: training {steps} steps on {train.Count:N0} images of {ds.Name} ({held.Count:N0} held out)");
        var net = FeatureNetTrainer.Train(be, train, new FeatureNetTrainOptions(Steps: steps, Seed: seed + 1));
        try
        {
            net.Info = net.Info with { HeldOutAccuracy = FeatureNetTrainer.Accuracy(net, held), DataSpec = dataSpec };
            net.Save(outPath);
            return net;
        }
        catch { net.Dispose(); throw; }
    }
}
