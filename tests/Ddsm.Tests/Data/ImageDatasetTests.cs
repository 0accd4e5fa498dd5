using Ddsm.Data;
using Ddsm.Engine;

namespace Ddsm.Tests.Data;

public class ImageDatasetTests
{
    private static ImageDataset Random(ulong seed, int n, int c, int h, int w, int classes = 10)
    {
        var r = new Rng(seed);
        return new ImageDataset("rand", TestData.RandomBytes(r, n * c * h * w), TestData.Labels(r, n, classes), c, h, w,
                                classes);
    }

    [Test]
    public void BatchMapsBytesToMinusOneToOne()
    {
        var ds = Random(1, 20, 3, 5, 7);
        int[] idx = [19, 0, 7, 7];
        var dst = new float[idx.Length * ds.ImageSize];   // (B, C, H, W)
        ds.Batch(idx, dst);
        for (int b = 0; b < idx.Length; b++)
            for (int k = 0; k < ds.ImageSize; k++)
                Assert.That(dst[b * ds.ImageSize + k],
                            Is.EqualTo(ds.Pixels[idx[b] * ds.ImageSize + k] / 127.5 - 1.0).Within(1e-6));
        Assert.That(ImageDataset.ToModel(0), Is.EqualTo(-1f));
        Assert.That(ImageDataset.ToModel(255), Is.EqualTo(1f));
        var labels = new int[idx.Length];
        ds.BatchLabels(idx, labels);
        Assert.That(labels, Is.EqualTo(idx.Select(i => (int)ds.Labels[i]).ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.Batch([20], new float[ds.ImageSize]));
        Assert.Throws<ArgumentException>(() => ds.Batch([1], new float[ds.ImageSize - 1]));
    }

    [Test]
    public void FlipMirrorsAboutHalfTheImagesDeterministically()
    {
        var ds = Random(2, 300, 2, 4, 6);
        var idx = Enumerable.Range(0, 300).ToArray();
        var plain = new float[300 * ds.ImageSize];
        var a = new float[plain.Length];
        var b = new float[plain.Length];
        ds.Batch(idx, plain);
        ds.Batch(idx, a, new Rng(99));
        ds.Batch(idx, b, new Rng(99));
        Assert.That(a, Is.EqualTo(b), "same seed, same augmentation");
        int flipped = 0;
        for (int i = 0; i < 300; i++)
        {
            bool same = true, mirrored = true;
            for (int row = 0; row < 2 * 4; row++)
                for (int x = 0; x < 6; x++)
                {
                    float v = a[i * ds.ImageSize + row * 6 + x];
                    same &= v == plain[i * ds.ImageSize + row * 6 + x];
                    mirrored &= v == plain[i * ds.ImageSize + row * 6 + 5 - x];
                }
            Assert.That(same || mirrored, Is.True, $"image {i} is neither original nor mirrored");
            if (!same) flipped++;
        }
        Assert.That(flipped, Is.InRange(110, 190), "p = 1/2 over 300 images (±4.6 sigma)");
    }

    [Test]
    public void PadTo32CentresWithBackgroundMinusOne()
    {
        var ds = Random(3, 4, 1, 28, 28);
        var p = ds.PadTo(32);
        Assert.That((p.Height, p.Width, p.Count), Is.EqualTo((32, 32, 4)));
        var f = new float[32 * 32];
        p.Batch([2], f);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                bool inside = y is >= 2 and < 30 && x is >= 2 and < 30;
                float want = inside ? ImageDataset.ToModel(ds.Pixels[2 * 784 + (y - 2) * 28 + x - 2]) : -1f;
                Assert.That(f[y * 32 + x], Is.EqualTo(want), $"({y},{x})");
            }
        Assert.That(ds.ToResolution(32).Pixels, Is.EqualTo(p.Pixels), "28 -> 32 pads rather than resamples");
        Assert.Throws<ArgumentException>(() => ds.PadTo(20));
    }

    [Test]
    public void NearestResizeReplicatesPixels()
    {
        var ds = Random(4, 2, 3, 5, 4);
        var up = ds.Resize(10, 12, ResizeMode.Nearest);
        for (int p = 0; p < 6; p++)
            for (int y = 0; y < 10; y++)
                for (int x = 0; x < 12; x++)
                    Assert.That(up.Pixels[p * 120 + y * 12 + x], Is.EqualTo(ds.Pixels[p * 20 + (y / 2) * 4 + x / 3]));
    }

    [Test]
    public void BilinearResizeMatchesAHalfPixelReference()
    {
        var ds = Random(5, 3, 2, 7, 9);
        foreach (var (H, W) in new[] { (14, 18), (4, 5), (32, 32), (7, 3) })
        {
            var got = ds.Resize(H, W, ResizeMode.Bilinear);
            for (int p = 0; p < ds.Count * ds.Channels; p++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                    {
                        // align_corners=false in double: source coordinate (i + 0.5)·scale − 0.5, clamped to the edge.
                        double sy = Math.Clamp((y + 0.5) * 7 / H - 0.5, 0, 6),
                               sx = Math.Clamp((x + 0.5) * 9 / W - 0.5, 0, 8);
                        int y0 = (int)sy, x0 = (int)sx, y1 = Math.Min(y0 + 1, 6), x1 = Math.Min(x0 + 1, 8);
                        double dy = sy - y0, dx = sx - x0;
                        double V(int yy, int xx) => ds.Pixels[p * 63 + yy * 9 + xx];
                        double want = (1 - dy) * ((1 - dx) * V(y0, x0) + dx * V(y0, x1)) + dy *
                            ((1 - dx) * V(y1, x0) + dx * V(y1, x1));
                        Assert.That((double)got.Pixels[p * H * W + y * W + x], Is.EqualTo(want).Within(0.5 + 1e-3),
                                    $"{H}x{W} plane {p} ({y},{x})");
                    }
        }
        // Halving averages 2x2 blocks exactly.
        var flat = new ImageDataset("b", [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160], [0],
                                    1, 4, 4, 1);
        Assert.That(flat.Resize(2, 2, ResizeMode.Bilinear).Pixels, Is.EqualTo(new byte[] { 35, 55, 115, 135 }));
    }

    [Test]
    public void StratifiedSubsetIsBalancedDistinctAndReproducible()
    {
        var ds = Random(6, 600, 1, 3, 3, classes: 4);
        var a = ds.Stratified(25, seed: 8);
        var b = ds.Stratified(25, seed: 8);
        var c = ds.Stratified(25, seed: 9);
        Assert.That(a.ClassCounts(), Is.EqualTo(new[] { 25, 25, 25, 25 }));
        Assert.That(a.Pixels, Is.EqualTo(b.Pixels));
        Assert.That(a.Pixels, Is.Not.EqualTo(c.Pixels));
        // Every picked image is a distinct image of the source with its own label.
        var source =
            Enumerable.Range(0, ds.Count).ToDictionary(i => Convert.ToHexString(ds.Image(i)) + ds.Labels[i], i => i);
        var picked =
            Enumerable.Range(0, a.Count).Select(i => source[Convert.ToHexString(a.Image(i)) + a.Labels[i]]).ToArray();
        Assert.That(picked.Distinct().Count(), Is.EqualTo(100));
        Assert.That(picked.Take(20).Select(i => (int)ds.Labels[i]).Distinct().Count(), Is.GreaterThan(1),
                    "classes are shuffled together");
        Assert.Throws<ArgumentException>(() => ds.Stratified(1000, 1));
    }

    [Test]
    public void ConstructorValidatesShapesAndLabels()
    {
        Assert.Throws<ArgumentException>(() => new ImageDataset("x", new byte[10], new byte[2], 1, 2, 2, 3));
        Assert.Throws<ArgumentException>(() => new ImageDataset("x", new byte[8], [0, 3], 1, 2, 2, 3));
        // unlabelled must be all 0
        Assert.Throws<ArgumentException>(() => new ImageDataset("x", new byte[8], [0, 1], 1, 2, 2, 0));
    }
}
