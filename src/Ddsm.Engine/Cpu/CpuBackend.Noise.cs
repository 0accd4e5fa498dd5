using Ddsm.Kernels;

namespace Ddsm.Engine.Cpu;

// Device-side randomness and the classifier loss: the oracles of kernels/Noise.cs and kernels/Loss.cs,
// calling the same CounterHash code (noise) and doing the same double arithmetic in the same order (loss).
public sealed partial class CpuBackend
{
    public override void Normal(DeviceBuffer y, long n, ulong seed, ulong offset)
    {
        using var timer = Profiler.Kernel("normal");
        var ya = A(y);
        Chunked(n, (lo, len) =>
        {
            for (int i = lo; i < lo + len; i++) ya[i] = CounterHash.Normal(seed, offset + (ulong)i);
        }, 1 << 12);
    }

    public override void CrossEntropy(DeviceBuffer logits, DeviceBuffer labels, DeviceBuffer loss,
        DeviceBuffer dlogits, int n, int k)
    {
        using var timer = Profiler.Kernel("cross_entropy");
        var z = A(logits); var ya = A(labels); var la = A(loss); var da = A(dlogits);
        for (int i = 0; i < n; i++)
        {
            int row = i * k, y = (int)ya[i];
            double max = z[row];
            for (int j = 1; j < k; j++) max = Math.Max(max, z[row + j]);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(z[row + j] - max);
            double logSum = Math.Log(sum);
            la[i] = (float)(logSum + max - z[row + y]);
            for (int j = 0; j < k; j++) da[row + j] = (float)Math.Exp(z[row + j] - max - logSum) - (j == y ? 1f : 0f);
        }
    }
}
