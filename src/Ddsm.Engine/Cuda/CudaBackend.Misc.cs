namespace Ddsm.Engine.Cuda;

// Resampling, timestep embedding, dropout (elementwise.cu) and the fused Adam step (adam.cu).
public sealed partial class CudaBackend
{
    public override void Upsample2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w)
        => Launch(Ew, "upsample2x_fwd", (Blocks(4L * nc * h * w), 1, 1), EwThreads, A().Ptr(Own(x)).Ptr(Own(y)).I32(nc).I32(h).I32(w));

    public override void AvgPool2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w)
        => Launch(Ew, "avgpool2x_fwd", (Blocks((long)nc * (h / 2) * (w / 2)), 1, 1), EwThreads, A().Ptr(Own(x)).Ptr(Own(y)).I32(nc).I32(h).I32(w));

    public override void TimestepEmbedding(DeviceBuffer t, DeviceBuffer output, int n, int dim, float maxPeriod)
        => Launch(Ew, "timestep_embedding", (Blocks((long)n * dim), 1, 1), EwThreads,
            A().Ptr(Own(t)).Ptr(Own(output)).I32(n).I32(dim).F32(maxPeriod));

    public override void Dropout(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p, ulong seed)
    {
        // Same threshold and scale arithmetic as the CPU oracle, so both draw identical masks.
        uint threshold = (uint)Math.Min(uint.MaxValue, (double)p * 4294967296.0);
        float keepScale = 1f / (1f - p);
        Launch(Ew, "dropout_fwd", (Blocks(n), 1, 1), EwThreads,
            A().Ptr(Own(x)).Ptr(Own(y)).Ptr(Own(mask)).I64(n).U32(threshold).F32(keepScale).U64(seed));
    }

    public override void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n, in AdamHyper h)
        => Launch("adam.cu", "adam_step", (Blocks(n), 1, 1), 256,
            A().Ptr(Own(param)).Ptr(Own(grad)).Ptr(Own(m)).Ptr(Own(v)).I64(n)
               .F32(h.Lr).F32(h.Beta1).F32(h.Beta2).F32(h.Eps).F32(h.WeightDecay)
               .F32(1f / h.BiasCorrection1).F32(1f / h.BiasCorrection2).F32(h.GradScale));
}
