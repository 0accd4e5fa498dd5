using System.Buffers.Binary;

namespace Ddsm.IO;

/// <summary>A pickled tuple (immutable sequence).</summary>
public sealed record PickleTuple(object?[] Items);

/// <summary>A pickled dict or OrderedDict, entries in file order (a state dict's order).</summary>
public sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = new();
}

/// <summary>Element types of PyTorch storages, by the storage class a checkpoint names.</summary>
public enum TorchDType { Float32, Float64, Float16, BFloat16, Int64, Int32, Int16, Int8, UInt8, Bool }

/// <summary>One storage of a checkpoint: the archive entry data/KEY, holding <see cref="Numel"/> elements.</summary>
public sealed record TorchStorage(string Key, TorchDType DType, long Numel)
{
    public int ElementSize => DType switch
    {
        TorchDType.Float64 or TorchDType.Int64 => 8,
        TorchDType.Float32 or TorchDType.Int32 => 4,
        TorchDType.Float16 or TorchDType.BFloat16 or TorchDType.Int16 => 2,
        _ => 1,
    };
}

/// <summary>A tensor as torch pickles it: a strided view (offset, shape, strides in elements) of a storage.</summary>
public sealed record TorchTensorRef(TorchStorage Storage, long Offset, long[] Shape, long[] Stride);

/// <summary>
/// A restricted unpickler for PyTorch checkpoints (data.pkl of torch.save's zip format). Python's pickle
/// runs whatever callable a file names; this one knows only the opcodes of protocols 2–4 that plain data
/// uses, and accepts only the globals a tensor state dict needs: torch._utils._rebuild_tensor_v2 (and
/// _rebuild_parameter), collections.OrderedDict, and the torch.*Storage classes inside a storage's
/// persistent id. Any other global (os.system, builtins.eval, …), object construction (NEWOBJ, INST, OBJ)
/// or out-of-band buffer is refused with one line naming it, before anything could run. Every read is
/// bounds-checked, so a truncated or mutated pickle is a <see cref="DataFormatException"/>, never a crash;
/// the work and memory are linear in the input.
/// </summary>
public static class TorchPickle
{
    private static readonly Dictionary<string, TorchDType> StorageTypes = new()
    {
        ["FloatStorage"] = TorchDType.Float32, ["DoubleStorage"] = TorchDType.Float64,
        ["HalfStorage"] = TorchDType.Float16, ["BFloat16Storage"] = TorchDType.BFloat16,
        ["LongStorage"] = TorchDType.Int64, ["IntStorage"] = TorchDType.Int32, ["ShortStorage"] = TorchDType.Int16,
        ["CharStorage"] = TorchDType.Int8, ["ByteStorage"] = TorchDType.UInt8, ["BoolStorage"] = TorchDType.Bool,
    };

    private const string Allowed =
        "a tensor state dict needs only torch._utils._rebuild_tensor_v2, collections.OrderedDict and torch.*Storage";

    /// <summary>A global the file named that we accept (a callable for REDUCE or a storage type).</summary>
    private sealed record Global(string Module, string Name)
    {
        public string FullName => $"{Module}.{Name}";
    }

    private sealed class Mark
    {
        public static readonly Mark Instance = new();
    }

    /// <summary>Unpickles <paramref name="data"/>; <paramref name="source"/> names it in errors.</summary>
    public static object? Load(ReadOnlyMemory<byte> data, string source)
    {
        var r = new Reader(data, source);
        var stack = new List<object?>();
        var memo = new Dictionary<long, object?>();
        var storages = new Dictionary<string, TorchStorage>();
        while (true)
        {
            int at = r.Pos;
            byte op = r.U8();
            string Where() => $"pickle opcode 0x{op:x2} at byte {at}";
            object? Pop()
            {
                if (stack.Count == 0 || stack[^1] is Mark) throw r.Error($"{Where()}: stack underflow");
                var v = stack[^1];
                stack.RemoveAt(stack.Count - 1);
                return v;
            }
            object? Top() =>
                stack.Count == 0 || stack[^1] is Mark ? throw r.Error($"{Where()}: stack underflow") : stack[^1];
            List<object?> PopMark()
            {
                int m = stack.FindLastIndex(v => v is Mark);
                if (m < 0) throw r.Error($"{Where()}: no MARK on the stack");
                var items = stack.GetRange(m + 1, stack.Count - m - 1);
                stack.RemoveRange(m, stack.Count - m);
                return items;
            }
            void Memo(long key) => memo[key] = Top();
            object? Get(long key) =>
                memo.TryGetValue(key, out var v) ? v : throw r.Error($"{Where()}: memo key {key} was never stored");
            T As<T>(object? v, string what) where T : class =>
                v as T ?? throw r.Error($"{Where()}: {what} applied to {Describe(v)}");

            switch (op)
            {
                case 0x80: // PROTO
                    int proto = r.U8();
                    if (proto > 5) throw r.Error($"pickle protocol {proto} is not supported (2–5)");
                    break;
                case 0x95: r.Bytes(8); break;                          // FRAME: a length hint only
                case (byte)'.': // STOP
                    var result = Pop();
                    if (stack.Count != 0) throw r.Error($"{Where()}: {stack.Count} values left on the stack at STOP");
                    return result;
                case (byte)'(': stack.Add(Mark.Instance); break;       // MARK
                case (byte)'0': Pop(); break;                           // POP
                case (byte)'1': PopMark(); break;                       // POP_MARK
                case (byte)'2': stack.Add(Top()); break;                // DUP
                case (byte)'N': stack.Add(null); break;
                case 0x88: stack.Add(true); break;                      // NEWTRUE
                case 0x89: stack.Add(false); break;                     // NEWFALSE
                case (byte)'K': stack.Add((long)r.U8()); break;         // BININT1
                case (byte)'M': stack.Add((long)r.U16()); break;        // BININT2
                case (byte)'J': stack.Add((long)r.I32()); break;        // BININT
                case 0x8a: stack.Add(r.Long(r.U8(), Where)); break;     // LONG1
                case 0x8b: stack.Add(r.Long(r.I32(), Where)); break;    // LONG4
                case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(r.Bytes(8))); break; // BINFLOAT
                case (byte)'X': stack.Add(r.Utf8(r.U32(), Where)); break;                         // BINUNICODE
                case 0x8c: stack.Add(r.Utf8(r.U8(), Where)); break;                               // SHORT_BINUNICODE
                case 0x8d: stack.Add(r.Utf8(r.U64(), Where)); break;                              // BINUNICODE8
                case (byte)'T': stack.Add(r.Latin1(r.U32())); break;                               // BINSTRING
                case (byte)'U': stack.Add(r.Latin1(r.U8())); break;                                // SHORT_BINSTRING
                case (byte)'B': stack.Add(r.Bytes(r.U32()).ToArray()); break;                      // BINBYTES
                case (byte)'C': stack.Add(r.Bytes(r.U8()).ToArray()); break;                       // SHORT_BINBYTES
                case 0x8e: stack.Add(r.Bytes(r.U64()).ToArray()); break;                           // BINBYTES8
                case (byte)'}': stack.Add(new PickleDict()); break;     // EMPTY_DICT
                case (byte)']': stack.Add(new List<object?>()); break;  // EMPTY_LIST
                case (byte)')': stack.Add(new PickleTuple([])); break;  // EMPTY_TUPLE
                case (byte)'t': stack.Add(new PickleTuple(PopMark().ToArray())); break;           // TUPLE
                case 0x85: stack.Add(new PickleTuple([Pop()])); break;                             // TUPLE1
                case 0x86: // TUPLE2
                {
                    var b = Pop(); var a = Pop();
                    stack.Add(new PickleTuple([a, b]));
                    break;
                }
                case 0x87: // TUPLE3
                {
                    var c = Pop(); var b = Pop(); var a = Pop();
                    stack.Add(new PickleTuple([a, b, c]));
                    break;
                }
                case (byte)'d': stack.Add(DictOf(PopMark(), r, Where)); break;                    // DICT
                case (byte)'l': stack.Add(PopMark()); break;                                       // LIST
                case (byte)'s': // SETITEM
                {
                    var v = Pop(); var k = Pop();
                    As<PickleDict>(Top(), "SETITEM").Items.Add(new(k, v));
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = DictOf(PopMark(), r, Where).Items;
                    As<PickleDict>(Top(), "SETITEMS").Items.AddRange(items);
                    break;
                }
                case (byte)'a': // APPEND
                {
                    var v = Pop();
                    As<List<object?>>(Top(), "APPEND").Add(v);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopMark();
                    As<List<object?>>(Top(), "APPENDS").AddRange(items);
                    break;
                }
                case (byte)'q': Memo(r.U8()); break;                    // BINPUT
                case (byte)'r': Memo(r.U32()); break;                   // LONG_BINPUT
                case 0x94: Memo(memo.Count); break;                     // MEMOIZE
                case (byte)'h': stack.Add(Get(r.U8())); break;          // BINGET
                case (byte)'j': stack.Add(Get(r.U32())); break;         // LONG_BINGET
                case (byte)'c': stack.Add(Resolve(r.Line(Where), r.Line(Where), r)); break;       // GLOBAL
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop(); var module = Pop();
                    stack.Add(Resolve(module as string, name as string, r));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = As<PickleTuple>(Pop(), "REDUCE arguments"); var f = Pop();
                    stack.Add(Call(f, args.Items, r, Where));
                    break;
                }
                case (byte)'Q': stack.Add(PersistentLoad(Pop(), storages, r, Where)); break;     // BINPERSID
                case (byte)'b': // BUILD: instance state; only an OrderedDict's _metadata or a tensor's hooks come here
                {
                    var state = Pop();
                    var target = Top();
                    if (target is not (PickleDict or TorchTensorRef)
                        || state is not (PickleDict or PickleTuple or null))
                        throw r.Error($"{Where()}: BUILD of {Describe(target)} with {Describe(state)} " +
                                      "is not part of a state dict");
                    break;
                }
                case (byte)'i' or (byte)'o' or 0x81 or 0x92:
                    throw r.Error($"{Where()}: object construction (INST/OBJ/NEWOBJ) is refused: {Allowed}");
                case 0x96 or 0x97 or 0x98:
                    throw r.Error($"{Where()}: out-of-band buffers (protocol 5) are not part of a state dict");
                default:
                    throw r.Error($"{Where()}: unsupported opcode");
            }
        }
    }

    private static PickleDict DictOf(List<object?> items, Reader r, Func<string> where)
    {
        if (items.Count % 2 != 0) throw r.Error($"{where()}: odd number of items for a dict");
        var d = new PickleDict();
        for (int i = 0; i < items.Count; i += 2) d.Items.Add(new(items[i], items[i + 1]));
        return d;
    }

    private static Global Resolve(string? module, string? name, Reader r)
    {
        if (module is null || name is null) throw r.Error("STACK_GLOBAL: module and name must be strings");
        var g = new Global(module, name);
        bool ok = g.FullName is "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_parameter"
                                 or "collections.OrderedDict"
                  || (module == "torch" && StorageTypes.ContainsKey(name));
        // Refused here, when named, not when called: nothing the file names outside the list is ever touched.
        if (!ok) throw r.Error($"refused global '{g.FullName}': {Allowed}");
        return g;
    }

    private static object? Call(object? f, object?[] args, Reader r, Func<string> where)
    {
        if (f is not Global g) throw r.Error($"{where()}: REDUCE of {Describe(f)}, which is not a callable");
        switch (g.FullName)
        {
            case "collections.OrderedDict":
                if (args.Length == 0) return new PickleDict();
                throw r.Error($"{where()}: OrderedDict called with {args.Length} arguments");
            case "torch._utils._rebuild_parameter":
                if (args.Length >= 1 && args[0] is TorchTensorRef p) return p;
                throw r.Error($"{where()}: _rebuild_parameter without a tensor");
            case "torch._utils._rebuild_tensor_v2":
                return RebuildTensor(args, r, where);
            default:
                throw r.Error($"{where()}: {g.FullName} is a storage type, accepted only in a storage's persistent id");
        }
    }

    /// <summary>_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]).</summary>
    private static TorchTensorRef RebuildTensor(object?[] a, Reader r, Func<string> where)
    {
        if (a.Length is < 6 or > 7 || a[0] is not TorchStorage s || a[1] is not long offset
            || a[2] is not PickleTuple size || a[3] is not PickleTuple stride || a[4] is not bool)
            throw r.Error($"{where()}: _rebuild_tensor_v2 arguments are not " +
                          "(storage, offset, size, stride, requires_grad, hooks)");
        if (a[5] is PickleDict { Items.Count: > 0 })
            throw r.Error($"{where()}: a tensor with backward hooks is not part of a state dict");
        long[] Longs(PickleTuple t, string what) => t.Items.Select(v => v is long l && l >= 0 ? l
            : throw r.Error($"{where()}: tensor {what} {Describe(v)} is not a non-negative integer")).ToArray();
        var shape = Longs(size, "size");
        var strides = Longs(stride, "stride");
        if (shape.Length != strides.Length)
            throw r.Error($"{where()}: tensor has {shape.Length} sizes and {strides.Length} strides");
        if (offset < 0) throw r.Error($"{where()}: negative storage offset {offset}");
        return new TorchTensorRef(s, offset, shape, strides);
    }

    /// <summary>('storage', torch.XStorage, key, location, numel): one storage per key, shared by its views.</summary>
    private static TorchStorage PersistentLoad(object? pid, Dictionary<string, TorchStorage> storages, Reader r,
        Func<string> where)
    {
        if (pid is not PickleTuple { Items: ["storage", Global g, string key, string, long numel] }
            || g.Module != "torch" || !StorageTypes.TryGetValue(g.Name, out var dtype))
            throw r.Error($"{where()}: persistent id {Describe(pid)} is not " +
                          "('storage', torch.XStorage, key, location, numel)");
        if (numel < 0) throw r.Error($"{where()}: storage '{key}' has {numel} elements");
        if (storages.TryGetValue(key, out var seen))
        {
            if (seen.DType != dtype || seen.Numel != numel)
                throw r.Error($"{where()}: storage '{key}' is named twice with different types");
            return seen;
        }
        return storages[key] = new TorchStorage(key, dtype, numel);
    }

    /// <summary>A short description of a value for error messages (never its whole contents).</summary>
    internal static string Describe(object? v) => v switch
    {
        null => "None",
        string s => $"'{(s.Length > 40 ? s[..40] + "…" : s)}'",
        long or double or bool => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)!,
        PickleTuple t => $"a tuple of {t.Items.Length}",
        PickleDict d => $"a dict of {d.Items.Count}",
        List<object?> l => $"a list of {l.Count}",
        Global g => g.FullName,
        TorchTensorRef t => $"a tensor ({string.Join(", ", t.Shape)})",
        TorchStorage s => $"storage '{s.Key}'",
        byte[] b => $"{b.Length} bytes",
        _ => v.GetType().Name,
    };

    /// <summary>Bounds-checked little-endian reads over the pickle bytes.</summary>
    private sealed class Reader(ReadOnlyMemory<byte> data, string source)
    {
        private readonly ReadOnlyMemory<byte> _d = data;
        public int Pos;

        public DataFormatException Error(string problem) => new(source, problem);

        public ReadOnlySpan<byte> Bytes(long n)
        {
            if (n < 0 || n > _d.Length - Pos)
                throw Error($"pickle truncated: {n} bytes wanted at byte {Pos} of {_d.Length}");
            var s = _d.Span.Slice(Pos, (int)n);
            Pos += (int)n;
            return s;
        }

        public byte U8() => Bytes(1)[0];
        public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2));
        public int I32() => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4));
        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));
        public long U64()
        {
            ulong v = BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));
            return v > int.MaxValue ? throw Error($"pickle length {v} at byte {Pos - 8} is larger than the file")
                                    : (long)v;
        }

        /// <summary>A two's-complement little-endian integer of n bytes (LONG1/LONG4), at most 64 bits.</summary>
        public long Long(long n, Func<string> where)
        {
            if (n < 0 || n > 8) throw Error($"{where()}: integer of {n} bytes (at most 8 are supported)");
            var b = Bytes(n);
            if (n == 0) return 0;
            long v = (sbyte)b[(int)n - 1];
            for (int i = (int)n - 2; i >= 0; i--) v = (v << 8) | b[i];
            return v;
        }

        public string Utf8(long n, Func<string> where)
        {
            try { return new UTF8Encoding(false, true).GetString(Bytes(n)); }
            catch (DecoderFallbackException) { throw Error($"{where()}: string is not valid UTF-8"); }
        }

        public string Latin1(long n) => Encoding.Latin1.GetString(Bytes(n));

        /// <summary>A newline-terminated ASCII line (the GLOBAL opcode's module and name).</summary>
        public string Line(Func<string> where)
        {
            var rest = _d.Span[Pos..];
            int nl = rest[..Math.Min(rest.Length, 257)].IndexOf((byte)'\n');
            if (nl < 0) throw Error($"{where()}: GLOBAL name not terminated within 256 bytes");
            var s = Encoding.ASCII.GetString(rest[..nl]);
            Pos += nl + 1;
            return s;
        }
    }
}
