// Fused GroupNorm + affine + FiLM scale-shift + optional SiLU, forward and backward (F.GroupNorm):
//   y = act(u),  u = (xhat·γ[c] + β[c])·(1 + scale[n,c]) + shift[n,c],  xhat = (x − μ[n,g])·rstd[n,g]
// Layout: x, y, dy, dx (N, C, S) with C the ACTIVE channels (slimmable: γ, β are stored for CMax and
// only their prefix [0, C) is read or written); scale/shift (N, C) or empty views; mean/rstd (N, G).
//
// One group of threads per (group g, sample n): the statistics reduce that group's L = C/G·S contiguous
// floats, in two passes (mean, then Σ(x − μ)²) for accuracy, through fixed-tree block sums.
// Why this shape: GroupNorm moves 12–20 bytes per element for ~10–25 FLOP, so it is bandwidth bound at
// best, and at the UNet's 8²–16² maps with narrow widths (L = 64…1024 floats per group) it is latency
// bound: launch, then each group's serial chain of dependent loads and barriers. So:
// - Group size: the host gives FlexThreads lowered, in whole warps, to L (kernels take any multiple of
//   32). A 256-thread group over 128 floats leaves half its threads idle yet takes their SM slots;
//   fitting it doubles the (g, n) groups resident per SM.
// - Per-channel work (forward's write pass, both backward passes) maps warps to channel rows
//   (GroupRows): a channel's affine chain folds to u = (x − μ)·a + b with a, b loaded once per row,
//   instead of loading γ, β, scale, shift and dividing an index for every element (1 load, 1 FMA and
//   1 store per element are left).
// - Backward reduces all channels of the group at once. The CUDA design took one channel at a time
//   (256 threads over S floats, a 4-value block sum and 2 barriers per channel: C/G serial rounds of
//   global latency); here each warp sums its row with shuffles and a fixed-order combine adds the
//   warps that share a row: 2 barriers per sweep of up to one row per warp (usually a single sweep).
//   Two sums per channel suffice, Σ du and Σ du·xhat: Σ du·(xhat·γ + β) (dscale) and the (1 + scale)
//   multiples (dγ, dβ, dx) follow algebraically, as in the CPU oracle.
// Backward ACCUMULATES dx, dscale, dshift. dγ/dβ sum over samples too, which crosses groups: each group
// writes its per-(n, c) partials and ParamGrad adds them over n in a fixed order. No atomics: the same
// input gives the same bits on every run.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>Arguments of the forward and backward GroupNorm kernels; views a kernel does not use are empty.</summary>
public struct GroupNormArgs
{
    /// <summary>x (N, C, S); γ, β (CMax, prefix C read); scale, shift (N, C) or empty = none.</summary>
    public ArrayView<float> X, Gamma, Beta, Scale, Shift;
    /// <summary>y (N, C, S) written by forward; mean, rstd (N, G) written by forward, read by backward.</summary>
    public ArrayView<float> Y, Mean, Rstd;
    /// <summary>Backward: dy (N, C, S) read; dx (N, C, S), dscale, dshift (N, C) accumulated (empty = not
    /// wanted); partG, partB (N, C) per-sample Σ of dγ, dβ written (both empty when neither is wanted).</summary>
    public ArrayView<float> Dy, Dx, DScale, DShift, PartG, PartB;
    public int C, S, G, Silu;
    public float Eps;
}

/// <summary>Arguments of <see cref="GroupNormKernels.ParamGrad"/>.</summary>
public struct GroupNormParamArgs
{
    /// <summary>partG, partB (N, C); dγ, dβ (CMax: prefix C accumulated; empty = not wanted).</summary>
    public ArrayView<float> PartG, PartB, DGamma, DBeta;
    public int N, C;
}

/// <summary>
/// How the warps of a group cover its cpg channel rows of S floats: PerRow warps share a row (lanes
/// interleaved, stride 32·PerRow) and Rows rows are in flight at once. Warps left over when cpg is
/// below the warp count join rows, but never more warps than the row has 32-float chunks.
/// </summary>
internal readonly struct GroupRows
{
    /// <summary>Warps per row, rows per sweep; this lane's first position in its row, the step to its next.</summary>
    public readonly int PerRow, Rows, Col, Step;
    private readonly int _row;   // this warp's row within a sweep; cpg (none) for a warp left over

    public GroupRows(int cpg, int s)
    {
        int warps = Group.DimX >> 5, chunks = (s + 31) >> 5, k = warps / cpg, w = Warp.WarpIdx;
        PerRow = k < 1 ? 1 : k < chunks ? k : chunks;
        Rows = warps / PerRow;
        Step = 32 * PerRow;
        Col = w % PerRow * 32 + Warp.LaneIdx;
        _row = w < Rows * PerRow ? w / PerRow : cpg;
    }

    /// <summary>This warp's row in the sweep starting at row <paramref name="first"/> (≥ cpg: none).</summary>
    public int Row(int first) => first + _row;
}

/// <summary>
/// Channel c of sample n with its affine chain folded: u = (x − μ)·A + B, A = rstd·γ·(1 + scale),
/// B = β·(1 + scale) + shift. Forward and backward evaluate u by this one expression, so SiLU's
/// derivative is taken at the forward's u bit for bit.
/// </summary>
internal readonly struct ChannelAffine
{
    public readonly float Gamma, Beta, Scale1, A, B;

    public ChannelAffine(in GroupNormArgs a, int n, int c, float rstd)
    {
        long nc = (long)n * a.C + c;
        Gamma = a.Gamma[c];
        Beta = a.Beta[c];
        Scale1 = a.Scale.Length > 0 ? 1f + a.Scale[nc] : 1f;
        A = rstd * Gamma * Scale1;
        B = Beta * Scale1 + (a.Shift.Length > 0 ? a.Shift[nc] : 0f);
    }
}

public static class GroupNormKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<GroupNormArgs>(Forward, "groupnorm_fwd", "groupnorm", hot: true,
            "y = act((xhat·γ + β)·(1 + scale) + shift); mean, rstd per (n, g)"),
        KernelEntry.Of<GroupNormArgs>(Backward, "groupnorm_bwd", "groupnorm", hot: true,
            "dx, dscale, dshift += ∂; per-sample dγ/dβ partials"),
        KernelEntry.Of<GroupNormParamArgs>(ParamGrad, "groupnorm_param_grad", "groupnorm", hot: false,
            "dγ, dβ prefix += Σ_n partials in n order"),
    ];

    /// <summary>y, mean, rstd of (g, n) = (Grid.IdxX, Grid.IdxY). Grid (G, N), any multiple of 32 threads.</summary>
    public static void Forward(GroupNormArgs a)
    {
        var scratch = SharedMemory.Allocate<float>(32);
        int g = Grid.IdxX, n = Grid.IdxY, cpg = a.C / a.G, len = cpg * a.S;
        long group = ((long)n * a.C + g * cpg) * a.S;
        float sum = 0f;
        for (int e = Group.IdxX; e < len; e += Group.DimX) sum += a.X[group + e];
        float mu = Dev.BlockSum(sum, scratch) / len;
        float sq = 0f;
        for (int e = Group.IdxX; e < len; e += Group.DimX)
        {
            float d = a.X[group + e] - mu;
            sq += d * d;
        }
        float r = 1f / MathF.Sqrt(Dev.BlockSum(sq, scratch) / len + a.Eps);
        if (Group.IdxX == 0)
        {
            a.Mean[n * a.G + g] = mu;
            a.Rstd[n * a.G + g] = r;
        }
        var rows = new GroupRows(cpg, a.S);
        for (int ci = rows.Row(0); ci < cpg; ci += rows.Rows)
        {
            var ch = new ChannelAffine(a, n, g * cpg + ci, r);
            long row = group + (long)ci * a.S;
            for (int s = rows.Col; s < a.S; s += rows.Step)
            {
                float u = (a.X[row + s] - mu) * ch.A + ch.B;
                a.Y[row + s] = a.Silu != 0 ? u / (1f + MathF.Exp(-u)) : u;
            }
        }
    }

    /// <summary>
    /// Gradients of one (g, n) = (Grid.IdxX, Grid.IdxY): dx, dscale, dshift accumulated, dγ/dβ partials
    /// written. Grid (G, N), any multiple of 32 threads (at most 1024).
    /// </summary>
    public static void Backward(GroupNormArgs a)
    {
        var scratch = SharedMemory.Allocate<float>(64);   // per warp: its row segment's Σ du, Σ du·xhat
        int g = Grid.IdxX, n = Grid.IdxY, cpg = a.C / a.G, c0 = g * cpg, t = Group.IdxX, w = Warp.WarpIdx;
        long group = ((long)n * a.C + c0) * a.S;
        float mu = a.Mean[n * a.G + g], r = a.Rstd[n * a.G + g];
        var rows = new GroupRows(cpg, a.S);
        // Thread t < Rows finishes row first + t of each sweep and keeps the group sums of dxhat and
        // dxhat·xhat over its rows (dxhat = du·γ·(1 + scale)).
        float sumDxh = 0f, sumDxhXh = 0f;
        for (int first = 0; first < cpg; first += rows.Rows)
        {
            int ci = rows.Row(first);
            float su = 0f, sux = 0f;
            if (ci < cpg)
            {
                var ch = new ChannelAffine(a, n, c0 + ci, r);
                long row = group + (long)ci * a.S;
                for (int s = rows.Col; s < a.S; s += rows.Step)
                {
                    float xm = a.X[row + s] - mu, du = Du(a, a.Dy[row + s], xm, ch);
                    su += du;
                    sux += du * (xm * r);
                }
            }
            su = Dev.WarpSum(su);
            sux = Dev.WarpSum(sux);
            if (Warp.LaneIdx == 0)
            {
                scratch[2 * w] = su;
                scratch[2 * w + 1] = sux;
            }
            Group.Barrier();
            if (t < rows.Rows && first + t < cpg)
            {
                float sumDu = 0f, sumDuXh = 0f;   // the row's warps in order
                for (int j = t * rows.PerRow; j < (t + 1) * rows.PerRow; j++)
                {
                    sumDu += scratch[2 * j];
                    sumDuXh += scratch[2 * j + 1];
                }
                var ch = new ChannelAffine(a, n, c0 + first + t, r);
                long nc = (long)n * a.C + c0 + first + t;
                if (a.DShift.Length > 0) a.DShift[nc] += sumDu;
                // ∂u/∂scale = xhat·γ + β
                if (a.DScale.Length > 0) a.DScale[nc] += ch.Gamma * sumDuXh + ch.Beta * sumDu;
                if (a.PartG.Length > 0)
                {
                    a.PartG[nc] = ch.Scale1 * sumDuXh;
                    a.PartB[nc] = ch.Scale1 * sumDu;
                }
                sumDxh += ch.Gamma * ch.Scale1 * sumDu;
                sumDxhXh += ch.Gamma * ch.Scale1 * sumDuXh;
            }
            Group.Barrier();   // scratch is rewritten by the next sweep
        }
        if (a.Dx.Length == 0) return;

        // dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)), means over the group; the finishing
        // threads are lanes of warp 0, which sums them and hands the totals to everyone.
        if (w == 0)
        {
            sumDxh = Dev.WarpSum(sumDxh);
            sumDxhXh = Dev.WarpSum(sumDxhXh);
            if (t == 0)
            {
                scratch[0] = sumDxh;
                scratch[1] = sumDxhXh;
            }
        }
        Group.Barrier();
        float k = r / (cpg * a.S), m1 = scratch[0] * k, m2 = scratch[1] * k;
        for (int ci = rows.Row(0); ci < cpg; ci += rows.Rows)
        {
            var ch = new ChannelAffine(a, n, c0 + ci, r);
            long row = group + (long)ci * a.S;
            for (int s = rows.Col; s < a.S; s += rows.Step)
            {
                float xm = a.X[row + s] - mu;
                // rstd·dxhat = du·A
                a.Dx[row + s] += Du(a, a.Dy[row + s], xm, ch) * ch.A - (xm * r * m2 + m1);
            }
        }
    }

    /// <summary>du = ∂L/∂u: dy, or with SiLU dy·σ(u)·(1 + u·(1 − σ(u))) at u = (x − μ)·A + B.</summary>
    private static float Du(in GroupNormArgs a, float dy, float xm, in ChannelAffine ch)
    {
        if (a.Silu == 0) return dy;
        float u = xm * ch.A + ch.B, sg = 1f / (1f + MathF.Exp(-u));
        return dy * (sg * (1f + u * (1f - sg)));
    }

    /// <summary>dγ[c] += Σ_n partG[n, c], dβ[c] += Σ_n partB[n, c] in n order. Grid-stride over C.</summary>
    public static void ParamGrad(GroupNormParamArgs a)
    {
        for (long c = Dev.GlobalId; c < a.C; c += Dev.GridStride)
        {
            float sg = 0f, sb = 0f;
            for (int n = 0; n < a.N; n++)
            {
                sg += a.PartG[(long)n * a.C + c];
                sb += a.PartB[(long)n * a.C + c];
            }
            if (a.DGamma.Length > 0) a.DGamma[c] += sg;
            if (a.DBeta.Length > 0) a.DBeta[c] += sb;
        }
    }
}
