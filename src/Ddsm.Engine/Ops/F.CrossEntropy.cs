namespace Ddsm.Engine;

// Classification loss for the evaluation feature net (the diffusion model itself never needs it).
public static partial class F
{
    /// <summary>
    /// Mean cross-entropy of logits (N, K) against integer labels (N): −(1/N)·Σᵢ log softmax(zᵢ)[yᵢ],
    /// a one-element tensor. The labels are checked here and go to the device once (they are an input,
    /// like the images); the loss is computed there (<see cref="CrossEntropy(Tensor, Tensor)"/>).
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> labels)
    {
        const string name = "cross_entropy";
        Check.Rank(name, logits, 2, "logits (N, K)");
        int n = logits.Shape[0], k = logits.Shape[1];
        Check.That(labels.Length == n, name, $"{labels.Length} labels for logits {ShapeUtil.Str(logits.Shape)}");
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            Check.That((uint)labels[i] < (uint)k, name,
                $"label {labels[i]} at row {i} outside [0, {k}) for logits {ShapeUtil.Str(logits.Shape)}");
            y[i] = labels[i];
        }
        return CrossEntropy(logits, Tensor.FromArray(logits.Backend, y, n));
    }

    /// <summary>
    /// The same with the labels already on the device, (N) integers stored as floats (not range-checked
    /// here: that would read them back). Per-row losses and softmax − onehot come from one backend call
    /// (stable, in double); the mean is a device reduction; the gradient dz = g·(softmax − onehot)/N scales
    /// the kept rows by the upstream gradient on the device. Nothing is read back to the host.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels)
    {
        const string name = "cross_entropy";
        Check.Rank(name, logits, 2, "logits (N, K)");
        Check.SameBackend(name, logits, labels);
        int n = logits.Shape[0], k = logits.Shape[1];
        Check.That(n > 0 && k > 0, name, $"empty logits {ShapeUtil.Str(logits.Shape)}");
        Check.That(labels.Length == n, name, $"{labels.Length} labels for logits {ShapeUtil.Str(logits.Shape)}");
        var be = logits.Backend;
        var rows = Tensor.Empty(be, n);          // (N) −log softmax(z_i)[y_i]
        var dlogits = Tensor.Empty(be, n, k);    // (N, K) softmax − onehot, kept for backward
        var z = Tensor.Empty(be, 1);
        // max, K exps, K adds, a log, K divides: ≈ 4 FLOPs per element.
        using (Profiler.Op(name, 4L * n * k, be))
        {
            be.CrossEntropy(logits.Buffer, labels.Buffer, rows.Buffer, dlogits.Buffer, n, k);
            be.Sum(rows.Buffer, n, z.Buffer);
            be.Axpby(z.Buffer, z.Buffer, 1, 1f / n, 0f);
        }
        if (Tape.Needs(logits))
            Tape.Record(name, z, [logits], g =>
            {
                long nk = (long)n * k;
                using var d = new Scratch(be, nk);
                be.Broadcast(BinaryOp.Mul, dlogits.Buffer, g.Buffer, d.Buffer, 1, 1, checked((int)nk), false);
                be.Axpby(d.Buffer, logits.EnsureGrad().Buffer, nk, 1f / n, 1f);
            });
        return z;
    }
}
