using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Eval;
using Ddsm.IO;

namespace Ddsm.Tests.Eval;

/// <summary>
/// Metrics on real images through the briefly trained feature net (the real one, not a random
/// projection): FD must rise monotonically as held-out images are blurred (box filter of growing
/// radius) or noised (growing σ); the evaluator, its baseline and the reference cache work end to end.
/// </summary>
public class EvaluatorTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private static ImageDataset Train => EvalTestData.Split.Value.Train;
    private static ImageDataset HeldOut => EvalTestData.Split.Value.HeldOut;
    private static readonly Lazy<ReferenceSet> Reference = new(() => ReferenceSet.Build(EvalTestData.Net, Train));
    private static readonly EvalOptions Fast = new(KidSubsetSize: 200, KidSubsets: 10, Seed: 4);

    private static float[] Images(ImageDataset ds, int n)
    {
        var x = new float[n * ds.ImageSize];
        ds.Batch(Enumerable.Range(0, n).ToArray(), x);
        return x;
    }

    /// <summary>Mean over a (2r+1)² window clipped at the border, per image plane (N·C planes of s×s).</summary>
    internal static float[] BoxBlur(float[] x, int planes, int s, int r)
    {
        if (r == 0) return (float[])x.Clone();
        var y = new float[x.Length];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < s; i++)
                for (int j = 0; j < s; j++)
                {
                    double sum = 0;
                    int cnt = 0;
                    for (int a = Math.Max(0, i - r); a <= Math.Min(s - 1, i + r); a++)
                        for (int b = Math.Max(0, j - r); b <= Math.Min(s - 1, j + r); b++)
                        {
                            sum += x[p * s * s + a * s + b];
                            cnt++;
                        }
                    y[p * s * s + i * s + j] = (float)(sum / cnt);
                }
        return y;
    }

    /// <summary>x + N(0, σ²), clipped to the pixel range [−1, 1] as a sampler's output is.</summary>
    internal static float[] AddNoise(float[] x, float sigma, ulong seed)
    {
        var n = new float[x.Length];
        new Rng(seed).FillNormal(n, sigma);
        for (int i = 0; i < n.Length; i++) n[i] = Math.Clamp(n[i] + x[i], -1f, 1f);
        return n;
    }

    [Test]
    public void FdRisesMonotonicallyWithBlurAndNoise()
    {
        var net = EvalTestData.Net;
        var stats = Reference.Value.Stats;
        const int n = 400;
        var clean = Images(HeldOut, n);
        double Fd(float[] imgs) => FrechetDistance.Compute(stats, net.Extract(imgs, n));
        var blur = new[] { 0, 1, 2, 3 }.Select(r => Fd(BoxBlur(clean, n, 32, r))).ToArray();
        // σ = 0.1 is below what FD resolves at N = 400 with this briefly trained net (measured 2.16 vs
        // 2.37 clean: small noise is averaged away by the 5×5 convs and pools), so the ladder starts at 0.2.
        // Measured: blur 2.37, 3.62, 11.6, 23.6; noise 2.37, 2.92, 7.90, 33.0.
        var noise = new[] { 0f, 0.2f, 0.4f, 0.8f }.Select(s => Fd(AddNoise(clean, s, 9))).ToArray();
        TestContext.Out.WriteLine(
            $"FD vs box-blur radius 0..3: {string.Join(", ", blur.Select(v => v.ToString("F3")))}");
        TestContext.Out.WriteLine(
            $"FD vs clipped noise σ 0, .2, .4, .8: {string.Join(", ", noise.Select(v => v.ToString("F3")))}");
        for (int i = 1; i < blur.Length; i++) Assert.That(blur[i], Is.GreaterThan(blur[i - 1]), $"blur radius {i}");
        for (int i = 1; i < noise.Length; i++) Assert.That(noise[i], Is.GreaterThan(noise[i - 1]), $"noise level {i}");
        // Heavy degradation is far from real: several times the clean held-out score.
        Assert.That(blur[^1], Is.GreaterThan(2 * blur[0]));
        Assert.That(noise[^1], Is.GreaterThan(2 * noise[0]));
    }

    [Test]
    public void EvaluatorScoresDegradedImagesWorseThanTheRealBaseline()
    {
        var ev = new Evaluator(EvalTestData.Net, Reference.Value, Fast);
        const int n = 200;
        var baseline = ev.Baseline(HeldOut, n);
        var noisy = AddNoise(Images(HeldOut, n), 0.5f, 10);
        using var scope = new TensorScope();
        var t = Tensor.FromArray(Cpu, noisy, n, 1, 32, 32);
        var score = ev.Evaluate(t);
        TestContext.Out.WriteLine(score.WithBaseline(baseline));
        Assert.That(score.Count, Is.EqualTo(n));
        Assert.That(score.Fd, Is.GreaterThan(2 * baseline.Fd));
        Assert.That(score.Kid.Mean, Is.GreaterThan(baseline.Kid.Mean + 3 * score.Kid.Std));
        // Noise moves samples off the real manifold's dense part: measured recall 0.47 vs 0.92 for real images.
        Assert.That(score.PrecisionRecall.Recall, Is.LessThan(baseline.PrecisionRecall.Recall - 0.2));
        // Real held-out images are on the real manifold.
        Assert.That(baseline.PrecisionRecall.Precision, Is.GreaterThan(0.5));
        Assert.That(baseline.PrecisionRecall.Recall, Is.GreaterThan(0.5));
        // Host-array and tensor entry points agree; the report line carries both scores.
        Assert.That(ev.Evaluate(noisy, n), Is.EqualTo(score));
        Assert.That(score.WithBaseline(baseline),
                    Does.Contain("baseline")
                        .And.Contain(baseline.Fd.ToString("F3", System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public void StaticBaselineIsTrainVersusTestAtTheSameN()
    {
        // Small reference (train set of 300) to keep it quick: same numbers as building the evaluator by hand.
        var small = Train.Subset(Enumerable.Range(0, 300).ToArray());
        var b = Evaluator.Baseline(EvalTestData.Net, small, HeldOut, 150, Fast);
        var byHand = new Evaluator(EvalTestData.Net, ReferenceSet.Build(EvalTestData.Net, small, seed: Fast.Seed), Fast)
            .Baseline(HeldOut, 150);
        Assert.That(b, Is.EqualTo(byHand));
        Assert.That(b.Count, Is.EqualTo(150));
        Assert.That(b.Fd, Is.GreaterThan(0));
    }

    [Test]
    public void ReferenceCacheReloadsAndRebuildsWhenItsKeyChanges()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-ref-").FullName;
        try
        {
            var path = Path.Combine(dir, "ref.safetensors");
            var net = EvalTestData.Net;
            var a = ReferenceSet.LoadOrBuild(path, net, HeldOut, maxCount: 120, seed: 1);
            var stamp = File.GetLastWriteTimeUtc(path);
            var b = ReferenceSet.LoadOrBuild(path, net, HeldOut, maxCount: 120, seed: 1);
            Assert.That(b.Features.Data, Is.EqualTo(a.Features.Data), "features are float32 values: exact through F32");
            Assert.That(b.Stats.Covariance, Is.EqualTo(a.Stats.Covariance));
            Assert.That(File.GetLastWriteTimeUtc(path), Is.EqualTo(stamp), "second call reads the cache");
            var c = ReferenceSet.LoadOrBuild(path, net, HeldOut, maxCount: 120, seed: 2);
            Assert.That(c.Features.Data, Is.Not.EqualTo(a.Features.Data), "another seed picks other images");
            Assert.That(ReferenceSet.Load(path).Metadata["seed"], Is.EqualTo("2"));

            File.WriteAllBytes(path, File.ReadAllBytes(path)[..^8]);
            Assert.That(() => ReferenceSet.LoadOrBuild(path, net, HeldOut, 120, 2),
                        Throws.TypeOf<DataFormatException>());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void ReferenceFromAnotherNetIsRefused()
    {
        using var other = new FeatureNet(Cpu, 1, 10, 99);
        var ev = new Evaluator(other, Reference.Value, Fast);
        Assert.That(() => ev.Evaluate(new FeatureMatrix(10, FeatureNet.FeatureDim)),
                    Throws.InvalidOperationException.With.Message.Contain("feature net"));
    }
}
