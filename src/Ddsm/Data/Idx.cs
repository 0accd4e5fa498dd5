namespace Ddsm.Data;

/// <summary>
/// MNIST / Fashion-MNIST IDX files (yann.lecun.com format): magic 00 00 08 NDIMS (08 = unsigned byte),
/// NDIMS big-endian u32 dimensions, then the bytes. Images are idx3 (N, rows, cols), labels idx1 (N).
/// Plain or gzip (detected by the 1F 8B magic, not the file name).
/// </summary>
public static class Idx
{
    /// <summary>Largest payload we accept (the real train-images file is 47 MB).</summary>
    private const long MaxPayload = 1L << 30;

    public static ImageDataset Load(string imagesPath, string labelsPath, string name, int classCount = 10,
                                    int? expectedRows = null, int? expectedCols = null)
        => Load(File.ReadAllBytes(imagesPath), imagesPath, File.ReadAllBytes(labelsPath), labelsPath, name, classCount,
                expectedRows, expectedCols);

    public static ImageDataset Load(byte[] images, string imagesSource, byte[] labels, string labelsSource, string name,
        int classCount = 10, int? expectedRows = null, int? expectedCols = null)
    {
        var (idims, ipx) = Read(images, imagesSource, 3);
        var (ldims, lb) = Read(labels, labelsSource, 1);
        DataFormatException.Check(idims[0] == ldims[0], imagesSource,
                                  $"{idims[0]} images but {labelsSource} has {ldims[0]} labels");
        DataFormatException.Check(expectedRows is null || idims[1] == expectedRows, imagesSource,
                                  $"images are {idims[1]} rows, expected {expectedRows}");
        DataFormatException.Check(expectedCols is null || idims[2] == expectedCols, imagesSource,
                                  $"images are {idims[2]} columns, expected {expectedCols}");
        for (int i = 0; i < lb.Length; i++)
            DataFormatException.Check(lb[i] < classCount, labelsSource,
                                      $"label {lb[i]} at index {i} is not below {classCount}");
        return new ImageDataset(name, ipx, lb, 1, idims[1], idims[2], classCount);
    }

    /// <summary>Reads one IDX file of unsigned bytes with <paramref name="rank"/> dimensions.</summary>
    public static (int[] Dims, byte[] Data) Read(byte[] file, string source, int rank)
    {
        if (BoundedRead.IsGzip(file))
        {
            // The header sits inside the compressed stream: decompress it first, then the payload with
            // a buffer that grows only as real bytes arrive (a lying header cannot make us allocate).
            using var z = new System.IO.Compression.GZipStream(new MemoryStream(file, writable: false),
                                                               System.IO.Compression.CompressionMode.Decompress);
            var head = new byte[4 + 4 * rank];
            int got = 0;
            while (got < head.Length)
            {
                int n = BoundedRead.Guarded(() => z.Read(head, got, head.Length - got), source, "gzip");
                DataFormatException.Check(n > 0, source, $"truncated IDX header ({got} of {head.Length} bytes)");
                got += n;
            }
            var (dims, payload) = ParseHeader(head, source, rank);
            return (dims, BoundedRead.Exactly(z, payload, source, "IDX data"));
        }
        DataFormatException.Check(file.Length >= 4 + 4 * rank, source,
                                  $"file of {file.Length} bytes is too short for an IDX header");
        var (d, size) = ParseHeader(file, source, rank);
        long body = file.Length - (4 + 4 * rank);
        DataFormatException.Check(body == size, source,
                                  $"header says {size} data bytes ({string.Join("x", d)}) but the file has {body}");
        return (d, file.AsSpan(4 + 4 * rank).ToArray());
    }

    private static (int[] Dims, long Payload) ParseHeader(ReadOnlySpan<byte> h, string source, int rank)
    {
        DataFormatException.Check(h[0] == 0 && h[1] == 0, source,
                                  $"bad IDX magic {h[0]:X2} {h[1]:X2} {h[2]:X2} {h[3]:X2}");
        DataFormatException.Check(h[2] == 0x08, source, $"IDX element type 0x{h[2]:X2} is not unsigned byte (0x08)");
        DataFormatException.Check(h[3] == rank, source, $"IDX has {h[3]} dimensions, expected {rank}");
        var dims = new int[rank];
        long size = 1;
        for (int i = 0; i < rank; i++)
        {
            uint d = BoundedRead.U32BE(h, 4 + 4 * i);
            DataFormatException.Check(d is > 0 and <= int.MaxValue, source, $"IDX dimension {i} is {d}");
            dims[i] = (int)d;
            size *= d;
            DataFormatException.Check(size <= MaxPayload, source,
                                      $"IDX dimensions {string.Join("x", dims[..(i + 1)])} exceed {MaxPayload} bytes");
        }
        return (dims, size);
    }
}
