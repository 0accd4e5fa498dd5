using Ddsm.Engine.Nn;

namespace Ddsm.Eval;

/// <summary>What a feature net was trained on and how well it classifies (stored in its file).</summary>
/// <param name="Dataset">the data set's name (its training part's).</param>
/// <param name="DataSpec">the spec it was opened with (<c>--data</c>): the reference its scores default to;
/// null in files written before it was recorded.</param>
public sealed record FeatureNetInfo(string Dataset = "", int Steps = 0, double TrainAccuracy = double.NaN,
                                    double HeldOutAccuracy = double.NaN, string? DataSpec = null);

/// <summary>
/// The feature extractor behind FD / KID / precision-recall. No Inception weights can be fetched
/// here, so this is LeNet-5 trained with our own engine on the data set being modelled: conv 5×5 →
/// SiLU → avg-pool → conv 5×5 → SiLU → avg-pool → linear 120 → SiLU → linear 84 → SiLU (the
/// <see cref="FeatureDim"/>-d FEATURES, as Inception's pool3 is its penultimate layer) → linear classes.
/// Convs are unpadded as in LeNet (32 → 28 → 14 → 10 → 5): "same" padding with 16/32 channels was
/// tried and costs ~10× the FLOPs (0.6 s per batch of 64 on this 2-core machine) for a few points
/// of accuracy, too slow for tests that train the net.
/// Scores from different feature nets are not comparable; <see cref="Fingerprint"/> names the weights.
/// </summary>
public sealed partial class FeatureNet : Module
{
    public const int FeatureDim = 84;
    public const int HiddenDim = 120;
    public const int Kernel = 5;

    private readonly ValidConv2d _conv1, _conv2;
    private readonly SlimLinear _fc1, _fc2, _fc3;

    public int InputChannels { get; }
    public int ImageSize { get; }
    public int Classes { get; }
    public int Width1 { get; }
    public int Width2 { get; }
    public FeatureNetInfo Info { get; set; } = new();

    public FeatureNet(Backend be, int inputChannels, int classes, ulong seed, int imageSize = 32, int width1 = 6,
                      int width2 = 16) : base(be)
    {
        if (inputChannels < 1 || classes < 2 || width1 < 1 || width2 < 1)
            throw new ArgumentException($"feature net: need ≥ 1 input channel, ≥ 2 classes and positive widths, got " +
                                        $"C={inputChannels}, classes={classes}, widths {width1}/{width2}");
        if (imageSize < 16 || imageSize % 4 != 0)
            throw new ArgumentException($"feature net: image size {imageSize} must be a multiple of 4 and ≥ 16 (two " +
                                        $"unpadded 5×5 convs, two 2× pools)");
        (InputChannels, Classes, ImageSize, Width1, Width2) = (inputChannels, classes, imageSize, width1, width2);
        var rng = new Rng(seed);
        _conv1 = Child("conv1", new ValidConv2d(be, rng, inputChannels, width1, Kernel));
        _conv2 = Child("conv2", new ValidConv2d(be, rng, width1, width2, Kernel));
        _fc1 = Child("fc1", new SlimLinear(be, rng, FlatDim, HiddenDim));
        _fc2 = Child("fc2", new SlimLinear(be, rng, HiddenDim, FeatureDim));
        _fc3 = Child("fc3", new SlimLinear(be, rng, FeatureDim, classes));
    }

    /// <summary>Side after conv, pool, conv, pool: ((S − 4)/2 − 4)/2 (5 for S = 32).</summary>
    public int FinalSide => ((ImageSize - Kernel + 1) / 2 - Kernel + 1) / 2;

    /// <summary>Flattened size after the two pools: Width2 · FinalSide² (400 for S = 32).</summary>
    public int FlatDim => Width2 * FinalSide * FinalSide;

    /// <summary>
    /// (N, C, S, S) images in [−1, 1] → (features (N, 84), logits (N, classes)); records on the tape.
    /// </summary>
    public (Tensor Features, Tensor Logits) Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Shape[1] != InputChannels || x.Shape[2] != ImageSize || x.Shape[3] != ImageSize)
            throw new ArgumentException($"feature net: input {ShapeUtil.Str(x.Shape)} must be (N, {InputChannels}, " +
                                        $"{ImageSize}, {ImageSize}) (bring data sets to the model resolution with " +
                                        $"ToResolution)");
        var h = F.AvgPool2x(F.SiLU(_conv1.Forward(x)));            // (N, W1, 14, 14) for S = 32
        h = F.AvgPool2x(F.SiLU(_conv2.Forward(h)));                 // (N, W2, 5, 5)
        h = h.Reshape(x.Shape[0], FlatDim);                         // (N, 400)
        h = F.SiLU(_fc1.Forward(h, HiddenDim));                     // (N, 120)
        var features = F.SiLU(_fc2.Forward(h, FeatureDim));         // (N, 84)
        return (features, _fc3.Forward(features, Classes));         // (N, classes)
    }

    /// <summary>(N, C, S, S) → (N, 84) features without recording gradients; the caller owns the result.</summary>
    public Tensor Features(Tensor images)
    {
        using var nograd = Tape.NoGrad();
        using var scope = new TensorScope();
        return TensorScope.Escape(Forward(images).Features);
    }

    /// <summary>Features of <paramref name="count"/> host images (N, C, S, S) floats, in batches, as doubles.</summary>
    public FeatureMatrix Extract(ReadOnlySpan<float> images, int count, int batch = 256)
    {
        int size = InputChannels * ImageSize * ImageSize;
        if (images.Length != (long)count * size)
            throw new ArgumentException($"feature net: {count} images of (C={InputChannels}, " +
                                        $"{ImageSize}×{ImageSize}) need {(long)count * size} floats, got " +
                                        $"{images.Length}");
        var m = new FeatureMatrix(count, FeatureDim);
        for (int b0 = 0; b0 < count; b0 += batch)
        {
            int nb = Math.Min(batch, count - b0);
            using var scope = new TensorScope();
            var x =
                Tensor.FromArray(Backend, images.Slice(b0 * size, nb * size), nb, InputChannels, ImageSize, ImageSize);
            m.SetRows(b0, Features(x).ToArray());
        }
        return m;
    }

    /// <summary>Features of the images of a data set (all of them, or those at <paramref name="indices"/>).</summary>
    public FeatureMatrix Extract(Data.ImageDataset ds, int[]? indices = null, int batch = 256)
    {
        CheckDataset(ds);
        indices ??= Enumerable.Range(0, ds.Count).ToArray();
        var m = new FeatureMatrix(indices.Length, FeatureDim);
        var buf = new float[Math.Min(batch, Math.Max(indices.Length, 1)) * ds.ImageSize];
        for (int b0 = 0; b0 < indices.Length; b0 += batch)
        {
            int nb = Math.Min(batch, indices.Length - b0);
            var span = buf.AsSpan(0, nb * ds.ImageSize);
            ds.Batch(indices.AsSpan(b0, nb), span);
            var part = Extract(span, nb, batch);
            for (int i = 0; i < nb; i++) part.Row(i).CopyTo(m.Row(b0 + i));
        }
        return m;
    }

    internal void CheckDataset(Data.ImageDataset ds)
    {
        if (ds.Channels != InputChannels || ds.Height != ImageSize || ds.Width != ImageSize)
            throw new ArgumentException($"feature net: data set {ds.Name} has images ({ds.Channels}, {ds.Height}, " +
                                        $"{ds.Width}), the net takes ({InputChannels}, {ImageSize}, {ImageSize}); " +
                                        $"use ds.ToResolution({ImageSize})");
    }

    /// <summary>First 16 hex digits of SHA-256 over every parameter's name and float bytes: two nets
    /// score alike only when this matches, so cached reference statistics are keyed on it.</summary>
    public string Fingerprint()
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(
            System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var (name, p) in NamedParameters())
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.ToArray().AsSpan()));
        }
        return Convert.ToHexString(sha.GetHashAndReset(), 0, 8).ToLowerInvariant();
    }
}

/// <summary>Unpadded K×K convolution with bias (PyTorch layout and default init).</summary>
internal sealed class ValidConv2d : Module
{
    private readonly Tensor _w, _b;
    private readonly int _out;

    public ValidConv2d(Backend be, Rng rng, int inChannels, int outChannels, int kernel) : base(be)
    {
        _out = outChannels;
        _w = Param("weight", [outChannels, inChannels, kernel, kernel], Init.DefaultWeight(rng));
        _b = Param("bias", [outChannels], Init.DefaultBias(rng, inChannels * kernel * kernel));
    }

    public Tensor Forward(Tensor x) => F.Conv2d(x, _w, _b, _out, stride: 1, padding: 0);
}
