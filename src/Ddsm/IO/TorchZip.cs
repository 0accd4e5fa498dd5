using System.Buffers.Binary;
using System.IO.Compression;

namespace Ddsm.IO;

/// <summary>
/// A checkpoint in torch.save's zip format (PyTorch ≥ 1.6): PREFIX/data.pkl, the pickled object, and
/// PREFIX/data/KEY, one raw little-endian storage per key. The pickle goes through the restricted
/// <see cref="TorchPickle"/>; storages are read only when a tensor is asked for, each once, and every
/// size the archive or the pickle claims is checked against the bytes really there.
/// </summary>
public sealed class TorchZip : IDisposable
{
    /// <summary>A pickle larger than this is not a state dict (35.7M parameters pickle to ~40 KB).</summary>
    public const long MaxPickleBytes = 64 << 20;

    private readonly ZipArchive _zip;
    private readonly string _prefix, _source;
    private readonly Dictionary<string, byte[]> _storages = new();

    /// <summary>The unpickled object: a <see cref="PickleDict"/> for state dicts and training checkpoints.</summary>
    public object? Root { get; }

    /// <summary>True when the bytes start like a zip archive (local file header "PK\x03\x04").</summary>
    public static bool IsZip(ReadOnlySpan<byte> head) =>
        head.Length >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;

    public static TorchZip Open(string path) => new(File.OpenRead(path), path);

    public TorchZip(Stream stream, string source)
    {
        _source = source;
        try
        {
            _zip = BoundedRead.Guarded(() => new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false), source,
                "zip");
            // The central directory is parsed lazily, on first use of Entries: corrupt ones throw there.
            var entries = BoundedRead.Guarded(() => _zip.Entries.ToList(), source, "zip central directory");
            var pkl = entries.Where(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal)
                                         && e.FullName.Count(c => c == '/') == 1).ToList();
            DataFormatException.Check(pkl.Count == 1, source, pkl.Count == 0
                ? "no PREFIX/data.pkl in the archive: not a torch.save checkpoint" : "several data.pkl in the archive");
            _prefix = pkl[0].FullName[..^"data.pkl".Length];
            var order = entries.FirstOrDefault(e => e.FullName == _prefix + "byteorder");
            if (order is not null)
            {
                var o = System.Text.Encoding.ASCII.GetString(ReadEntry(order, 16, "byteorder")).Trim();
                DataFormatException.Check(o == "little", source,
                    $"byte order '{o}': only little-endian checkpoints are supported");
            }
            Root = TorchPickle.Load(ReadEntry(pkl[0], MaxPickleBytes, "data.pkl"), source + ":data.pkl");
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private byte[] ReadEntry(ZipArchiveEntry e, long cap, string what)
    {
        DataFormatException.Check(e.Length >= 0 && e.Length <= cap, _source,
            $"{what}: {e.Length} bytes (at most {cap})");
        using var s = BoundedRead.Guarded(() => e.Open(), _source, what);
        return BoundedRead.Exactly(s, e.Length, _source, what);
    }

    private byte[] Storage(TorchStorage st)
    {
        if (_storages.TryGetValue(st.Key, out var b)) return b;
        long bytes = st.Numel > Array.MaxLength / st.ElementSize ? -1 : st.Numel * st.ElementSize;
        DataFormatException.Check(bytes >= 0, _source, $"storage '{st.Key}': {st.Numel} elements is too large");
        var e = _zip.GetEntry(_prefix + "data/" + st.Key)
                ?? throw new DataFormatException(_source, $"storage '{st.Key}' is named by the pickle, not in the zip");
        DataFormatException.Check(e.Length == bytes, _source,
            $"storage '{st.Key}': {e.Length} bytes, the pickle says {st.Numel} × {st.ElementSize}");
        return _storages[st.Key] = ReadEntry(e, bytes, $"storage '{st.Key}'");
    }

    /// <summary>Element count of a tensor, after checking its view stays inside its storage.</summary>
    private long CheckView(TorchTensorRef t, string name)
    {
        long n = 1, last = t.Offset;
        string shape = string.Join(", ", t.Shape);
        foreach (var (size, stride) in t.Shape.Zip(t.Stride))
        {
            if (size == 0) return 0;
            bool fits = size <= Array.MaxLength / n && (size - 1) <= (long.MaxValue - last) / Math.Max(1, stride);
            DataFormatException.Check(fits, _source, $"tensor '{name}': shape ({shape}) is too large");
            n *= size;
            last += (size - 1) * stride;
        }
        DataFormatException.Check(last < t.Storage.Numel, _source,
            $"tensor '{name}': view (offset {t.Offset}, shape ({shape}), " +
            $"strides ({string.Join(", ", t.Stride)})) runs past its storage of {t.Storage.Numel} elements");
        return n;
    }

    /// <summary>The tensor's elements in row-major order, as float32 (floating-point storages only).</summary>
    public float[] ReadFloats(TorchTensorRef t, string name)
    {
        var dt = t.Storage.DType;
        DataFormatException.Check(IsFloat(dt), _source, $"tensor '{name}' is {dt}, not floating point");
        var data = Storage(t.Storage);
        var outv = new float[CheckView(t, name)];
        if (dt == TorchDType.Float32 && IsRowMajor(t) && BitConverter.IsLittleEndian)
        {
            // The common case, a contiguous float32 tensor: one block copy.
            var bytes = data.AsSpan((int)(t.Offset * 4), outv.Length * 4);
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).CopyTo(outv);
            return outv;
        }
        Gather(t, outv.Length, (i, e) => outv[i] = dt switch
        {
            TorchDType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan((int)(e * 4))),
            TorchDType.Float64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(data.AsSpan((int)(e * 8))),
            TorchDType.Float16 => (float)BinaryPrimitives.ReadHalfLittleEndian(data.AsSpan((int)(e * 2))),
            _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan((int)(e * 2)))
                                                << 16),
        });
        return outv;
    }

    /// <summary>The tensor's elements in row-major order, as int64 (integer and bool storages only).</summary>
    internal long[] ReadLongs(TorchTensorRef t, string name)
    {
        var dt = t.Storage.DType;
        DataFormatException.Check(!IsFloat(dt), _source, $"tensor '{name}' is {dt}, not an integer type");
        var data = Storage(t.Storage);
        var outv = new long[CheckView(t, name)];
        Gather(t, outv.Length, (i, e) => outv[i] = dt switch
        {
            TorchDType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan((int)(e * 8))),
            TorchDType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan((int)(e * 4))),
            TorchDType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(data.AsSpan((int)(e * 2))),
            TorchDType.Int8 => (sbyte)data[e],
            _ => data[e],
        });
        return outv;
    }

    private static bool IsFloat(TorchDType dt) =>
        dt is TorchDType.Float32 or TorchDType.Float64 or TorchDType.Float16 or TorchDType.BFloat16;

    private static bool IsRowMajor(TorchTensorRef t)
    {
        long expect = 1;
        for (int d = t.Shape.Length - 1; d >= 0; d--)
        {
            if (t.Shape[d] != 1 && t.Stride[d] != expect) return false;
            expect *= t.Shape[d];
        }
        return true;
    }

    /// <summary>Calls <paramref name="set"/>(row-major index, storage element) for every element of the view.</summary>
    private static void Gather(TorchTensorRef t, long n, Action<long, long> set)
    {
        int rank = t.Shape.Length;
        var idx = new long[rank];
        long e = t.Offset;
        for (long i = 0; i < n; i++)
        {
            set(i, e);
            for (int d = rank - 1; d >= 0; d--)
            {
                e += t.Stride[d];
                if (++idx[d] < t.Shape[d]) break;
                e -= t.Stride[d] * t.Shape[d];
                idx[d] = 0;
            }
        }
    }

    public void Dispose() => _zip.Dispose();
}
