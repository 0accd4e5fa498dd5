using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.IO;
using Ddsm.Tests.IO;

namespace Ddsm.Tests.Data;

public class IdxCifarTests
{
    [TestCase(false), TestCase(true)]
    public void IdxRoundTripPlainAndGzip(bool gz)
    {
        var r = new Rng(31);
        int n = 37, rows = 28, cols = 28;
        var px = TestData.RandomBytes(r, n * rows * cols);
        var lb = TestData.Labels(r, n, 10);
        byte[] img = TestData.IdxImages(px, n, rows, cols), lab = TestData.IdxLabels(lb);
        if (gz) { img = TestData.Gzip(img); lab = TestData.Gzip(lab); }
        var ds = Idx.Load(img, "train-images-idx3-ubyte", lab, "train-labels-idx1-ubyte", "mnist", expectedRows: 28,
                          expectedCols: 28);
        Assert.That((ds.Count, ds.Channels, ds.Height, ds.Width, ds.ClassCount), Is.EqualTo((n, 1, 28, 28, 10)));
        Assert.That(ds.Pixels, Is.EqualTo(px));
        Assert.That(ds.Labels, Is.EqualTo(lb));
    }

    [Test]
    public void IdxFromFilesOnDisk()
    {
        var r = new Rng(32);
        var px = TestData.RandomBytes(r, 5 * 4 * 3);
        var lb = TestData.Labels(r, 5, 3);
        var dir = Directory.CreateTempSubdirectory("ddsm-idx-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "i.gz"), TestData.Gzip(TestData.IdxImages(px, 5, 4, 3)));
            File.WriteAllBytes(Path.Combine(dir, "l"), TestData.IdxLabels(lb));
            var ds = Datasets.Open($"idx:{dir}/i.gz,{dir}/l", dir);
            Assert.That((ds.Height, ds.Width), Is.EqualTo((4, 3)));
            Assert.That(ds.Pixels, Is.EqualTo(px));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void IdxRejectsMalformedFiles()
    {
        var r = new Rng(33);
        var px = TestData.RandomBytes(r, 10 * 28 * 28);
        var img = TestData.IdxImages(px, 10, 28, 28);
        var lab = TestData.IdxLabels(TestData.Labels(r, 10, 10));
        void Load(byte[] i, byte[] l, int? rows = null) => Idx.Load(i, "imgs", l, "labs", "t", expectedRows: rows);

        Fuzz.Rejects(() => Load(img[..^5], lab), "file has 7835");                      // truncated
        Fuzz.Rejects(() => Load([.. img, 1], lab), "file has 7841");                     // trailing byte
        Fuzz.Rejects(() => Load(img[..10], lab), "too short");
        var magic = (byte[])img.Clone(); magic[2] = 0x0D;                                 // float32 element type
        Fuzz.Rejects(() => Load(magic, lab), "not unsigned byte");
        var magic2 = (byte[])img.Clone(); magic2[0] = 0x1F; magic2[1] = 0x00;
        Fuzz.Rejects(() => Load(magic2, lab), "bad IDX magic");
        Fuzz.Rejects(() => Load(lab, lab), "expected 3");                                 // labels given as images
        Fuzz.Rejects(() => Load(img, TestData.IdxLabels(new byte[9])), "10 images but labs has 9 labels");
        Fuzz.Rejects(() => Load(img, TestData.IdxLabels([0, 1, 2, 3, 4, 5, 6, 7, 8, 10])), "label 10 at index 9");
        Fuzz.Rejects(() => Load(img, lab, rows: 32), "28 rows, expected 32");
        Fuzz.Rejects(() => Load(TestData.IdxImages(px, 10, 28 * 28, 1), lab, rows: 28), "784 rows");
        // A header claiming 2^31 x 2^31 x 2^31: refused before any allocation, plain or inside gzip.
        var huge = (byte[])img.Clone();
        for (int k = 4; k < 16; k++) huge[k] = k % 4 == 0 ? (byte)0x7F : (byte)0xFF;
        long before = GC.GetAllocatedBytesForCurrentThread();
        Fuzz.Rejects(() => Load(huge, lab), "exceed");
        Fuzz.Rejects(() => Load(TestData.Gzip(huge), lab), "exceed");
        // 1 GB claimed, 100 bytes present
        var lie = TestData.IdxImages(new byte[100], 1000, 1000, 1000);
        Fuzz.Rejects(() => Load(TestData.Gzip(lie), lab), "truncated");
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(4 << 20));
        Fuzz.Rejects(() => Load(TestData.Gzip(img)[..40], lab), "IDX");                 // truncated gzip stream
    }

    [Test]
    public void CifarReadsRecordsAsChannelPlanes()
    {
        var r = new Rng(34);
        var b1 = TestData.CifarBatch(r, 7, out var l1, out var p1);
        var b2 = TestData.CifarBatch(r, 4, out var l2, out var p2);
        var ds = Cifar10.Load([(b1, "data_batch_1.bin"), (b2, "data_batch_2.bin")], "cifar");
        Assert.That((ds.Count, ds.Channels, ds.Height, ds.Width, ds.ClassCount), Is.EqualTo((11, 3, 32, 32, 10)));
        Assert.That(ds.Labels, Is.EqualTo(l1.Concat(l2).ToArray()));
        Assert.That(ds.Pixels, Is.EqualTo(p1.Concat(p2).ToArray()));
        // Record 1 of batch 2, green channel, row 3, column 5 is byte 1 + 1024 + 3*32 + 5 of that record.
        var f = new float[3 * 32 * 32];
        ds.Batch([8], f);
        Assert.That(f[1024 + 3 * 32 + 5], Is.EqualTo(b2[3073 + 1 + 1024 + 3 * 32 + 5] / 127.5f - 1f).Within(1e-6));
        Assert.That(ds.ClassNames[3], Is.EqualTo("cat"));
    }

    [Test]
    public void CifarRejectsMalformedBatches()
    {
        var r = new Rng(35);
        var b = TestData.CifarBatch(r, 3, out _, out _);
        Fuzz.Rejects(() => Cifar10.Load([(b[..^1], "data_batch_1.bin")], "c"), "not a positive multiple of 3073");
        Fuzz.Rejects(() => Cifar10.Load([([], "data_batch_1.bin")], "c"), "length 0");
        var bad = (byte[])b.Clone(); bad[3073] = 10;
        Fuzz.Rejects(() => Cifar10.Load([(bad, "data_batch_3.bin")], "c"), "data_batch_3.bin: record 1 has label 10");
        Assert.Throws<FileNotFoundException>(() =>
            Cifar10.LoadDirectory(Path.Combine(Path.GetTempPath(), "no-such-cifar-" + Guid.NewGuid())));
    }

    // ---------------------------------------------------------------- fuzz

    private static (byte[] Img, byte[] Lab) ValidIdx()
    {
        var r = new Rng(36);
        return (TestData.IdxImages(TestData.RandomBytes(r, 6 * 5 * 4), 6, 5, 4),
                TestData.IdxLabels(TestData.Labels(r, 6, 10)));
    }

    private static readonly int[] IdxHot = [0, 2, 3, 4, 8, 12];

    [Test]
    public void FuzzIdxImages()
    {
        var (img, lab) = ValidIdx();
        Fuzz.Run("idx images", img, x => x, x => Idx.Load(x, "imgs", lab, "labs", "f"), 3000, seed: 41, hot: IdxHot);
    }

    [Test]
    public void FuzzIdxLabels()
    {
        var (img, lab) = ValidIdx();
        Fuzz.Run("idx labels", lab, x => x, x => Idx.Load(img, "imgs", x, "labs", "f"), 2000, seed: 42,
                 hot: [0, 2, 3, 4]);
    }

    /// <summary>Mutated payload behind a valid gzip stream (reaches the IDX parser) …</summary>
    [Test]
    public void FuzzIdxInsideGzip()
    {
        var (img, lab) = ValidIdx();
        Fuzz.Run("idx.gz payload", img, TestData.Gzip, x => Idx.Load(x, "imgs.gz", lab, "labs", "f"), 2000, seed: 43,
                 hot: IdxHot);
    }

    /// <summary>… and mutated gzip bytes themselves (reaches the decompressor's error paths).</summary>
    [Test]
    public void FuzzIdxGzipBytes()
    {
        var (img, lab) = ValidIdx();
        Fuzz.Run("idx.gz raw", TestData.Gzip(img), x => x, x => Idx.Load(x, "imgs.gz", lab, "labs", "f"), 2000,
                 seed: 44, hot: [0, 1, 2, 3]);
    }

    [Test]
    public void FuzzCifar()
    {
        var b = TestData.CifarBatch(new Rng(37), 2, out _, out _);
        Fuzz.Run("cifar", b, x => x, x => Cifar10.Load([(x, "data_batch_1.bin")], "f"), 2000, seed: 45, hot: [0, 3073]);
    }
}
