namespace Ddsm.Engine.Cuda;

// Fused GroupNorm (+ scale-shift + SiLU) → kernels/groupnorm.cu; one block per (group, sample).
public sealed partial class CudaBackend
{
    private const string Gn = "groupnorm.cu";

    private static void CheckGroups(in GroupNormDesc d)
    {
        if (d.G <= 0 || d.C % d.G != 0)
            throw new ArgumentException($"groupnorm: {d.C} active channels do not split into {d.G} groups");
        if (d.C > d.CMax) throw new ArgumentException($"groupnorm: {d.C} active channels > CMax {d.CMax}");
    }

    public override void GroupNormForward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer y, DeviceBuffer mean, DeviceBuffer rstd)
    {
        CheckGroups(d);
        Launch(Gn, "groupnorm_fwd", ((uint)d.G, (uint)d.N, 1), 256,
            A().Ptr(Own(x)).Ptr(Own(gamma)).Ptr(Own(beta)).Ptr(Opt(scale)).Ptr(Opt(shift)).Ptr(Own(y))
               .Ptr(Own(mean)).Ptr(Own(rstd)).I32(d.C).I32(d.S).I32(d.G).F32(d.Eps).I32(d.SiLU ? 1 : 0));
    }

    public override void GroupNormBackward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer dy,
        DeviceBuffer? dx, DeviceBuffer? dgamma, DeviceBuffer? dbeta, DeviceBuffer? dscale, DeviceBuffer? dshift)
    {
        CheckGroups(d);
        bool param = dgamma is not null || dbeta is not null;
        // (2, N, C) per-sample partials of dγ, dβ, summed over samples by a second kernel in fixed order.
        var part = param ? Allocate(2L * d.N * d.C) : null;
        try
        {
            Launch(Gn, "groupnorm_bwd", ((uint)d.G, (uint)d.N, 1), 256,
                A().Ptr(Own(x)).Ptr(Own(gamma)).Ptr(Own(beta)).Ptr(Opt(scale)).Ptr(Opt(shift)).Ptr(Own(mean)).Ptr(Own(rstd))
                   .Ptr(Own(dy)).Ptr(Opt(dx)).Ptr(Opt(dscale)).Ptr(Opt(dshift))
                   .Ptr(part).Ptr(part, (long)d.N * d.C).I32(d.C).I32(d.S).I32(d.G).I32(d.SiLU ? 1 : 0));
            if (part is not null)
                Launch(Gn, "groupnorm_param_grad", (Blocks(d.C), 1, 1), 256,
                    A().Ptr(part).Ptr(part, (long)d.N * d.C).Ptr(Opt(dgamma)).Ptr(Opt(dbeta)).I32(d.N).I32(d.C));
        }
        finally { if (part is not null) Free(part); }
    }
}
