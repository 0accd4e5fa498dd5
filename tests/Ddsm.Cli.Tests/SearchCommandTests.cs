namespace Ddsm.Cli.Tests;

public class SearchCommandTests
{
    [Test]
    public void SearchesAndWritesEveryOutput()
    {
        var dir = Path.Combine(Shared.Root, "search");
        var r = Ddsm.Ok("search", "--checkpoint", Shared.Trained.Dir, "--features", Shared.Features.Path, "--steps",
            "2", "-n", "4", "--batch", "4", "--population", "2", "--generations", "1", "--block", "500", "--out", dir,
            "--cache", Shared.Cache);
        foreach (var f in new[] { "best.json", "pareto.csv", "best.svg", "samples.png", "report.md",
                                  "search-state.json" })
            Assert.That(File.Exists(Path.Combine(dir, f)), f);
        Assert.That(r.Out,
                    Does.Contain("search: 2 genes × 2 widths, population 2, 1 generations, 4 images per candidate"));
        Assert.That(r.Out, Does.Contain("| full width |").And.Contain("| searched |").And.Contain("| real vs real"));
        var report = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.That(report,
                    Does.StartWith("# DDSM search report").And.Contain("model `fmnist32-custom`")
                        .And.Contain("`best.json`"));
        Assert.That(r.Out, Does.Contain("report: " + Path.Combine(dir, "report.md")));
    }

    [Test]
    public void AMissingFeatureNetIsAOneLineError()
    {
        var r = Ddsm.Run("search", "--checkpoint", Shared.Trained.Dir, "--features",
            Path.Combine(Shared.Root, "none.safetensors"), "--out", Path.Combine(Shared.Root, "search-bad"), "--cache",
            Shared.Cache);
        Assert.That(r.Code, Is.EqualTo(2), "bad input");
        Assert.That(r.Err.Trim(),
                    Does.StartWith("error: feature net").And.Contain("ddsm eval train-features makes one"));
    }
}
