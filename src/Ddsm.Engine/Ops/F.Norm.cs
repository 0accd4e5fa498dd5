namespace Ddsm.Engine;

public static partial class F
{
    /// <summary>
    /// Slimmable GroupNorm with ADM's fused scale-shift norm and activation:
    /// y = act((xhat·γ[:C] + β[:C])·(1 + scale) + shift), xhat normalised per (sample, group) over the
    /// group's C/G channels and all positions (biased variance, eps inside the square root, as PyTorch).
    /// x is (N, C, …) with C ≤ CMax = γ.Length: a slimmed layer keeps G groups over its active
    /// channels and uses the prefix of γ/β, whose gradient lands in the same prefix.
    /// scale/shift are (N, C) or null; act is SiLU when <paramref name="silu"/>.
    /// FLOPs reported: 10·N·C·S (statistics + affine), + 2·N·C·S with scale/shift, + 4·N·C·S with SiLU.
    /// </summary>
    public static Tensor GroupNorm(Tensor x, Tensor gamma, Tensor beta, int groups = 16, float eps = 1e-5f,
        Tensor? scale = null, Tensor? shift = null, bool silu = false)
    {
        const string name = "group_norm";
        Check.SameBackend(name, x, gamma, beta, scale);
        Check.SameBackend(name, x, shift);
        Check.That(x.Rank >= 2, name, $"input must be (N, C, ...), got {ShapeUtil.Str(x.Shape)}");
        Check.Rank(name, gamma, 1, "gamma");
        Check.Rank(name, beta, 1, "beta");
        int n = x.Shape[0], c = x.Shape[1], cMax = gamma.Shape[0];
        Check.That(beta.Shape[0] == cMax, name,
                   $"gamma {ShapeUtil.Str(gamma.Shape)} and beta {ShapeUtil.Str(beta.Shape)} lengths differ");
        Check.That(c <= cMax, name,
                   $"active width C={c} of input {ShapeUtil.Str(x.Shape)} exceeds the max width {cMax} of gamma " +
                   $"{ShapeUtil.Str(gamma.Shape)}");
        Check.That(groups > 0 && c % groups == 0, name,
                   $"active width C={c} not divisible by G={groups} groups (input {ShapeUtil.Str(x.Shape)})");
        Check.That(n > 0 && c > 0, name, $"empty input {ShapeUtil.Str(x.Shape)}");
        foreach (var (t, what) in new[] { (scale, "scale"), (shift, "shift") })
            Check.That(t is null || (t.Rank == 2 && t.Shape[0] == n && t.Shape[1] == c), name,
                $"{what} must be ({n}, {c}) for input {ShapeUtil.Str(x.Shape)}, got {ShapeUtil.Str(t?.Shape ?? [])}");
        int s = (int)(x.Length / ((long)n * c));
        Check.That(s > 0, name, $"empty input {ShapeUtil.Str(x.Shape)}");

        var be = x.Backend;
        var desc = new GroupNormDesc(n, c, s, groups, cMax, eps, silu);
        var y = Tensor.Empty(be, x.Shape);
        var mean = Tensor.Empty(be, n, groups); // (N, G)
        var rstd = Tensor.Empty(be, n, groups); // (N, G)
        long ncs = x.Length;
        long flops = 10 * ncs + (scale is not null || shift is not null ? 2 * ncs : 0) + (silu ? 4 * ncs : 0);
        using (Profiler.Op(name, flops, be))
            be.GroupNormForward(desc, x.Buffer, gamma.Buffer, beta.Buffer, scale?.Buffer, shift?.Buffer,
                y.Buffer, mean.Buffer, rstd.Buffer);

        if (!Tape.Needs([x, gamma, beta, scale, shift]))
        {
            // Statistics are only for backward: free them now rather than at scope end.
            mean.Dispose(); rstd.Dispose();
            return y;
        }
        Tensor[] inputs = new[] { x, gamma, beta, scale, shift }.OfType<Tensor>().ToArray();
        Tape.Record(name, y, inputs, gy => be.GroupNormBackward(desc, x.Buffer, gamma.Buffer, beta.Buffer,
            scale?.Buffer, shift?.Buffer, mean.Buffer, rstd.Buffer, gy.Buffer,
            Tape.GradOf(x), Tape.GradOf(gamma), Tape.GradOf(beta), Tape.GradOf(scale), Tape.GradOf(shift)));
        return y;
    }
}
