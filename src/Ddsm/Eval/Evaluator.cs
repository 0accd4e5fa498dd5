namespace Ddsm.Eval;

/// <summary>Settings of an evaluation. KID subsets are capped by the set sizes; <see cref="Seed"/> drives
/// every random choice (KID subsets, reference subsets for precision/recall, baseline images).</summary>
public sealed record EvalOptions(int KidSubsetSize = 1000, int KidSubsets = 100, int K = 3, ulong Seed = 0,
                                 int Batch = 256);

/// <summary>Scores of N generated images against a reference set.</summary>
public sealed record EvalResult(int Count, double Fd, KidResult Kid, PrecisionRecallResult PrecisionRecall)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"N={Count} FD {Fd:F3}  KID {Kid.Mean:G4} ± {Kid.Std:G3}  precision {PrecisionRecall.Precision:F3}  recall " +
        $"{PrecisionRecall.Recall:F3}");

    /// <summary>One report line: the model's scores beside what fresh real images score at the same N.</summary>
    public string WithBaseline(EvalResult baseline) => string.Create(CultureInfo.InvariantCulture,
        $"{this}   [real-vs-real baseline: FD {baseline.Fd:F3}  KID {baseline.Kid.Mean:G4}  precision " +
        $"{baseline.PrecisionRecall.Precision:F3}  recall {baseline.PrecisionRecall.Recall:F3}]");
}

/// <summary>
/// Scores generated images with one feature net against one reference set: FD (all reference
/// statistics vs the generated set's), KID (subsets of equal size from both), and precision/recall
/// (seeded subsets of equal size from both sets, since k-NN radii depend on N).
/// FD is biased upwards at small N, so a score means little without <see cref="Baseline(ImageDataset, int)"/>
/// at the same N beside it.
/// </summary>
public sealed class Evaluator(FeatureNet net, ReferenceSet reference, EvalOptions? options = null)
{
    public FeatureNet Net { get; } = net;
    public ReferenceSet Reference { get; } = reference;
    public EvalOptions Options { get; } = options ?? new EvalOptions();

    public EvalResult Evaluate(FeatureMatrix generated)
    {
        if (Reference.NetFingerprint != "" && Reference.NetFingerprint != Net.Fingerprint())
            throw new InvalidOperationException($"evaluator: reference set was made with feature net " +
                                                $"{Reference.NetFingerprint}, this net is {Net.Fingerprint()}");
        var o = Options;
        double fd = FrechetDistance.Compute(Reference.Stats, generated);
        var kid = Kid.Compute(Reference.Features, generated, o.KidSubsetSize, o.KidSubsets, o.Seed);
        // k-NN radii shrink as a set grows, so both manifolds are estimated from equally many points.
        int m = Math.Min(Reference.Features.Count, generated.Count);
        var pr = PrecisionRecall.Compute(SubsetOf(Reference.Features, m, o.Seed ^ 0x9E37UL),
                                         SubsetOf(generated, m, o.Seed ^ 0x7F4AUL), o.K);
        return new EvalResult(generated.Count, fd, kid, pr);
    }

    private static FeatureMatrix SubsetOf(FeatureMatrix x, int m, ulong seed) =>
        x.Count == m ? x : x.Rows(ReferenceSet.Pick(x.Count, m, seed));

    /// <summary>Generated images (N, C, S, S) in [−1, 1] on any backend.</summary>
    public EvalResult Evaluate(Tensor images) => Evaluate(images.ToArray(), images.Shape[0]);

    /// <summary>Generated images as host floats (N, C, S, S) in [−1, 1].</summary>
    public EvalResult Evaluate(ReadOnlySpan<float> images, int count) =>
        Evaluate(Net.Extract(images, count, Options.Batch));

    /// <summary>What a perfect generator scores at N = <paramref name="n"/>: <paramref name="n"/> seeded random
    /// real images the reference has not seen (a held-out/test split), scored exactly like generated ones.</summary>
    public EvalResult Baseline(ImageDataset testSet, int n)
    {
        if (n > testSet.Count)
            throw new ArgumentException($"baseline: asked for {n} images, {testSet.Name} has {testSet.Count}");
        return Evaluate(
            Net.Extract(testSet, ReferenceSet.Pick(testSet.Count, n, Options.Seed ^ 0xBA5EUL), Options.Batch));
    }

    /// <summary>Train-vs-test baseline: reference = <paramref name="trainSet"/> (up to 10k images), scored
    /// set = <paramref name="n"/> images of <paramref name="testSet"/>.</summary>
    public static EvalResult Baseline(FeatureNet net, ImageDataset trainSet, ImageDataset testSet, int n,
                                      EvalOptions? options = null)
    {
        var o = options ?? new EvalOptions();
        return new Evaluator(net, ReferenceSet.Build(net, trainSet, seed: o.Seed), o).Baseline(testSet, n);
    }
}
