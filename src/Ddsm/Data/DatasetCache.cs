using System.Buffers.Binary;
using System.IO.Compression;

namespace Ddsm.Data;

/// <summary>
/// Our compact binary cache for a labelled image set, so a fetched data set loads in milliseconds
/// instead of re-parsing 150 MB of JSON. Little-endian layout (version 1):
/// <code>
///   "DDSMIMG\0"  u32 version  u32 count  u32 channels  u32 height  u32 width  u32 classCount
///   u32 nameLen, name (UTF-8)   classCount × (u32 len, class name UTF-8)
///   labels[count]   pixels[count × C × H × W]   (N, C, H, W) bytes
///   u32 CRC-32 of every byte before it
/// </code>
/// The file may be gzip- or Brotli-compressed as a whole (the embedded subset is Brotli).
/// </summary>
public static class DatasetCache
{
    public static ReadOnlySpan<byte> Magic => "DDSMIMG\0"u8;
    public const uint Version = 1;
    private const long MaxDecoded = 1L << 30;
    private const int MaxName = 1024, MaxDim = 1 << 16;

    public static byte[] Encode(ImageDataset ds)
    {
        var ms = new MemoryStream();
        ms.Write(Magic);
        foreach (uint v in new[] { Version, (uint)ds.Count, (uint)ds.Channels, (uint)ds.Height, (uint)ds.Width,
                                   (uint)ds.ClassCount }) U32(ms, v);
        Str(ms, ds.Name);
        foreach (var c in ds.ClassNames) Str(ms, c);
        ms.Write(ds.Labels);
        ms.Write(ds.Pixels);
        U32(ms, Crc32.Compute(ms.GetBuffer().AsSpan(0, (int)ms.Length)));
        return ms.ToArray();
    }

    public static void Write(string path, ImageDataset ds)
    {
        var b = Encode(ds);
        AtomicFile.Write(path, s => s.Write(b));
    }

    /// <summary>Brotli-compressed cache bytes (used for the embedded subset).</summary>
    public static byte[] EncodeBrotli(ImageDataset ds)
    {
        var ms = new MemoryStream();
        using (var br = new BrotliStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) br.Write(Encode(ds));
        return ms.ToArray();
    }

    public static ImageDataset Load(string path) => Decode(File.ReadAllBytes(path), path);

    /// <summary>Decodes raw or gzip cache bytes.</summary>
    public static ImageDataset Decode(byte[] file, string source)
        => Parse(BoundedRead.IsGzip(file) ? BoundedRead.GunzipCapped(file, MaxDecoded, source) : file, source);

    public static ImageDataset DecodeBrotli(Stream compressed, string source)
    {
        using var br = new BrotliStream(compressed, CompressionMode.Decompress);
        var ms = new MemoryStream();
        var chunk = new byte[1 << 16];
        while (true)
        {
            int n;
            // BrotliStream reports corrupt input as InvalidOperationException ("Decoder ran into invalid data").
            try { n = BoundedRead.Guarded(() => br.Read(chunk, 0, chunk.Length), source, "brotli"); }
            catch (InvalidOperationException e)
            {
                throw new DataFormatException(source, $"brotli: corrupt compressed data ({e.Message})", e);
            }
            if (n == 0) break;
            DataFormatException.Check(ms.Length + n <= MaxDecoded, source,
                                      $"decompresses to more than {MaxDecoded} bytes");
            ms.Write(chunk, 0, n);
        }
        return Parse(ms.ToArray(), source);
    }

    private static ImageDataset Parse(byte[] b, string source)
    {
        int pos = 0;
        DataFormatException.Check(b.Length >= Magic.Length + 6 * 4 + 4 &&
                                  b.AsSpan(0, Magic.Length).SequenceEqual(Magic), source,
                                  "not a DDSM image cache (bad magic)");
        DataFormatException.Check(b.Length >= 4 + 8 &&
                                  Crc32.Compute(b.AsSpan(0, b.Length - 4)) ==
                                  BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(b.Length - 4)),
            source, "checksum mismatch (file corrupt or truncated)");
        pos = Magic.Length;
        uint version = ReadU32(b, ref pos, source);
        DataFormatException.Check(version == Version, source, $"cache version {version}, this build reads {Version}");
        uint count = ReadU32(b, ref pos, source), c = ReadU32(b, ref pos, source), h = ReadU32(b, ref pos, source),
             w = ReadU32(b, ref pos, source), classes = ReadU32(b, ref pos, source);
        DataFormatException.Check(c is > 0 and <= 4 && h is > 0 and < MaxDim && w is > 0 and < MaxDim, source,
                                  $"invalid image shape ({c}, {h}, {w})");
        DataFormatException.Check(classes <= 256, source, $"class count {classes} exceeds 256");
        string name = ReadStr(b, ref pos, source);
        var names = new string[classes];
        for (int i = 0; i < classes; i++) names[i] = ReadStr(b, ref pos, source);
        // Bound each factor by the real length first so the product below cannot overflow.
        DataFormatException.Check(count <= b.Length && (long)c * h * w <= b.Length, source,
                                  $"header claims {count} images of ({c}, {h}, {w}), more than the file holds");
        long body = (long)count * (1 + (long)c * h * w);
        DataFormatException.Check(body == b.Length - 4 - pos, source,
                                  $"header says {count} images of ({c}, {h}, {w}) = {body} bytes, file has " +
                                  $"{b.Length - 4 - pos}");
        var labels = b.AsSpan(pos, (int)count).ToArray();
        var pixels = b.AsSpan(pos + (int)count, (int)(count * (long)c * h * w)).ToArray();
        int bound = Math.Max((int)classes, 1);
        for (int i = 0; i < labels.Length; i++)
            DataFormatException.Check(labels[i] < bound, source, $"label {labels[i]} at {i} is not below {bound}");
        return new ImageDataset(name, pixels, labels, (int)c, (int)h, (int)w, (int)classes, names);
    }

    private static void U32(Stream s, uint v)
    {
        Span<byte> t = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(t, v);
        s.Write(t);
    }

    private static void Str(Stream s, string v)
    {
        var bytes = Encoding.UTF8.GetBytes(v);
        if (bytes.Length > MaxName) throw new ArgumentException($"name '{v[..32]}…' longer than {MaxName} bytes");
        U32(s, (uint)bytes.Length); s.Write(bytes);
    }

    private static uint ReadU32(byte[] b, ref int pos, string source)
    {
        DataFormatException.Check(b.Length - 4 - pos >= 4, source, $"truncated header at byte {pos}");
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(pos));
        pos += 4;
        return v;
    }

    private static string ReadStr(byte[] b, ref int pos, string source)
    {
        uint len = ReadU32(b, ref pos, source);
        DataFormatException.Check(len <= MaxName && len <= b.Length - 4 - pos, source,
                                  $"string of {len} bytes at byte {pos} is too long");
        int at = pos;
        var s = BoundedRead.Guarded(() => new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(b, at, (int)len),
                                    source, "name");
        pos += (int)len;
        return s;
    }
}
