namespace Ddsm.IO;

/// <summary>
/// CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF), as PNG and
/// gzip use it. Hand-written because System.IO.Hashing is not restorable here; slicing-by-one is
/// plenty for files of a few MB.
/// </summary>
public static class Crc32
{
    private static readonly uint[] Table = MakeTable(0xEDB88320u);

    /// <summary>The byte-at-a-time table of a reflected CRC-32 polynomial (this one's, or CRC-32C's).</summary>
    internal static uint[] MakeTable(uint reflectedPolynomial)
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? reflectedPolynomial ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>Continues a running CRC: start with <c>state = 0</c>, feed spans, the result is the CRC.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint c = ~crc;
        foreach (byte b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);
}
