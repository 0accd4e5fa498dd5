using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Ddsm.IO;

/// <summary>
/// One named tensor as stored in a safetensors file: dtype tag, shape and raw little-endian bytes.
/// Conversions to float / long happen on demand so a file round-trips byte for byte.
/// </summary>
public sealed class SafeTensor
{
    public string Name { get; }
    public string DType { get; }
    public long[] Shape { get; }
    public byte[] Data { get; }

    public SafeTensor(string name, string dtype, long[] shape, byte[] data)
    {
        int size = ElementSize(dtype) ?? throw new ArgumentException($"safetensors: unknown dtype {dtype}");
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"safetensors: tensor {name} has negative dim {d}");
            n = checked(n * d);
        }
        if (checked(n * size) != data.Length)
            throw new ArgumentException($"safetensors: tensor {name} {dtype}[{string.Join(",", shape)}] needs " +
                                        $"{n * size} bytes, got {data.Length}");
        (Name, DType, Shape, Data) = (name, dtype, shape, data);
    }

    /// <summary>Bytes per element of each dtype we know, null for unknown ones.</summary>
    public static int? ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => null,
    };

    public static SafeTensor F32(string name, ReadOnlySpan<float> values, params long[] shape)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return new SafeTensor(name, "F32", shape, bytes);
    }

    public static SafeTensor I64(string name, ReadOnlySpan<long> values, params long[] shape)
    {
        var bytes = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8 * i), values[i]);
        return new SafeTensor(name, "I64", shape, bytes);
    }

    /// <summary>The values as float32 (F32 exact; F16, BF16, F64 converted).</summary>
    public float[] ToFloat()
    {
        var d = Data.AsSpan();
        return DType switch
        {
            "F32" =>
                BitConverter.IsLittleEndian ? MemoryMarshal.Cast<byte, float>(d).ToArray()
                    : Map(4, i => BinaryPrimitives.ReadSingleLittleEndian(Data.AsSpan(i))),
            "F16" =>
                Map(2,
                    i => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(Data.AsSpan(i)))),
            "BF16" =>
                Map(2,
                    i => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(Data.AsSpan(i)) << 16)),
            "F64" => Map(8, i => (float)BinaryPrimitives.ReadDoubleLittleEndian(Data.AsSpan(i))),
            _ => throw new DataFormatException($"safetensors tensor '{Name}'", $"is {DType}, not a float type"),
        };
    }

    /// <summary>The values as int64 (integer dtypes only), e.g. step counters and RNG state.</summary>
    internal long[] ToInt64()
    {
        Func<int, long> read = DType switch
        {
            "I64" => i => BinaryPrimitives.ReadInt64LittleEndian(Data.AsSpan(i)),
            "U64" => i => (long)BinaryPrimitives.ReadUInt64LittleEndian(Data.AsSpan(i)),
            "I32" => i => BinaryPrimitives.ReadInt32LittleEndian(Data.AsSpan(i)),
            "U32" => i => BinaryPrimitives.ReadUInt32LittleEndian(Data.AsSpan(i)),
            "I16" => i => BinaryPrimitives.ReadInt16LittleEndian(Data.AsSpan(i)),
            "U16" => i => BinaryPrimitives.ReadUInt16LittleEndian(Data.AsSpan(i)),
            "I8" => i => (sbyte)Data[i],
            "U8" or "BOOL" => i => Data[i],
            _ => throw new DataFormatException($"safetensors tensor '{Name}'", $"is {DType}, not an integer type"),
        };
        int size = ElementSize(DType)!.Value;
        var r = new long[Data.Length / size];
        for (int k = 0; k < r.Length; k++) r[k] = read(k * size);
        return r;
    }

    private float[] Map(int size, Func<int, float> read)
    {
        var r = new float[Data.Length / size];
        for (int k = 0; k < r.Length; k++) r[k] = read(k * size);
        return r;
    }
}
