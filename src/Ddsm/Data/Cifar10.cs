namespace Ddsm.Data;

/// <summary>
/// CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin): records of 1 label byte then
/// 3072 pixel bytes, 1024 red, 1024 green, 1024 blue, each 32×32 row-major — already (C, H, W).
/// </summary>
public static class Cifar10
{
    public const int RecordSize = 1 + 3 * 32 * 32;
    public static readonly string[] ClassNames =
    [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ];

    /// <summary>The five training batches (or test_batch.bin) in <paramref name="dir"/>.</summary>
    public static ImageDataset LoadDirectory(string dir, bool train = true)
    {
        var files = train ? Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin")).ToArray()
                          : [Path.Combine(dir, "test_batch.bin")];
        foreach (var f in files)
            if (!File.Exists(f)) throw new FileNotFoundException($"CIFAR-10 batch not found: {f}", f);
        return Load(files.Select(f => (File.ReadAllBytes(f), f)).ToArray(), train ? "cifar10-train" : "cifar10-test");
    }

    public static ImageDataset Load(IReadOnlyList<(byte[] Bytes, string Source)> batches, string name)
    {
        long total = 0;
        foreach (var (b, src) in batches)
        {
            DataFormatException.Check(b.Length > 0 && b.Length % RecordSize == 0, src,
                                      $"length {b.Length} is not a positive multiple of {RecordSize} (1 label + " +
                                      $"3072 pixels)");
            total += b.Length / RecordSize;
        }
        DataFormatException.Check(total * (RecordSize - 1) <= Array.MaxLength, name,
                                  $"{total} images do not fit in one array");
        var px = new byte[total * (RecordSize - 1)];
        var lb = new byte[total];
        long n = 0;
        foreach (var (b, src) in batches)
            for (int r = 0; r < b.Length / RecordSize; r++, n++)
            {
                byte label = b[r * RecordSize];
                DataFormatException.Check(label < 10, src, $"record {r} has label {label}, expected 0..9");
                lb[n] = label;
                b.AsSpan(r * RecordSize + 1, RecordSize - 1).CopyTo(px.AsSpan((int)(n * (RecordSize - 1))));
            }
        return new ImageDataset(name, px, lb, 3, 32, 32, 10, ClassNames);
    }
}
