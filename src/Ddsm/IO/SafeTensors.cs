using System.Buffers.Binary;

namespace Ddsm.IO;

/// <summary>The contents of a safetensors file: tensors in file order plus the string metadata.</summary>
public sealed class SafeTensorsFile(IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
{
    public IReadOnlyList<SafeTensor> Tensors { get; } = tensors;
    public IReadOnlyDictionary<string, string> Metadata { get; } = metadata;
    private readonly Dictionary<string, SafeTensor> _byName = tensors.ToDictionary(t => t.Name);

    public SafeTensor this[string name] =>
        _byName.TryGetValue(name, out var t) ? t
            : throw new KeyNotFoundException($"safetensors: no tensor named '{name}'");
    public bool Contains(string name) => _byName.ContainsKey(name);
}

/// <summary>
/// The Hugging Face safetensors format: u64 little-endian header length N, N bytes of JSON
/// (<c>{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}}</c>, padded
/// with spaces so the data starts 8-byte aligned), then the data section; offsets are relative to
/// it. The reader checks everything the reference implementation checks (offsets contiguous from 0
/// and covering the whole data section, byte count = shape product × dtype size) and more.
/// </summary>
public static class SafeTensors
{
    public const string MetadataKey = "__metadata__";
    /// <summary>Same cap as the reference implementation: a larger header is an attack, not a model.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    // ---------------------------------------------------------------- writer

    public static void Write(string path, IReadOnlyList<SafeTensor> tensors,
                             IReadOnlyDictionary<string, string>? metadata = null)
        => AtomicFile.Write(path, s => Write(s, tensors, metadata));

    public static byte[] Serialize(IReadOnlyList<SafeTensor> tensors,
                                   IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ms = new MemoryStream();
        Write(ms, tensors, metadata);
        return ms.ToArray();
    }

    public static void Write(Stream s, IReadOnlyList<SafeTensor> tensors,
                             IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = new HashSet<string>();
        foreach (var t in tensors)
        {
            if (t.Name == MetadataKey) throw new ArgumentException($"safetensors: '{MetadataKey}' is reserved");
            if (!names.Add(t.Name)) throw new ArgumentException($"safetensors: duplicate tensor name '{t.Name}'");
        }
        var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType);
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset += t.Data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int n = (int)json.Length;
        int padded = (n + 7) / 8 * 8;   // 8 + padded is a multiple of 8: the data section is aligned
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        s.Write(len);
        s.Write(json.GetBuffer().AsSpan(0, n));
        for (int i = n; i < padded; i++) s.WriteByte((byte)' ');
        foreach (var t in tensors) s.Write(t.Data);
    }

    // ---------------------------------------------------------------- reader

    public static SafeTensorsFile Read(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(fs, path);
    }

    public static SafeTensorsFile Read(byte[] file, string source) =>
        Read(new MemoryStream(file, writable: false), source);

    /// <summary>Reads from a seekable stream positioned at the start of the file.</summary>
    public static SafeTensorsFile Read(Stream s, string source)
    {
        long fileLen = s.Length - s.Position;
        long start = s.Position;
        DataFormatException.Check(fileLen >= 8, source,
                                  $"file of {fileLen} bytes is too short for a safetensors header");
        Span<byte> lenBytes = stackalloc byte[8];
        s.ReadExactly(lenBytes);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        DataFormatException.Check(n <= MaxHeaderBytes, source,
                                  $"header length {n} exceeds the {MaxHeaderBytes}-byte cap");
        DataFormatException.Check((long)n <= fileLen - 8, source,
                                  $"header length {n} exceeds the file ({fileLen} bytes)");
        DataFormatException.Check(n >= 2, source, $"header length {n} is too short for a JSON object");
        var header = new byte[n];
        s.ReadExactly(header);
        DataFormatException.Check(header[0] == (byte)'{', source, "header does not start with '{'");
        // JsonDocument validates UTF-8 inside strings only lazily (GetString throws InvalidOperationException).
        DataFormatException.Check(System.Text.Unicode.Utf8.IsValid(header), source, "header is not valid UTF-8");
        long dataLen = fileLen - 8 - (long)n;

        var (entries, metadata) = BoundedRead.Guarded(() => ParseHeader(header, source), source, "header");

        // Offsets must tile the data section exactly: sorted, contiguous from 0, ending at its end.
        long expect = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            DataFormatException.Check(e.Begin == expect, source,
                e.Begin < expect
                    ? $"tensor '{e.Name}' overlaps the previous one (begins at {e.Begin}, previous ends at {expect})"
                                 : $"gap in the data section before tensor '{e.Name}' ({expect}..{e.Begin})");
            expect = e.End;
        }
        DataFormatException.Check(expect == dataLen, source,
                                  $"tensors cover {expect} bytes but the data section has {dataLen}");

        var tensors = new List<SafeTensor>(entries.Count);
        long dataStart = start + 8 + (long)n;
        foreach (var e in entries)
        {
            var data = new byte[e.End - e.Begin];   // bounded: the offsets were checked against the real file length
            s.Position = dataStart + e.Begin;
            s.ReadExactly(data);
            tensors.Add(new SafeTensor(e.Name, e.DType, e.Shape, data));
        }
        TensorChecksums.Verify(tensors, metadata, source);
        return new SafeTensorsFile(tensors, metadata);
    }

    /// <summary>
    /// The metadata of a file without reading its tensors (nor checking them): what kind of file it is, what
    /// data set it was trained on. Throws <see cref="DataFormatException"/> when the header is malformed.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 12);
        long fileLen = s.Length;
        DataFormatException.Check(fileLen >= 8, path, $"file of {fileLen} bytes is too short for a safetensors header");
        Span<byte> lenBytes = stackalloc byte[8];
        s.ReadExactly(lenBytes);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        DataFormatException.Check(n >= 2 && n <= MaxHeaderBytes && (long)n <= fileLen - 8, path,
                                  $"header length {n} is not possible here");
        var header = new byte[n];
        s.ReadExactly(header);
        DataFormatException.Check(header[0] == (byte)'{' && System.Text.Unicode.Utf8.IsValid(header), path,
            "header is not a UTF-8 JSON object");
        return BoundedRead.Guarded(() => ParseHeader(header, path), path, "header").Item2;
    }

    private sealed record Entry(string Name, string DType, long[] Shape, long Begin, long End);

    private static (List<Entry>, Dictionary<string, string>) ParseHeader(byte[] header, string source)
    {
        using var doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        var root = doc.RootElement;
        DataFormatException.Check(root.ValueKind == JsonValueKind.Object, source, "header is not a JSON object");
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>();
        var seen = new HashSet<string>();
        foreach (var p in root.EnumerateObject())
        {
            DataFormatException.Check(seen.Add(p.Name), source, $"duplicate key '{p.Name}' in header");
            if (p.Name == MetadataKey)
            {
                DataFormatException.Check(p.Value.ValueKind == JsonValueKind.Object, source,
                                          "__metadata__ is not an object");
                foreach (var m in p.Value.EnumerateObject())
                {
                    DataFormatException.Check(m.Value.ValueKind == JsonValueKind.String, source,
                                              $"metadata '{m.Name}' is not a string");
                    DataFormatException.Check(metadata.TryAdd(m.Name, m.Value.GetString()!), source,
                                              $"duplicate metadata key '{m.Name}'");
                }
                continue;
            }
            entries.Add(ParseEntry(p.Name, p.Value, source));
        }
        return (entries, metadata);
    }

    private static Entry ParseEntry(string name, JsonElement v, string source)
    {
        string Where(string what) => $"tensor '{name}': {what}";
        DataFormatException.Check(v.ValueKind == JsonValueKind.Object, source, Where("entry is not an object"));
        string? dtype = null; long[]? shape = null; long[]? offsets = null;
        foreach (var f in v.EnumerateObject())
        {
            switch (f.Name)
            {
                case "dtype" when dtype is null:
                    DataFormatException.Check(f.Value.ValueKind == JsonValueKind.String, source,
                                              Where("dtype is not a string"));
                    dtype = f.Value.GetString()!;
                    break;
                case "shape" when shape is null: shape = Ints(f.Value, source, Where("shape")); break;
                case "data_offsets" when offsets is null: offsets = Ints(f.Value, source, Where("data_offsets")); break;
                default: throw new DataFormatException(source, Where($"unexpected or duplicate field '{f.Name}'"));
            }
        }
        DataFormatException.Check(dtype is not null && shape is not null && offsets is not null, source,
                                  Where("needs dtype, shape and data_offsets"));
        int size = SafeTensor.ElementSize(dtype!) ??
            throw new DataFormatException(source, Where($"unknown dtype '{dtype}'"));
        DataFormatException.Check(offsets!.Length == 2 && offsets[0] <= offsets[1], source,
                                  Where($"data_offsets must be [begin, end] with begin <= end"));
        long count = 1;
        foreach (long d in shape!)
        {
            // Caps the product well below overflow; no real tensor has 2^40 elements.
            DataFormatException.Check(d <= 1L << 40 && count <= (1L << 40) / Math.Max(d, 1), source,
                                      Where($"shape [{string.Join(",", shape)}] is absurdly large"));
            count *= d;
        }
        DataFormatException.Check(count * size == offsets[1] - offsets[0], source,
            Where($"{dtype}[{string.Join(",", shape)}] needs {count * size} bytes but data_offsets span " +
                  $"{offsets[1] - offsets[0]}"));
        DataFormatException.Check(offsets[1] - offsets[0] <= Array.MaxLength, source,
                                  Where("tensor too large for one array"));
        return new Entry(name, dtype!, shape, offsets[0], offsets[1]);
    }

    private static long[] Ints(JsonElement a, string source, string what)
    {
        DataFormatException.Check(a.ValueKind == JsonValueKind.Array, source, $"{what} is not an array");
        DataFormatException.Check(a.GetArrayLength() <= 64, source, $"{what} has more than 64 entries");
        var r = new long[a.GetArrayLength()];
        int i = 0;
        foreach (var x in a.EnumerateArray())
        {
            DataFormatException.Check(x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out r[i]) && r[i] >= 0,
                source, $"{what}[{i}] is not a non-negative integer");
            i++;
        }
        return r;
    }
}
