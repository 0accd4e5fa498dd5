using Ddsm.Data;

namespace Ddsm.Cli.Tests;

/// <summary>Inputs that were silently accepted or badly explained (issue 14: 7, 8).</summary>
public class InputCheckTests
{
    private static string StrategyFile(string name, int length)
    {
        var path = Path.Combine(Shared.Root, "strategies", name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, string.Join(" ", Enumerable.Repeat("0.5", length)));
        return path;
    }

    /// <summary>
    /// A strategy for another number of timesteps was resampled with no word; now refused unless --resample.
    /// </summary>
    [Test]
    public void AStrategyOfTheWrongLengthIsRefusedUnlessResampleIsGiven()
    {
        var file = StrategyFile("ten.txt", 10);
        string[] Args(string strategy) => ["sample", "--checkpoint", Shared.Trained.Dir, "--steps", "2", "-n", "2",
            "--strategy", strategy, "--out", Path.Combine(Shared.Root, "strategies", "s.png")];
        var r = Ddsm.Run(Args(file));
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        Assert.That(r.Err.Trim(), Is.EqualTo($"error: step strategy {file} has 10 widths but the model's schedule " +
                                             $"has 1000 timesteps (--resample stretches it to 1000)"));
        Ddsm.Ok([.. Args(file), "--resample"]);
        Ddsm.Ok(Args(StrategyFile("full.txt", 1000)));
    }

    [Test]
    public void AnIdxSpecWithoutItsLabelsFileSaysWhatIsMissing()
    {
        var r = Ddsm.Run("data", "info", "idx:/tmp/images.idx", "--cache", Shared.Cache);
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        Assert.That(r.Err.Trim(), Is.EqualTo("error: data set spec 'idx:/tmp/images.idx': idx needs the images and " +
                                             "the labels file, comma-separated (idx:IMAGES,LABELS)"));
    }

    /// <summary>
    /// data info reads the cache named by --cache (here one that holds an "mnist": no download happens).
    /// </summary>
    [Test]
    public void DataInfoReadsTheCacheItIsGiven()
    {
        var cache = Path.Combine(Shared.Root, "info-cache");
        Directory.CreateDirectory(cache);
        var ds = Datasets.EmbeddedFashionMnist();
        DatasetCache.Write(DataFetcher.CachePath("mnist", cache),
                           ds.Subset(Enumerable.Range(0, 30).ToArray(), "mnist"));
        var r = Ddsm.Ok("data", "info", "mnist", "--cache", cache);
        Assert.That(r.Out.Trim(), Does.StartWith("mnist: 30 images 1×28×28"));
    }
}
