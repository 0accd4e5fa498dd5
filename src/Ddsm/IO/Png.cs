using System.Buffers.Binary;
using System.IO.Compression;

namespace Ddsm.IO;

/// <summary>A decoded 8-bit image: interleaved pixels (H, W, Channels), row-major.</summary>
/// <param name="Channels">1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.</param>
public sealed record PngImage(int Width, int Height, int Channels, byte[] Pixels);

/// <summary>
/// Minimal PNG codec for data sets and sample grids. Reads 8-bit gray / gray+alpha / RGB / RGBA,
/// non-interlaced, all five row filters; anything else (palette, 16-bit, Adam7, bad CRC, missing
/// chunks) is a <see cref="DataFormatException"/>. Writes 8-bit gray or RGB with per-row adaptive
/// filtering (the usual minimum-sum-of-absolute-differences heuristic).
/// </summary>
public static class Png
{
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    /// <summary>Deflate cannot expand more than ~1032:1; a header asking for more raw bytes than that
    /// from the IDAT it has is lying, and we refuse before allocating.</summary>
    private const long MaxInflateRatio = 1100;
    private const long MaxRawBytes = 1L << 30;

    public static PngImage Read(string path) => Read(File.ReadAllBytes(path), path);

    public static PngImage Read(byte[] file, string source)
    {
        var f = file.AsSpan();
        DataFormatException.Check(f.Length >= 8 && f[..8].SequenceEqual(Signature), source,
                                  "not a PNG (bad signature)");
        int pos = 8;
        int width = 0, height = 0, channels = 0;
        bool sawHeader = false, sawEnd = false, idatClosed = false;
        var idat = new MemoryStream();
        while (!sawEnd)
        {
            DataFormatException.Check(f.Length - pos >= 12, source, $"truncated chunk header at byte {pos}");
            uint len = BoundedRead.U32BE(f, pos);
            DataFormatException.Check(len <= int.MaxValue && len <= f.Length - pos - 12, source,
                                      $"chunk length {len} at byte {pos} runs past the end of the file");
            var type = f.Slice(pos + 4, 4);
            var data = f.Slice(pos + 8, (int)len);
            uint crc = BoundedRead.U32BE(f, pos + 8 + (int)len);
            string name = ChunkName(type, source, pos);
            DataFormatException.Check(Crc32.Compute(f.Slice(pos + 4, 4 + (int)len)) == crc, source,
                                      $"CRC mismatch in {name} chunk at byte {pos}");
            DataFormatException.Check(sawHeader || name == "IHDR", source, $"first chunk is {name}, expected IHDR");
            switch (name)
            {
                case "IHDR":
                    DataFormatException.Check(!sawHeader, source, "duplicate IHDR");
                    (width, height, channels) = ParseHeader(data, source);
                    sawHeader = true;
                    break;
                case "IDAT":
                    DataFormatException.Check(!idatClosed, source, "IDAT chunks are not consecutive");
                    idat.Write(data);
                    break;
                case "IEND":
                    DataFormatException.Check(len == 0, source, "IEND chunk has data");
                    sawEnd = true;
                    break;
                case "PLTE":
                    // A suggested palette is legal for truecolour; for gray it is an error. We never use it.
                    DataFormatException.Check(channels >= 3, source, "PLTE chunk in a grayscale image");
                    break;
                default:
                    // Bit 5 of the first letter: lower case = ancillary (safe to skip), upper = critical.
                    DataFormatException.Check((type[0] & 0x20) != 0, source, $"unknown critical chunk {name}");
                    break;
            }
            if (name != "IDAT" && idat.Length > 0) idatClosed = true;
            pos += 12 + (int)len;
        }
        DataFormatException.Check(idat.Length > 0, source, "no IDAT chunk");

        long stride = (long)width * channels;
        long raw = (stride + 1) * height;                 // each row: filter byte + pixels
        DataFormatException.Check(raw <= MaxRawBytes, source, $"{width}x{height} image is too large");
        DataFormatException.Check(raw <= idat.Length * MaxInflateRatio + 1024, source,
            $"{width}x{height} image cannot come from {idat.Length} bytes of compressed data");
        idat.Position = 0;
        byte[] filtered;
        using (var z = new ZLibStream(idat, CompressionMode.Decompress))
            filtered = BoundedRead.Exactly(z, raw, source, "IDAT");
        var pixels = Unfilter(filtered, (int)stride, height, channels, source);
        return new PngImage(width, height, channels, pixels);
    }

    private static string ChunkName(ReadOnlySpan<byte> type, string source, int pos)
    {
        foreach (byte b in type)
            DataFormatException.Check(b is >= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z', source,
                                      $"invalid chunk type at byte {pos}");
        return Encoding.ASCII.GetString(type);
    }

    private static (int W, int H, int C) ParseHeader(ReadOnlySpan<byte> d, string source)
    {
        DataFormatException.Check(d.Length == 13, source, $"IHDR has {d.Length} bytes, expected 13");
        uint w = BoundedRead.U32BE(d, 0), h = BoundedRead.U32BE(d, 4);
        DataFormatException.Check(w is > 0 and <= int.MaxValue && h is > 0 and <= int.MaxValue, source,
                                  $"invalid size {w}x{h}");
        byte depth = d[8], colour = d[9];
        DataFormatException.Check(depth == 8, source, $"bit depth {depth} not supported (only 8)");
        int c = colour switch
        {
            0 => 1, 4 => 2, 2 => 3, 6 => 4,
            3 => throw new DataFormatException(source, "palette images are not supported"),
            _ => throw new DataFormatException(source, $"invalid colour type {colour}"),
        };
        DataFormatException.Check(d[10] == 0, source, $"unknown compression method {d[10]}");
        DataFormatException.Check(d[11] == 0, source, $"unknown filter method {d[11]}");
        DataFormatException.Check(d[12] == 0, source,
                                  d[12] == 1 ? "interlaced (Adam7) images are not supported"
                                      : $"invalid interlace method {d[12]}");
        return ((int)w, (int)h, c);
    }

    // Reverses the per-row filters (PNG spec §9). bpp = bytes per pixel = channels at 8 bits.
    private static byte[] Unfilter(byte[] src, int stride, int height, int bpp, string source)
    {
        var dst = new byte[(long)stride * height];
        for (int y = 0; y < height; y++)
        {
            int s = y * (stride + 1);
            byte filter = src[s];
            var cur = dst.AsSpan(y * stride, stride);
            ReadOnlySpan<byte> prev = y > 0 ? dst.AsSpan((y - 1) * stride, stride) : new byte[stride];
            var row = src.AsSpan(s + 1, stride);
            switch (filter)
            {
                case 0: row.CopyTo(cur); break;
                case 1: for (int i = 0; i < stride; i++) cur[i] = (byte)(row[i] + (i >= bpp ? cur[i - bpp] : 0)); break;
                case 2: for (int i = 0; i < stride; i++) cur[i] = (byte)(row[i] + prev[i]); break;
                case 3: for (int i = 0; i < stride; i++)
                    cur[i] = (byte)(row[i] + (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1));
                break;
                case 4:
                    for (int i = 0; i < stride; i++)
                        cur[i] =
                            (byte)(row[i] + Paeth(i >= bpp ? cur[i - bpp] : 0, prev[i], i >= bpp ? prev[i - bpp] : 0));
                    break;
                default: throw new DataFormatException(source, $"invalid filter type {filter} on row {y}");
            }
        }
        return dst;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    // ---------------------------------------------------------------- writer

    /// <summary>Writes an 8-bit gray (channels 1) or RGB (channels 3) image from interleaved (H, W, C) bytes.</summary>
    public static void Write(string path, int width, int height, int channels, ReadOnlySpan<byte> pixels)
    {
        byte[] bytes = Encode(width, height, channels, pixels);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <param name="forceFilter">Tests use this to exercise each filter type; null = adaptive.</param>
    public static byte[] Encode(int width, int height, int channels, ReadOnlySpan<byte> pixels, int? forceFilter = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"PNG size must be positive, got {width}x{height}");
        if (channels is not (1 or 3))
            throw new ArgumentException($"PNG writer supports 1 or 3 channels, got {channels}");
        int stride = width * channels;
        if (pixels.Length != (long)stride * height)
            throw new ArgumentException(
                $"PNG: expected {stride * (long)height} bytes for {width}x{height}x{channels}, got {pixels.Length}");
        if (forceFilter is < 0 or > 4) throw new ArgumentException($"PNG filter must be 0..4, got {forceFilter}");

        var filtered = new byte[(stride + 1) * height];
        var best = new byte[stride];
        var trial = new byte[stride];
        for (int y = 0; y < height; y++)
        {
            var cur = pixels.Slice(y * stride, stride);
            ReadOnlySpan<byte> prev = y > 0 ? pixels.Slice((y - 1) * stride, stride) : new byte[stride];
            int bestFilter = 0; long bestScore = long.MaxValue;
            for (int ft = forceFilter ?? 0; ft <= (forceFilter ?? 4); ft++)
            {
                long score = 0;
                for (int i = 0; i < stride; i++)
                {
                    int a = i >= channels ? cur[i - channels] : 0, b = prev[i],
                        c = i >= channels ? prev[i - channels] : 0;
                    int pred = ft switch { 0 => 0, 1 => a, 2 => b, 3 => (a + b) >> 1, _ => Paeth(a, b, c) };
                    trial[i] = (byte)(cur[i] - pred);
                    int sv = (sbyte)trial[i]; score += sv < 0 ? -sv : sv;   // Math.Abs(sbyte.MinValue) throws
                }
                if (score < bestScore) { bestScore = score; bestFilter = ft; trial.CopyTo(best, 0); }
            }
            filtered[y * (stride + 1)] = (byte)bestFilter;
            best.CopyTo(filtered, y * (stride + 1) + 1);
        }

        var ms = new MemoryStream();
        ms.Write(Signature);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)height);
        ihdr[8] = 8; ihdr[9] = (byte)(channels == 1 ? 0 : 2);
        WriteChunk(ms, "IHDR", ihdr);
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zs.Write(filtered);
        WriteChunk(ms, "IDAT", z.ToArray());
        WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    internal static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(head, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, head[4..]);
        s.Write(head);
        s.Write(data);
        uint crc = Crc32.Append(Crc32.Compute(head[4..]), data);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc);
        s.Write(tail);
    }
}
