namespace Ddsm.Cli.Tests;

public class QuickstartCommandTests
{
    /// <summary>
    /// The README's first command with a small budget. The feature net is put in place first, as an interrupted
    /// earlier run would have left it (its training is the eval verb's, tested there): the quickstart resumes.
    /// </summary>
    [Test]
    public void RunsEveryStageAndWritesOneReport()
    {
        var dir = Path.Combine(Shared.Root, "quickstart");
        Directory.CreateDirectory(dir);
        File.Copy(Shared.Features.Path, Path.Combine(dir, "features.safetensors"));
        var oldCache = Environment.GetEnvironmentVariable("DDSM_CACHE");
        Environment.SetEnvironmentVariable("DDSM_CACHE", Shared.Cache);
        CliResult r;
        try
        {
            r = Ddsm.Ok("quickstart", "--steps", "2", "--batch", "2", "--samples", "2", "--search-n", "4",
                "--generations", "0", "--out", dir);
        }
        finally { Environment.SetEnvironmentVariable("DDSM_CACHE", oldCache); }
        Assert.That(r.Out, Does.Contain("1/4 training").And.Contain("3/4 strategy search").And.Contain("4/4 sampling"));
        Assert.That(r.Out, Does.Not.Contain("feature net: training"), "the feature net was there already");
        var report = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.That(report, Does.StartWith("# DDSM quickstart report"));
        Assert.That(report, Does.Contain("| uniform 0.5 |").And.Contain("| DDSM-shaped |").And.Contain("| searched |"));
        Assert.That(report,
                    Does.Contain("## Search").And.Contain("`search/best.json`").And.Contain("`search/samples.png`"));
        Assert.That(File.Exists(Path.Combine(dir, "samples.png")) &&
                    File.Exists(Path.Combine(dir, "search", "best.json")));
    }
}
