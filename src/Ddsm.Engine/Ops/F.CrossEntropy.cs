namespace Ddsm.Engine;

// Classification loss for the evaluation feature net (the diffusion model itself never needs it).
public static partial class F
{
    /// <summary>
    /// Mean cross-entropy of logits (N, K) against integer labels (N): −(1/N)·Σᵢ log softmax(zᵢ)[yᵢ],
    /// a one-element tensor. Log-softmax is taken stably (z − max − log Σ exp(z − max)), in double.
    /// Gradient: dz = g·(softmax(z) − onehot(y))/N.
    /// <para>Runs on the host over CopyOut/CopyIn on every backend: the logits of a classifier head are
    /// small (N×K, e.g. 64×10) next to the convolutions that produce them, so one transfer each way costs
    /// little. A device kernel (CUDA) is a later item, not needed for correctness.</para>
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> labels)
    {
        const string name = "cross_entropy";
        Check.Rank(name, logits, 2, "logits (N, K)");
        int n = logits.Shape[0], k = logits.Shape[1];
        Check.That(n > 0 && k > 0, name, $"empty logits {ShapeUtil.Str(logits.Shape)}");
        Check.That(labels.Length == n, name, $"{labels.Length} labels for logits {ShapeUtil.Str(logits.Shape)}");
        for (int i = 0; i < n; i++)
            Check.That((uint)labels[i] < (uint)k, name,
                       $"label {labels[i]} at row {i} outside [0, {k}) for logits {ShapeUtil.Str(logits.Shape)}");

        var be = logits.Backend;
        var z = logits.ToArray();               // (N, K)
        var prob = new float[z.Length];         // (N, K) softmax, kept for backward
        var y = labels.ToArray();
        double loss = 0;
        // max, K exps, K adds, a log, K divides: ≈ 4 FLOPs per element.
        using (Profiler.Op(name, 4L * z.Length, be))
        {
            for (int i = 0; i < n; i++)
            {
                var row = z.AsSpan(i * k, k);
                double max = double.NegativeInfinity;
                foreach (float v in row) max = Math.Max(max, v);
                double sum = 0;
                foreach (float v in row) sum += Math.Exp(v - max);
                double logSum = Math.Log(sum);
                loss -= row[y[i]] - max - logSum;
                for (int j = 0; j < k; j++) prob[i * k + j] = (float)Math.Exp(row[j] - max - logSum);
            }
        }
        var result = Tensor.FromArray(be, [(float)(loss / n)], 1);
        if (Tape.Needs(logits))
            Tape.Record(name, result, [logits], g =>
            {
                float scale = g.Item() / n;
                var d = new float[prob.Length];
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < k; j++)
                        d[i * k + j] = scale * (prob[i * k + j] - (j == y[i] ? 1f : 0f));
                // Backward runs with scopes suspended: the temporary is freed here, not by a scope.
                using var dt = Tensor.FromArray(be, d, n, k);
                be.Axpby(dt.Buffer, logits.EnsureGrad().Buffer, d.Length, 1f, 1f);
            });
        return result;
    }
}
