using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Resampling (kernels/Resample.cs), timestep embedding (Embedding.cs), dropout (Dropout.cs), the
// fused Adam step (Adam.cs), normal noise (Noise.cs) and the cross-entropy rows (Loss.cs): grid-stride
// kernels like the element-wise family.
public sealed partial class IlgpuBackend
{
    public override void Upsample2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w)
    {
        long n = (long)nc * h * w;
        var args = new ResampleArgs
        {
            X = View(x, n, "upsample2x"), Y = View(y, 4 * n, "upsample2x"), Nc = nc, H = h, W = w,
        };
        LaunchFlat("upsample2x", 4 * n, args);
    }

    public override void AvgPool2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w)
    {
        long n = (long)nc * (h / 2) * (w / 2);
        var args = new ResampleArgs
        {
            X = View(x, (long)nc * h * w, "avgpool2x"), Y = View(y, n, "avgpool2x"), Nc = nc, H = h, W = w,
        };
        LaunchFlat("avgpool2x", n, args);
    }

    public override void TimestepEmbedding(DeviceBuffer t, DeviceBuffer output, int n, int dim, float maxPeriod)
    {
        var args = new TimestepArgs
        {
            T = View(t, n, "timestep_embedding"), Out = View(output, (long)n * dim, "timestep_embedding"),
            LogMaxPeriod = Math.Log(maxPeriod), N = n, Dim = dim,
        };
        LaunchFlat("timestep_embedding", (long)n * dim, args);
    }

    public override void Dropout(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p, ulong seed)
    {
        // The CPU oracle's threshold and scale (CounterHash), so both draw identical masks.
        var args = new DropoutArgs
        {
            X = View(x, n, "dropout"), Y = View(y, n, "dropout"), Mask = View(mask, n, "dropout"),
            N = n, Seed = seed,
            Threshold = CounterHash.DropThreshold(p), KeepScale = 1f / (1f - p),
        };
        LaunchFlat("dropout", n, args);
    }

    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h) => LaunchFlat("adam_step", n, AdamArgsOf(param, grad, m, v, n, h));

    /// <summary>The update's arguments, shared by adam_step and adam_step_guarded.</summary>
    private AdamArgs AdamArgsOf(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h) => new()
    {
        P = View(param, n, "adam"), G = View(grad, n, "adam"), M = View(m, n, "adam"), V = View(v, n, "adam"),
        N = n, Lr = h.Lr, Beta1 = h.Beta1, Beta2 = h.Beta2, Eps = h.Eps, WeightDecay = h.WeightDecay,
        InvBc1 = 1f / h.BiasCorrection1, InvBc2 = 1f / h.BiasCorrection2, GradScale = h.GradScale,
    };

    public override void Normal(DeviceBuffer y, long n, ulong seed, ulong offset) =>
        LaunchFlat("normal", n, new NormalArgs { Y = View(y, n, "normal"), N = n, Seed = seed, Offset = offset });

    public override void CrossEntropy(DeviceBuffer logits, DeviceBuffer labels, DeviceBuffer loss,
        DeviceBuffer dlogits, int n, int k)
    {
        var args = new CrossEntropyArgs
        {
            Logits = View(logits, (long)n * k, "cross_entropy"), Labels = View(labels, n, "cross_entropy"),
            Loss = View(loss, n, "cross_entropy"), DLogits = View(dlogits, (long)n * k, "cross_entropy"), N = n, K = k,
        };
        LaunchFlat("cross_entropy", n, args);
    }
}
