using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.IO;
using Ddsm.Tests.IO;

namespace Ddsm.Tests.Data;

public class PngFolderTests
{
    private string _dir = "";

    [SetUp] public void SetUp() => _dir = Directory.CreateTempSubdirectory("ddsm-pngdir-").FullName;
    [TearDown] public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void SubFoldersBecomeClassesAndPixelsBecomePlanar()
    {
        var r = new Rng(71);
        var rgb = new Dictionary<string, byte[]>();
        foreach (var (cls, file) in new[] { ("dog", "b.png"), ("cat", "x.png"), ("dog", "a.png") })
        {
            Directory.CreateDirectory(Path.Combine(_dir, cls));
            var px = TestData.RandomBytes(r, 6 * 5 * 3);   // (H, W, C) interleaved
            Png.Write(Path.Combine(_dir, cls, file), 5, 6, 3, px);
            rgb[$"{cls}/{file}"] = px;
        }
        File.WriteAllText(Path.Combine(_dir, "dog", "notes.txt"), "ignored");
        var ds = PngFolder.Load(_dir, "pets");
        Assert.That(ds.ClassNames, Is.EqualTo(new[] { "cat", "dog" }));
        Assert.That(ds.Labels, Is.EqualTo(new byte[] { 0, 1, 1 }));   // cat/x, dog/a, dog/b
        Assert.That((ds.Count, ds.Channels, ds.Height, ds.Width), Is.EqualTo((3, 3, 6, 5)));
        var want = rgb["dog/a.png"];
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 30; p++)
                Assert.That(ds.Pixels[ds.ImageSize + c * 30 + p], Is.EqualTo(want[p * 3 + c]));
        // Forced gray: Rec. 601 luma of the RGB image.
        var gray = PngFolder.Load(_dir, channels: 1);
        Assert.That(gray.Pixels[0],
                    Is.EqualTo(Math.Round(0.299 * rgb["cat/x.png"][0] + 0.587 * rgb["cat/x.png"][1] + 0.114 *
                                          rgb["cat/x.png"][2])).Within(0));
    }

    [Test]
    public void FlatFolderIsUnlabelledAndGrayStaysGray()
    {
        var r = new Rng(72);
        var a = TestData.RandomBytes(r, 16);
        Png.Write(Path.Combine(_dir, "1.png"), 4, 4, 1, a);
        Png.Write(Path.Combine(_dir, "2.png"), 4, 4, 1, TestData.RandomBytes(r, 16));
        var ds = PngFolder.Load(_dir);
        Assert.That((ds.Count, ds.Channels, ds.ClassCount), Is.EqualTo((2, 1, 0)));
        Assert.That(ds.Pixels[..16], Is.EqualTo(a));
        Assert.That(Datasets.Open("png:" + _dir, _dir).Count, Is.EqualTo(2));
    }

    [Test]
    public void MismatchedSizesAndBrokenFilesNameTheFile()
    {
        var r = new Rng(73);
        Png.Write(Path.Combine(_dir, "1.png"), 4, 4, 1, TestData.RandomBytes(r, 16));
        Png.Write(Path.Combine(_dir, "2.png"), 5, 4, 1, TestData.RandomBytes(r, 20));
        Fuzz.Rejects(() => PngFolder.Load(_dir), "2.png: is 5x4, the first image is 4x4");
        File.Delete(Path.Combine(_dir, "2.png"));
        File.WriteAllBytes(Path.Combine(_dir, "3.png"), [1, 2, 3]);
        Fuzz.Rejects(() => PngFolder.Load(_dir), "3.png: not a PNG");
        var empty = Directory.CreateDirectory(Path.Combine(_dir, "sub")).FullName;
        Fuzz.Rejects(() => PngFolder.Load(empty), "no .png files");
    }
}
