using ILGPU;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Fused GroupNorm (+ scale-shift + SiLU) → kernels/GroupNorm.cs; one group per (group, sample).
public sealed partial class IlgpuBackend
{
    private static void CheckGroups(in GroupNormDesc d)
    {
        if (d.G <= 0 || d.C % d.G != 0)
            throw new ArgumentException($"groupnorm: {d.C} active channels do not split into {d.G} groups");
        if (d.C > d.CMax) throw new ArgumentException($"groupnorm: {d.C} active channels > CMax {d.CMax}");
    }

    /// <summary>
    /// The kernels' arguments, and their launch: grid (G, N) and FlexThreads lowered in whole warps to the
    /// group's C/G·S floats (a group as wide as its work, so more (g, n) groups are resident per SM).
    /// </summary>
    private (GroupNormArgs Args, Index3D Grid, int Threads) GroupNorm(in GroupNormDesc d, DeviceBuffer x,
        DeviceBuffer gamma, DeviceBuffer beta, DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer mean,
        DeviceBuffer rstd)
    {
        CheckGroups(d);
        var args = new GroupNormArgs
        {
            X = Own(x).View, Gamma = Own(gamma).View, Beta = Own(beta).View, Scale = Opt(scale), Shift = Opt(shift),
            Mean = Own(mean).View, Rstd = Own(rstd).View, C = d.C, S = d.S, G = d.G, Silu = d.SiLU ? 1 : 0, Eps = d.Eps,
        };
        int threads = (int)Math.Min(FlexThreads, Ceil((long)d.ChannelsPerGroup * d.S, 32) * 32L);
        // An empty group (C or S of 0) has nothing to normalise: a zero grid launches nothing.
        var grid = new Index3D(d.C == 0 || d.S == 0 ? 0 : d.G, d.N, 1);
        return (args, grid, threads);
    }

    public override void GroupNormForward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer y, DeviceBuffer mean, DeviceBuffer rstd)
    {
        var (a, grid, threads) = GroupNorm(d, x, gamma, beta, scale, shift, mean, rstd);
        a.Y = Own(y).View;
        Launch(K<GroupNormArgs>("groupnorm_fwd"), grid, threads, a);
    }

    public override void GroupNormBackward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer dy,
        DeviceBuffer? dx, DeviceBuffer? dgamma, DeviceBuffer? dbeta, DeviceBuffer? dscale, DeviceBuffer? dshift)
    {
        var (a, grid, threads) = GroupNorm(d, x, gamma, beta, scale, shift, mean, rstd);
        a.Dy = Own(dy).View; a.Dx = Opt(dx); a.DScale = Opt(dscale); a.DShift = Opt(dshift);
        if (grid.Size == 0) return;
        long nc = (long)d.N * d.C;
        // (2, N, C) per-sample partials of dγ, dβ, summed over samples by a second kernel in fixed order.
        var part = dgamma is not null || dbeta is not null ? Allocate(2 * nc) : null;
        try
        {
            if (part is not null)
            {
                a.PartG = Own(part).View.SubView(0, nc);
                a.PartB = Own(part).View.SubView(nc, nc);
            }
            Launch(K<GroupNormArgs>("groupnorm_bwd"), grid, threads, a);
            if (part is not null)
            {
                var p = new GroupNormParamArgs
                {
                    PartG = a.PartG, PartB = a.PartB, DGamma = Opt(dgamma), DBeta = Opt(dbeta), N = d.N, C = d.C,
                };
                Launch(K<GroupNormParamArgs>("groupnorm_param_grad"), new Index3D(GridFor(d.C, FlexThreads), 1, 1),
                    FlexThreads, p);
            }
        }
        finally { if (part is not null) Free(part); }   // stream order: reused only by later work
    }
}
