// Softmax cross-entropy per row: loss[i] = −log softmax(z_i)[y_i], dlogits[i] = softmax(z_i) − onehot(y_i).
// The gradient comes out of the forward pass because it is the softmax itself; the op layer scales it by
// the upstream gradient (a device scalar) in its backward, so nothing goes back to the host. Labels are
// integers stored as floats (exact below 2²⁴). One thread per row, grid-stride: a classifier head has
// few classes (K ~ 10) and the rows are independent; max, Σexp and the log in double, in the CPU
// oracle's order, so both agree to float rounding.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>Logits, DLogits (N, K); Labels, Loss (N).</summary>
public struct CrossEntropyArgs
{
    public ArrayView<float> Logits, Labels, Loss, DLogits;
    public int N, K;
}

public static class LossKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<CrossEntropyArgs>(CrossEntropy, "cross_entropy", "loss", hot: false,
            "per row: −log softmax(z)[y] and softmax(z) − onehot(y)"),
    ];

    /// <summary>Grid-stride over rows.</summary>
    public static void CrossEntropy(CrossEntropyArgs a)
    {
        for (long i = Dev.GlobalId; i < a.N; i += Dev.GridStride)
        {
            long row = i * a.K;
            int y = (int)a.Labels[i];
            double max = a.Logits[row];
            for (int j = 1; j < a.K; j++) max = Math.Max(max, a.Logits[row + j]);
            double sum = 0;
            for (int j = 0; j < a.K; j++) sum += Math.Exp(a.Logits[row + j] - max);
            double logSum = Math.Log(sum);
            a.Loss[i] = (float)(logSum + max - a.Logits[row + y]);
            for (int j = 0; j < a.K; j++)
                a.DLogits[row + j] = (float)Math.Exp(a.Logits[row + j] - max - logSum) - (j == y ? 1f : 0f);
        }
    }
}
