using System.Numerics;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// GroupNorm's passes over one channel row, each fused into one SIMD loop: the forward's affine + SiLU, and
/// the backward's two (they were six span passes through scratch rows: x̂, u, du, two reductions, dx terms).
/// x̂ = x·r + b0 is recomputed from x in each pass instead of stored; the sums stay in double lanes as in
/// <see cref="DoubleSums"/>.
/// </summary>
internal static class GroupNormRows
{
    /// <summary>
    /// du = dy·silu'(x̂·zs + zb) into <paramref name="du"/> (silu) or du = dy (no activation, du unused);
    /// returns (Σ du, Σ du·x̂).
    /// </summary>
    public static (double SumDu, double SumDuXh) Reduce(ReadOnlySpan<float> x, float r, float b0, bool silu,
        float zs, float zb, ReadOnlySpan<float> dy, Span<float> du)
    {
        var rv = new Vector<float>(r); var bv = new Vector<float>(b0);
        var zsv = new Vector<float>(zs); var zbv = new Vector<float>(zb);
        var one = Vector<float>.One;
        var s0 = Vector<double>.Zero; var s1 = Vector<double>.Zero;
        var d0 = Vector<double>.Zero; var d1 = Vector<double>.Zero;
        int w = Vector<float>.Count, i = 0, n = x.Length;
        for (; i <= n - w; i += w)
        {
            var xh = new Vector<float>(x.Slice(i)) * rv + bv;
            var g = new Vector<float>(dy.Slice(i));
            if (silu)
            {
                var u = xh * zsv + zbv;
                var s = one / (one + VecMath.Exp(-u));
                g *= s * (one + u * (one - s));
                g.CopyTo(du.Slice(i));
            }
            Vector.Widen(g, out var glo, out var ghi);
            Vector.Widen(xh, out var xlo, out var xhi);
            s0 += glo; s1 += ghi;
            d0 += glo * xlo; d1 += ghi * xhi;
        }
        double sum = Vector.Sum(s0 + s1), dot = Vector.Sum(d0 + d1);
        for (; i < n; i++)
        {
            float xh = x[i] * r + b0, g = dy[i];
            if (silu)
            {
                float u = xh * zs + zb, s = 1f / (1f + VecMath.Exp(-u));
                du[i] = g *= s * (1f + u * (1f - s));
            }
            sum += g; dot += (double)g * xh;
        }
        return (sum, dot);
    }

    /// <summary>y = act(x·a + b), act SiLU or identity: the forward's output row in one pass (was two).</summary>
    public static void AffineAct(ReadOnlySpan<float> x, float a, float b, bool silu, Span<float> y)
    {
        var av = new Vector<float>(a); var bv = new Vector<float>(b);
        var one = Vector<float>.One;
        int w = Vector<float>.Count, i = 0, n = x.Length;
        for (; i <= n - w; i += w)
        {
            var u = new Vector<float>(x.Slice(i)) * av + bv;
            if (silu) u /= one + VecMath.Exp(-u);
            u.CopyTo(y.Slice(i));
        }
        for (; i < n; i++)
        {
            float u = x[i] * a + b;
            y[i] = silu ? u / (1f + VecMath.Exp(-u)) : u;
        }
    }

    /// <summary>dx += du·a + c + x̂·e (x̂ = x·r + b0): the data gradient of one row.</summary>
    public static void AddDx(ReadOnlySpan<float> x, float r, float b0, ReadOnlySpan<float> du, float a, float c,
        float e, Span<float> dx)
    {
        var rv = new Vector<float>(r); var bv = new Vector<float>(b0);
        var av = new Vector<float>(a); var cv = new Vector<float>(c); var ev = new Vector<float>(e);
        int w = Vector<float>.Count, i = 0, n = x.Length;
        for (; i <= n - w; i += w)
        {
            var xh = new Vector<float>(x.Slice(i)) * rv + bv;
            var t = new Vector<float>(du.Slice(i)) * av + cv + xh * ev;
            (new Vector<float>(dx.Slice(i)) + t).CopyTo(dx.Slice(i));
        }
        for (; i < n; i++) dx[i] += du[i] * a + c + (x[i] * r + b0) * e;
    }
}
