using System.Numerics;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// Reductions of float spans accumulated in double lanes (float loads widened to double), so a
/// normalisation statistic over thousands of elements keeps ~1e-15 relative error instead of the
/// ~1e-5 a float sum of 10⁴ terms can drift to. Memory-bound anyway, so double lanes cost little.
/// </summary>
internal static class DoubleSums
{
    /// <summary>Σ x.</summary>
    public static double Sum(ReadOnlySpan<float> x)
    {
        var a0 = Vector<double>.Zero; var a1 = Vector<double>.Zero;
        int w = Vector<float>.Count, i = 0;
        for (; i <= x.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(i)), out var lo, out var hi);
            a0 += lo; a1 += hi;
        }
        double s = Vector.Sum(a0 + a1);
        for (; i < x.Length; i++) s += x[i];
        return s;
    }

    /// <summary>Σ (x − m)²: the second pass of a two-pass variance (no E[x²]−E[x]² cancellation).</summary>
    public static double SumSquaredDeviations(ReadOnlySpan<float> x, double m)
    {
        var mv = new Vector<double>(m);
        var a0 = Vector<double>.Zero; var a1 = Vector<double>.Zero;
        int w = Vector<float>.Count, i = 0;
        for (; i <= x.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(x.Slice(i)), out var lo, out var hi);
            lo -= mv; hi -= mv;
            a0 += lo * lo; a1 += hi * hi;
        }
        double s = Vector.Sum(a0 + a1);
        for (; i < x.Length; i++) { double d = x[i] - m; s += d * d; }
        return s;
    }

    /// <summary>Σ a·b.</summary>
    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var a0 = Vector<double>.Zero; var a1 = Vector<double>.Zero;
        int w = Vector<float>.Count, i = 0, n = a.Length;
        for (; i <= n - w; i += w)
        {
            Vector.Widen(new Vector<float>(a.Slice(i)), out var alo, out var ahi);
            Vector.Widen(new Vector<float>(b.Slice(i)), out var blo, out var bhi);
            a0 += alo * blo; a1 += ahi * bhi;
        }
        double s = Vector.Sum(a0 + a1);
        for (; i < n; i++) s += (double)a[i] * b[i];
        return s;
    }
}
