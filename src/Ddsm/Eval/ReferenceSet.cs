namespace Ddsm.Eval;

/// <summary>
/// A real data set seen through one feature net: its features (for KID and precision/recall) and
/// their statistics (for FD). Cached as one safetensors file ("features" F32 (N, d), "mean" and
/// "covariance" F64) keyed by data set name, image count, seed and the net's fingerprint.
/// </summary>
public sealed class ReferenceSet
{
    public const string Format = "ddsm-reference-v1";

    public string Dataset { get; }
    public string NetFingerprint { get; }
    public FeatureMatrix Features { get; }
    public FeatureStats Stats { get; }

    public ReferenceSet(string dataset, string netFingerprint, FeatureMatrix features, FeatureStats? stats = null)
    {
        (Dataset, NetFingerprint, Features) = (dataset, netFingerprint, features);
        Stats = stats ?? FeatureStats.From(features);
    }

    /// <summary>Features of up to <paramref name="maxCount"/> images of <paramref name="ds"/> (a seeded
    /// random subset when it has more: precision/recall and KID are O(N²)).</summary>
    public static ReferenceSet Build(FeatureNet net, ImageDataset ds, int maxCount = 10_000, ulong seed = 0)
    {
        var idx = Pick(ds.Count, maxCount, seed);
        return new ReferenceSet(ds.Name, net.Fingerprint(), net.Extract(ds, idx));
    }

    /// <summary>The cached set at <paramref name="path"/> when it was made from the same data set, count,
    /// seed and feature net; otherwise builds it and (re)writes the cache.</summary>
    public static ReferenceSet LoadOrBuild(string path, FeatureNet net, ImageDataset ds, int maxCount = 10_000,
                                           ulong seed = 0)
    {
        var key = Key(ds.Name, Math.Min(ds.Count, maxCount), seed, net.Fingerprint());
        if (File.Exists(path))
        {
            var (r, meta) = Load(path);
            if (key.All(kv => meta.TryGetValue(kv.Key, out var v) && v == kv.Value)) return r;
        }
        var built = Build(net, ds, maxCount, seed);
        built.Save(path, key);
        return built;
    }

    public void Save(string path, IReadOnlyDictionary<string, string>? extra = null)
    {
        var meta = new Dictionary<string, string>(extra ?? new Dictionary<string, string>())
        {
            ["format"] = Format,
            ["dataset"] = Dataset,
            ["fingerprint"] = NetFingerprint,
            ["count"] = Features.Count.ToString(CultureInfo.InvariantCulture),
        };
        var f = Features.Data.Select(v => (float)v).ToArray();
        var tensors = new List<SafeTensor> { SafeTensor.F32("features", f, Features.Count, Features.Dim) };
        tensors.AddRange(Stats.ToTensors());
        SafeTensors.Write(path, tensors, meta);
    }

    public static (ReferenceSet Set, IReadOnlyDictionary<string, string> Metadata) Load(string path)
    {
        var f = SafeTensors.Read(path);
        var meta = f.Metadata;
        meta.TryGetValue("format", out var fmt);
        DataFormatException.Check(fmt == Format, path,
                                  $"not a DDSM reference set (format '{fmt ?? "missing"}', want '{Format}')");
        DataFormatException.Check(f.Contains("features"), path, "tensor 'features' missing");
        var ft = f["features"];
        DataFormatException.Check(ft.DType == "F32" && ft.Shape.Length == 2 && ft.Shape[1] >= 1 && ft.Shape[0] >= 2,
            path, $"features must be F32 (N ≥ 2, d), got {ft.DType}[{string.Join(",", ft.Shape)}]");
        var stats = FeatureStats.FromFile(f, path);
        DataFormatException.Check(stats.Dim == ft.Shape[1] && stats.Count == ft.Shape[0], path,
            $"statistics of ({stats.Count}, {stats.Dim}) do not belong to features ({ft.Shape[0]}, {ft.Shape[1]})");
        var features = FeatureMatrix.FromFloats(ft.ToFloat(), (int)ft.Shape[0], (int)ft.Shape[1]);
        DataFormatException.Check(features.Data.All(double.IsFinite), path, "features hold NaN or Inf");
        meta.TryGetValue("dataset", out var ds);
        meta.TryGetValue("fingerprint", out var fp);
        return (new ReferenceSet(ds ?? "", fp ?? "", features, stats), meta);
    }

    private static Dictionary<string, string> Key(string dataset, int count, ulong seed, string fingerprint) => new()
    {
        ["dataset"] = dataset,
        ["count"] = count.ToString(CultureInfo.InvariantCulture),
        ["seed"] = seed.ToString(CultureInfo.InvariantCulture),
        ["fingerprint"] = fingerprint,
    };

    /// <summary>All of [0, n) in order when n ≤ max, else max distinct seeded indices.</summary>
    internal static int[] Pick(int n, int max, ulong seed)
    {
        if (max < 2) throw new ArgumentException($"reference set: need at least 2 images, asked for {max}");
        var a = Enumerable.Range(0, n).ToArray();
        if (n <= max) return a;
        var rng = new Rng(seed);
        for (int k = 0; k < max; k++)
        {
            int j = k + rng.NextInt(n - k);
            (a[k], a[j]) = (a[j], a[k]);
        }
        return a[..max];
    }
}
