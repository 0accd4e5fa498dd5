namespace Ddsm.Cli.Tests;

/// <summary>
/// What several verbs' tests need, made once per test run by the verbs themselves: a data cache, a small
/// trained model (fmnist32 layout at 32 channels, one level less, widths ½ and 1: a few seconds per verb)
/// and a feature net. Deleted when the run ends.
/// </summary>
[SetUpFixture]
public sealed class Shared
{
    public static string Root { get; private set; } = "";
    public static string Cache => Path.Combine(Root, "cache");

    private static readonly Lazy<(string Dir, CliResult Result)> TrainRun = new(() =>
    {
        var dir = Path.Combine(Root, "train");
        return (dir, Ddsm.Ok(["train", .. TrainArgs(dir), "--steps", "3"]));
    });

    private static readonly Lazy<(string Path, CliResult Result)> FeatureRun = new(() =>
    {
        var path = Path.Combine(Root, "features.safetensors");
        return (path, Ddsm.Ok("eval", "train-features", "--steps", "30", "--out", path, "--cache", Cache));
    });

    private static readonly Lazy<string> CacheFileRun = new(() =>
    {
        var path = Path.Combine(Root, "other-data.ddsmimg");
        Data.DatasetCache.Write(path, Data.Datasets.EmbeddedFashionMnist());
        return "cache:" + path;
    });

    /// <summary>
    /// A data spec other than the default, naming the same images (a cache file of the embedded subset): what a run
    /// on "another data set" looks like without a download.
    /// </summary>
    public static string OtherData => CacheFileRun.Value;

    /// <summary>The training run's directory and what `ddsm train` printed (3 steps, checkpoints every 2).</summary>
    public static (string Dir, CliResult Result) Trained => TrainRun.Value;
    /// <summary>The feature net file and what `ddsm eval train-features` printed.</summary>
    public static (string Path, CliResult Result) Features => FeatureRun.Value;

    /// <summary>The small model's training arguments (all but --steps).</summary>
    public static string[] TrainArgs(string outDir, string widths = "0.5,1") =>
    [
        "--preset", "fmnist32", "--channels", "32", "--widths", widths, "--mult", "1,2", "--res-blocks", "1",
        "--dropout", "0", "--batch", "2", "--sandwich-n", "2", "--warmup", "1", "--checkpoint-every", "2", "--keep",
        "2",
        "--seed", "5", "--out", outDir, "--cache", Cache,
    ];

    [OneTimeSetUp]
    public void MakeRoot() => Root = Directory.CreateTempSubdirectory("ddsm-cli-").FullName;

    [OneTimeTearDown]
    public void RemoveRoot()
    {
        try { Directory.Delete(Root, true); } catch (IOException) { }
    }
}
