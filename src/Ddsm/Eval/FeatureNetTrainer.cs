using Ddsm.Engine.Optim;

namespace Ddsm.Eval;

/// <summary>How to train a <see cref="FeatureNet"/>; the defaults suit a 32×32 gray or colour set.</summary>
public sealed record FeatureNetTrainOptions(int Steps = 1500, int BatchSize = 64, float Lr = 2e-3f, ulong Seed = 1,
    int Width1 = 6, int Width2 = 16, int WarmupSteps = 20)
{
    internal void Validate()
    {
        if (Steps < 1 || BatchSize < 1 || !(Lr > 0f) || WarmupSteps < 0 || Width1 < 1 || Width2 < 1)
            throw new ArgumentException($"feature net training: invalid options {this}");
    }
}

/// <summary>Supervised training of the feature net (cross-entropy, Adam, seeded shuffled epochs).</summary>
public static class FeatureNetTrainer
{
    /// <summary>
    /// Trains a new net on <paramref name="train"/> (labelled, at the net's resolution) and measures its
    /// accuracy on the training images and, when given, on <paramref name="heldOut"/>; both land in
    /// <see cref="FeatureNet.Info"/>. <paramref name="progress"/> gets (step, loss) every step.
    /// </summary>
    public static FeatureNet Train(Backend be, ImageDataset train, FeatureNetTrainOptions? options = null,
        ImageDataset? heldOut = null, Action<int, double>? progress = null)
    {
        var o = options ?? new FeatureNetTrainOptions();
        o.Validate();
        if (train.ClassCount < 2)
            throw new ArgumentException(
                $"feature net training: data set {train.Name} has {train.ClassCount} classes; it needs labels");
        if (train.Height != train.Width)
            throw new ArgumentException(
                $"feature net training: images of {train.Name} are {train.Height}×{train.Width}, not square");
        var net = new FeatureNet(be, train.Channels, train.ClassCount, o.Seed, train.Height, o.Width1, o.Width2);
        try
        {
            using var adam = new Adam(net.Parameters(), new AdamOptions(Lr: o.Lr, WarmupSteps: o.WarmupSteps));
            var rng = new Rng(o.Seed ^ 0x5EED_FEA7UL);
            var order = Enumerable.Range(0, train.Count).ToArray();
            int pos = order.Length;   // forces a shuffle before the first batch
            int b = Math.Min(o.BatchSize, train.Count);
            var idx = new int[b];
            var labels = new int[b];
            var pixels = new float[b * train.ImageSize];
            for (int step = 1; step <= o.Steps; step++)
            {
                for (int i = 0; i < b; i++)
                {
                    if (pos == order.Length) { Shuffle(order, rng); pos = 0; }
                    idx[i] = order[pos++];
                }
                train.Batch(idx, pixels);
                train.BatchLabels(idx, labels);
                using var scope = new TensorScope();
                var x = Tensor.FromArray(be, pixels, b, train.Channels, train.Height, train.Width);
                var loss = F.CrossEntropy(net.Forward(x).Logits, labels);
                adam.ZeroGrad();
                Tape.Backward(loss);
                adam.Step();
                progress?.Invoke(step, loss.Item());
            }
        }
        catch
        {
            net.Dispose();
            throw;
        }
        net.Info = new FeatureNetInfo(train.Name, o.Steps, Accuracy(net, train),
            heldOut is null ? double.NaN : Accuracy(net, heldOut));
        return net;
    }

    /// <summary>Fraction of images whose arg-max logit is their label.</summary>
    public static double Accuracy(FeatureNet net, ImageDataset ds, int batch = 256)
    {
        net.CheckDataset(ds);
        if (ds.Count == 0) return double.NaN;
        int correct = 0, k = net.Classes;
        var pixels = new float[Math.Min(batch, ds.Count) * ds.ImageSize];
        for (int b0 = 0; b0 < ds.Count; b0 += batch)
        {
            int nb = Math.Min(batch, ds.Count - b0);
            var idx = Enumerable.Range(b0, nb).ToArray();
            ds.Batch(idx, pixels.AsSpan(0, nb * ds.ImageSize));
            using var nograd = Tape.NoGrad();
            using var scope = new TensorScope();
            var x = Tensor.FromArray(net.Backend, pixels.AsSpan(0, nb * ds.ImageSize), nb, ds.Channels, ds.Height,
                                     ds.Width);
            var logits = net.Forward(x).Logits.ToArray(); // (nb, K)
            for (int i = 0; i < nb; i++)
            {
                int best = 0;
                for (int j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
                if (best == ds.Labels[b0 + i]) correct++;
            }
        }
        return (double)correct / ds.Count;
    }

    /// <summary>A seeded random split into (train, held-out) with <paramref name="heldOutCount"/> held out.</summary>
    public static (ImageDataset Train, ImageDataset HeldOut) Split(ImageDataset ds, int heldOutCount, ulong seed)
    {
        if (heldOutCount < 1 || heldOutCount >= ds.Count)
            throw new ArgumentException($"feature net: cannot hold out {heldOutCount} of {ds.Count} images");
        var order = Enumerable.Range(0, ds.Count).ToArray();
        Shuffle(order, new Rng(seed));
        return (ds.Subset(order.AsSpan(heldOutCount), ds.Name),
                ds.Subset(order.AsSpan(0, heldOutCount), ds.Name + "-heldout"));
    }

    private static void Shuffle(int[] a, Rng rng)
    {
        for (int i = a.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (a[i], a[j]) = (a[j], a[i]);
        }
    }
}
