namespace Ddsm.Data;

/// <summary>
/// A minimal ustar reader for npm tarballs. Not System.Formats.Tar's TarReader: fuzzing showed it
/// allocates whatever a corrupt header's size field says (1 GB from a 23 KB archive) and throws
/// Overflow/Format exceptions. Here every size is checked against the bytes actually present.
/// Pax ('x', 'g') and GNU long-name ('L', 'K') records are skipped: the entries we want have short names.
/// </summary>
internal static class TarArchive
{
    public readonly record struct Entry(string Name, char Type, ReadOnlyMemory<byte> Data);

    public static List<Entry> Read(byte[] tar, string source)
    {
        var entries = new List<Entry>();
        long pos = 0;
        while (true)
        {
            if (pos == tar.Length) return entries;   // tolerate a missing end-of-archive marker
            DataFormatException.Check(tar.Length - pos >= 512, source, $"tar: truncated header at byte {pos}");
            var h = tar.AsSpan((int)pos, 512);
            if (!h.ContainsAnyExcept((byte)0)) return entries;   // zero block: end of archive
            long declared = Octal(h.Slice(148, 8), source, pos, "checksum");
            long sum = 0;
            for (int i = 0; i < 512; i++) sum += i is >= 148 and < 156 ? (byte)' ' : h[i];
            DataFormatException.Check(sum == declared, source, $"tar: header checksum mismatch at byte {pos}");
            long size = Octal(h.Slice(124, 12), source, pos, "size");
            DataFormatException.Check(size <= tar.Length - pos - 512, source,
                                      $"tar: entry at byte {pos} claims {size} bytes, only " +
                                      $"{tar.Length - pos - 512} remain");
            string name = Text(h[..100]);
            if (h.Slice(257, 5).SequenceEqual("ustar"u8) && h[345] != 0) name = Text(h.Slice(345, 155)) + "/" + name;
            char type = (char)h[156];
            entries.Add(new Entry(name, type == '\0' ? '0' : type, tar.AsMemory((int)pos + 512, (int)size)));
            pos += 512 + (size + 511) / 512 * 512;
            pos = Math.Min(pos, tar.Length);   // the final padding may be cut short by some writers
        }
    }

    private static string Text(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return System.Text.Encoding.Latin1.GetString(end < 0 ? field : field[..end]);
    }

    /// <summary>Octal digits, optionally space-padded and NUL/space-terminated (base-256 sizes are rejected:
    /// they only occur for files over 8 GB).</summary>
    private static long Octal(ReadOnlySpan<byte> field, string source, long pos, string what)
    {
        int i = 0;
        while (i < field.Length && field[i] == ' ') i++;
        long v = 0; int digits = 0;
        for (; i < field.Length && field[i] is >= (byte)'0' and <= (byte)'7'; i++, digits++)
            v = v * 8 + (field[i] - '0');
        for (; i < field.Length; i++)
            DataFormatException.Check(field[i] is 0 or (byte)' ', source, $"tar: invalid {what} field at byte {pos}");
        DataFormatException.Check(digits > 0, source, $"tar: empty {what} field at byte {pos}");
        return v;   // at most 11 octal digits fit in the 12-byte field: no overflow
    }
}
