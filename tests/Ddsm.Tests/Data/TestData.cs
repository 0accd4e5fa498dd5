using System.Buffers.Binary;
using System.IO.Compression;
using Ddsm.Engine;

namespace Ddsm.Tests.Data;

/// <summary>Synthetic files in the real formats, from seeded random bytes.</summary>
internal static class TestData
{
    public static byte[] RandomBytes(Rng r, int n)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)r.NextInt(256);
        return b;
    }

    public static byte[] IdxImages(byte[] pixels, int n, int rows, int cols)
    {
        var f = new byte[16 + pixels.Length];
        BinaryPrimitives.WriteUInt32BigEndian(f, 0x00000803);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(4), (uint)n);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(8), (uint)rows);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(12), (uint)cols);
        pixels.CopyTo(f, 16);
        return f;
    }

    public static byte[] IdxLabels(byte[] labels)
    {
        var f = new byte[8 + labels.Length];
        BinaryPrimitives.WriteUInt32BigEndian(f, 0x00000801);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(4), (uint)labels.Length);
        labels.CopyTo(f, 8);
        return f;
    }

    public static byte[] Gzip(byte[] b)
    {
        var ms = new MemoryStream();
        using (var z = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) z.Write(b);
        return ms.ToArray();
    }

    public static byte[] Labels(Rng r, int n, int classes)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)r.NextInt(classes);
        return b;
    }

    public static byte[] CifarBatch(Rng r, int records, out byte[] labels, out byte[] pixels)
    {
        labels = Labels(r, records, 10);
        pixels = RandomBytes(r, records * 3072);
        var f = new byte[records * 3073];
        for (int i = 0; i < records; i++)
        {
            f[i * 3073] = labels[i];
            pixels.AsSpan(i * 3072, 3072).CopyTo(f.AsSpan(i * 3073 + 1));
        }
        return f;
    }
}
