using System.Buffers.Binary;
using System.IO.Compression;
using Ddsm.Engine;
using Ddsm.IO;

namespace Ddsm.Tests.IO;

public class PngTests
{
    private static byte[] RandomBytes(Rng r, int n)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)r.NextInt(256);
        return b;
    }

    /// <summary>Smooth-ish image (gradient + noise) so the adaptive filter picks different filters per row.</summary>
    private static byte[] Smooth(Rng r, int w, int h, int c)
    {
        var b = new byte[w * h * c];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) for (int k = 0; k < c; k++)
            b[(y * w + x) * c + k] = (byte)(x * 3 + y * 5 + k * 40 + r.NextInt(7));
        return b;
    }

    [Test]
    public void Crc32MatchesKnownVectors()
    {
        Assert.That(Crc32.Compute("123456789"u8), Is.EqualTo(0xCBF43926u));
        Assert.That(Crc32.Compute("IEND"u8), Is.EqualTo(0xAE426082u));   // every PNG ends in AE 42 60 82
        Assert.That(Crc32.Append(Crc32.Compute("1234"u8), "56789"u8), Is.EqualTo(0xCBF43926u));
    }

    [TestCase(1), TestCase(3)]
    public void RoundTripIsExactForEveryFilter(int channels)
    {
        var r = new Rng(7);
        foreach (var (w, h) in new[] { (1, 1), (5, 3), (17, 11), (28, 28) })
            foreach (int? filter in new int?[] { null, 0, 1, 2, 3, 4 })
                foreach (var px in new[] { RandomBytes(r, w * h * channels), Smooth(r, w, h, channels) })
                {
                    var img = Png.Read(Png.Encode(w, h, channels, px, filter), "mem");
                    Assert.That((img.Width, img.Height, img.Channels), Is.EqualTo((w, h, channels)));
                    Assert.That(img.Pixels, Is.EqualTo(px),
                                $"{w}x{h}x{channels} filter {filter?.ToString() ?? "adaptive"}");
                }
    }

    [Test]
    public void WriterBytesFollowTheSpec()
    {
        var png = Png.Encode(3, 2, 3, new byte[18]);
        Assert.That(png[..8], Is.EqualTo(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }));
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(8)), Is.EqualTo(13));
        Assert.That(System.Text.Encoding.ASCII.GetString(png, 12, 4), Is.EqualTo("IHDR"));
        Assert.That(png[16..29], Is.EqualTo(new byte[] { 0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0 }));
        Assert.That(png[^12..],
                    Is.EqualTo(
                        new byte[] { 0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82 }));
        // The IDAT is a standard zlib stream: .NET's own inflater recovers the filtered rows.
        int idatLen = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(33));
        using var z = new ZLibStream(new MemoryStream(png, 41, idatLen), CompressionMode.Decompress);
        var raw = new MemoryStream(); z.CopyTo(raw);
        Assert.That(raw.Length, Is.EqualTo(2 * (1 + 9)));
    }

    /// <summary>
    /// Builds a PNG by hand (any colour type, explicit filter bytes) to test what our writer never emits.
    /// </summary>
    internal static byte[] HandMade(int w, int h, byte colourType, byte[] filteredRows, byte depth = 8,
        byte interlace = 0, bool withEnd = true, string[]? extraChunksBeforeIdat = null)
    {
        var ms = new MemoryStream();
        ms.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)w);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)h);
        ihdr[8] = depth; ihdr[9] = colourType; ihdr[12] = interlace;
        Png.WriteChunk(ms, "IHDR", ihdr);
        foreach (var c in extraChunksBeforeIdat ?? []) Png.WriteChunk(ms, c, [1, 2, 3]);
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Fastest, leaveOpen: true)) zs.Write(filteredRows);
        var zb = z.ToArray();
        // Split the IDAT in two chunks: readers must concatenate them.
        Png.WriteChunk(ms, "IDAT", zb.AsSpan(0, zb.Length / 2));
        Png.WriteChunk(ms, "IDAT", zb.AsSpan(zb.Length / 2));
        if (withEnd) Png.WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>Reference filter in plain arithmetic (PNG spec §9.2), per byte, with bpp = channels.</summary>
    private static byte[] FilterRows(byte[] px, int w, int h, int c, Func<int, int> filterOfRow)
    {
        int stride = w * c;
        var o = new byte[(stride + 1) * h];
        for (int y = 0; y < h; y++)
        {
            int ft = filterOfRow(y);
            o[y * (stride + 1)] = (byte)ft;
            for (int i = 0; i < stride; i++)
            {
                int a = i >= c ? px[y * stride + i - c] : 0, b = y > 0 ? px[(y - 1) * stride + i] : 0,
                    cc = i >= c && y > 0 ? px[(y - 1) * stride + i - c] : 0;
                int p = a + b - cc, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - cc);
                int pred = ft switch { 0 => 0, 1 => a, 2 => b, 3 => (a + b) / 2,
                                       _ => pa <= pb && pa <= pc ? a : pb <= pc ? b : cc };
                o[y * (stride + 1) + 1 + i] = (byte)(px[y * stride + i] - pred);
            }
        }
        return o;
    }

    [TestCase((byte)0, 1), TestCase((byte)4, 2), TestCase((byte)2, 3), TestCase((byte)6, 4)]
    public void ReadsEveryColourTypeWithMixedFilters(byte colourType, int channels)
    {
        var r = new Rng(100UL + colourType);
        int w = 9, h = 10;
        var px = Smooth(r, w, h, channels);
        var png = HandMade(w, h, colourType, FilterRows(px, w, h, channels, y => y % 5),
                           extraChunksBeforeIdat: ["tEXt", "gAMA"]);
        var img = Png.Read(png, "hand");
        Assert.That(img.Channels, Is.EqualTo(channels));
        Assert.That(img.Pixels, Is.EqualTo(px));
    }

    [Test]
    public void RejectsWhatItDoesNotSupportOrWhatIsBroken()
    {
        var px = new byte[4 * 4];
        byte[] rows = FilterRows(px, 4, 4, 1, _ => 0);
        Fuzz.Rejects(() => Png.Read(HandMade(4, 4, 3, rows), "pal.png"), "palette");
        Fuzz.Rejects(() => Png.Read(HandMade(4, 4, 0, rows, depth: 16), "16.png"), "bit depth 16");
        Fuzz.Rejects(() => Png.Read(HandMade(4, 4, 0, rows, interlace: 1), "adam7.png"), "interlaced");
        Fuzz.Rejects(() => Png.Read(HandMade(4, 4, 0, rows, withEnd: false), "noend.png"), "truncated");
        Fuzz.Rejects(() => Png.Read(HandMade(4, 4, 0, rows, extraChunksBeforeIdat: ["ABCD"]), "crit.png"),
                     "unknown critical chunk ABCD");
        var badFilter = (byte[])rows.Clone(); badFilter[5] = 5;
        Fuzz.Rejects(() => Png.Read(HandMade(4, 4, 0, badFilter), "filter.png"), "filter type 5");
        Fuzz.Rejects(() => Png.Read(HandMade(4, 4, 0, rows[..^1]), "short.png"), "truncated");
        Fuzz.Rejects(() => Png.Read(HandMade(4, 4, 0, [.. rows, 0]), "long.png"), "trailing");

        var good = Png.Encode(4, 4, 1, px);
        var badCrc = (byte[])good.Clone(); badCrc[29] ^= 1;   // first CRC byte of IHDR
        Fuzz.Rejects(() => Png.Read(badCrc, "crc.png"), "CRC mismatch in IHDR");
        var badSig = (byte[])good.Clone(); badSig[1] = (byte)'Q';
        Fuzz.Rejects(() => Png.Read(badSig, "sig.png"), "signature");
        Fuzz.Rejects(() => Png.Read(good[..20], "cut.png"), "past the end");
    }

    [Test]
    public void RejectsZlibWithPresetDictionary()
    {
        // zlib header 78 20: valid check bits, FDICT set; PNG forbids preset dictionaries (found by fuzzing:
        // .NET throws its internal ZLibException here, which must not leak).
        var ms = new MemoryStream();
        ms.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        Png.WriteChunk(ms, "IHDR", [0, 0, 0, 2, 0, 0, 0, 2, 8, 0, 0, 0, 0]);
        Png.WriteChunk(ms, "IDAT", [0x78, 0x20, 1, 2, 3, 4, 0x63, 0, 0, 0, 0, 0]);
        Png.WriteChunk(ms, "IEND", []);
        Assert.Throws<DataFormatException>(() => Png.Read(ms.ToArray(), "fdict.png"));
    }

    [Test]
    public void LyingDimensionsAreRejectedBeforeAllocating()
    {
        // A 60000 x 60000 RGBA header (14 GB of pixels) over a few bytes of IDAT.
        var png = HandMade(60000, 60000, 6, new byte[10]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Fuzz.Rejects(() => Png.Read(png, "huge.png"), "too large");
        var png2 = HandMade(4000, 4000, 0, new byte[10]);   // 16 MB raw from ~30 bytes of deflate: impossible
        Fuzz.Rejects(() => Png.Read(png2, "liar.png"), "cannot come from");
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(1 << 20));
    }

    [Test]
    public void ImageGridPlacesImagesAndPadding()
    {
        var r = new Rng(3);
        int n = 5, c = 3, h = 4, w = 6, cols = 3, pad = 1;
        var imgs = new float[n * c * h * w];
        r.FillUniform(imgs, -1.2f, 1.2f);
        var (px, gw, gh) = ImageGrid.Compose(imgs, n, c, h, w, cols, pad, padValue: 77);
        Assert.That((gw, gh), Is.EqualTo((cols * (w + pad) + pad, 2 * (h + pad) + pad)));
        for (int i = 0; i < n; i++)
            for (int k = 0; k < c; k++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        int gx = pad + (i % cols) * (w + pad) + x, gy = pad + (i / cols) * (h + pad) + y;
                        float v = imgs[((i * c + k) * h + y) * w + x];
                        int want = (int)Math.Clamp(Math.Round((v + 1) * 127.5), 0, 255);
                        Assert.That(px[(gy * gw + gx) * c + k], Is.EqualTo(want).Within(1));
                    }
        Assert.That(px[0], Is.EqualTo(77));
        Assert.That(px[((gh - 1) * gw + gw - 1) * c], Is.EqualTo(77));   // the empty 6th cell and border
        string path = Path.Combine(Path.GetTempPath(), $"ddsm-grid-{Guid.NewGuid():N}.png");
        try
        {
            ImageGrid.WritePng(path, imgs, n, c, h, w, cols, pad, 77);
            Assert.That(Png.Read(path).Pixels, Is.EqualTo(px));
        }
        finally { File.Delete(path); }
    }

    // ---------------------------------------------------------------- fuzz

    private static readonly int[] PngHot = [8, 16, 20, 24, 25, 26, 27, 28, 33];

    [Test]
    public void FuzzRawBytes()
    {
        var r = new Rng(11);
        var valid = Png.Encode(12, 9, 3, Smooth(r, 12, 9, 3));
        Fuzz.Run("png raw", valid, x => x, x => Png.Read(x, "fuzz.png"), 3000, seed: 1, hot: PngHot);
    }

    /// <summary>Mutations with the CRCs recomputed afterwards, so the parser behind the CRC check is reached.</summary>
    [Test]
    public void FuzzWithFixedCrcs()
    {
        var r = new Rng(12);
        var valid = HandMade(7, 6, 6, FilterRows(Smooth(r, 7, 6, 4), 7, 6, 4, y => y % 5));
        Fuzz.Run("png crc-fixed", valid, FixCrcs, x => Png.Read(x, "fuzz.png"), 3000, seed: 2, hot: PngHot);
    }

    /// <summary>
    /// Mutations of the filtered rows under a valid zlib stream and valid chunks: filter bytes and sizes.
    /// </summary>
    [Test]
    public void FuzzFilteredPayload()
    {
        var r = new Rng(13);
        var px = Smooth(r, 8, 5, 2);
        var rows = FilterRows(px, 8, 5, 2, y => y % 5);
        Fuzz.Run("png payload", rows, m => HandMade(8, 5, 4, m), x => Png.Read(x, "fuzz.png"), 1500, seed: 3);
    }

    /// <summary>Walks the chunk list (as far as it is parseable) and rewrites each CRC.</summary>
    internal static byte[] FixCrcs(byte[] b)
    {
        int pos = 8;
        while (pos + 12 <= b.Length)
        {
            long len = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos));
            if (len > b.Length - pos - 12) break;
            uint crc = Crc32.Compute(b.AsSpan(pos + 4, 4 + (int)len));
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(pos + 8 + (int)len), crc);
            pos += 12 + (int)len;
        }
        return b;
    }
}
