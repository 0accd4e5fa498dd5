using System.IO.Compression;

namespace Ddsm.IO;

/// <summary>
/// Helpers that let readers trust nothing a header says: a buffer grows only as real bytes
/// arrive, so a header claiming 4 GB in a 1 KB file costs at most twice the bytes actually present.
/// </summary>
internal static class BoundedRead
{
    /// <summary>
    /// Reads exactly <paramref name="expected"/> bytes from <paramref name="s"/> (e.g. a decompressor
    /// whose output length is unknown), then requires end of stream. The buffer doubles from 64 KB as data
    /// arrives, capped at <paramref name="expected"/>.
    /// </summary>
    public static byte[] Exactly(Stream s, long expected, string source, string what)
    {
        DataFormatException.Check(expected >= 0 && expected <= Array.MaxLength, source,
                                  $"{what}: size {expected} out of range");
        var buf = new byte[(int)Math.Min(expected, 1 << 16)];
        int got = 0;
        while (got < expected)
        {
            if (got == buf.Length) Array.Resize(ref buf, (int)Math.Min(expected, 2L * buf.Length));
            int n = Guarded(() => s.Read(buf, got, buf.Length - got), source, what);
            if (n == 0) throw new DataFormatException(source, $"{what}: truncated, {got} of {expected} bytes");
            got += n;
        }
        int extra = Guarded(() => s.Read(new byte[1], 0, 1), source, what);
        DataFormatException.Check(extra == 0, source, $"{what}: trailing data after {expected} bytes");
        return buf;
    }

    /// <summary>Runs a stream/parse action, turning the library's "corrupt input" exceptions into ours.</summary>
    public static T Guarded<T>(Func<T> f, string source, string what)
    {
        try { return f(); }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(source, $"{what}: corrupt compressed data ({e.Message})", e);
        }
        // zlib streams with a preset dictionary (FDICT) or other exotica fail with the BCL's internal
        // ZLibException (an IOException), not InvalidDataException; match it by name, not every IOException.
        catch (IOException e) when (e.GetType().Name == "ZLibException")
        {
            throw new DataFormatException(source, $"{what}: unsupported or corrupt zlib data ({e.Message})", e);
        }
        catch (EndOfStreamException e) { throw new DataFormatException(source, $"{what}: unexpected end of data", e); }
        catch (JsonException e) { throw new DataFormatException(source, $"{what}: malformed JSON ({e.Message})", e); }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new DataFormatException(source, $"{what}: invalid UTF-8 ({e.Message})", e);
        }
    }

    /// <summary>True when the bytes start with the gzip magic 1F 8B.</summary>
    public static bool IsGzip(ReadOnlySpan<byte> b) => b.Length >= 2 && b[0] == 0x1F && b[1] == 0x8B;

    /// <summary>Big-endian u32 at <paramref name="at"/>; the caller has checked the length.</summary>
    public static uint U32BE(ReadOnlySpan<byte> b, int at) =>
        System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b[at..]);

    /// <summary>Decompresses a whole gzip member when the payload size is not known up front,
    /// refusing more than <paramref name="cap"/> bytes (a zip bomb costs at most the cap).</summary>
    public static byte[] GunzipCapped(byte[] gz, long cap, string source)
    {
        using var z = new GZipStream(new MemoryStream(gz, writable: false), CompressionMode.Decompress);
        var ms = new MemoryStream();
        var chunk = new byte[1 << 16];
        while (true)
        {
            int n = Guarded(() => z.Read(chunk, 0, chunk.Length), source, "gzip");
            if (n == 0) break;
            DataFormatException.Check(ms.Length + n <= cap, source, $"gzip: decompresses to more than {cap} bytes");
            ms.Write(chunk, 0, n);
        }
        return ms.ToArray();
    }
}
