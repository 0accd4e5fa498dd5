namespace Ddsm.IO;

/// <summary>
/// Checksums of a safetensors file's contents, kept in its own metadata under <see cref="Key"/>: a CRC-32C of
/// every tensor's raw bytes and one of the other metadata (the model config, the step …). The files this
/// program writes carry them (<see cref="Stamp"/>); <see cref="SafeTensors.Read(Stream, string)"/> checks them
/// whenever they are there, so a flipped bit on disk or a hand-edited weight is a clear error instead of a
/// model that samples noise. Files without the key (written before it, or elsewhere) load as they always did.
/// </summary>
public static class TensorChecksums
{
    public const string Key = "ddsm_crc32c";
    private const string MetadataEntry = "__metadata__";

    /// <summary><paramref name="metadata"/> plus the checksums of <paramref name="tensors"/> and of itself.</summary>
    public static Dictionary<string, string> Stamp(IReadOnlyList<SafeTensor> tensors,
        IReadOnlyDictionary<string, string>? metadata)
    {
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>());
        meta.Remove(Key);
        var sums = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [MetadataEntry] = Hex(OfMetadata(meta)),
        };
        foreach (var t in tensors) sums[t.Name] = Hex(Crc32C.Compute(t.Data));
        meta[Key] = JsonSerializer.Serialize(sums);
        return meta;
    }

    /// <summary>
    /// Checks a file read from <paramref name="source"/> against its checksums, if it has any: every tensor
    /// listed and matching, none unlisted, the metadata unchanged. Throws <see cref="DataFormatException"/>.
    /// </summary>
    public static void Verify(IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata,
                              string source)
    {
        if (!metadata.TryGetValue(Key, out var json)) return;
        Dictionary<string, string>? sums;
        try { sums = JsonSerializer.Deserialize<Dictionary<string, string>>(json); }
        catch (JsonException) { sums = null; }
        if (sums is null) throw new DataFormatException(source, $"metadata '{Key}' is not a checksum table");
        const string Damaged = "(file damaged or edited)";
        var rest = metadata.Where(kv => kv.Key != Key).ToDictionary(kv => kv.Key, kv => kv.Value);
        DataFormatException.Check(sums.GetValueOrDefault(MetadataEntry) == Hex(OfMetadata(rest)), source,
            $"metadata does not match its checksum {Damaged}");
        foreach (var t in tensors)
        {
            DataFormatException.Check(sums.TryGetValue(t.Name, out var want), source,
                                      $"tensor '{t.Name}' has no checksum {Damaged}");
            DataFormatException.Check(want == Hex(Crc32C.Compute(t.Data)), source,
                $"tensor '{t.Name}' does not match its checksum {Damaged}");
        }
        DataFormatException.Check(sums.Count == tensors.Count + 1, source,
                                  $"tensors listed in the checksums are missing {Damaged}");
    }

    /// <summary>
    /// The metadata as one canonical byte string: keys in ordinal order, each key and value length-prefixed.
    /// </summary>
    private static uint OfMetadata(IReadOnlyDictionary<string, string> meta)
    {
        var sb = new StringBuilder();
        foreach (var (k, v) in meta.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            sb.Append(CultureInfo.InvariantCulture, $"{k.Length}:{k}{v.Length}:{v}");
        return Crc32C.Compute(Encoding.UTF8.GetBytes(sb.ToString()));
    }

    private static string Hex(uint v) => v.ToString("x8", CultureInfo.InvariantCulture);
}
