using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The device normal draw (Backend.Normal over CounterHash.Normal) on the CPU oracle, fixed seeds: the moments
/// and tails of a million draws within 5 standard errors of N(0, 1), pairs uncorrelated, a draw depending
/// only on (seed, index) (so offsets split a stream exactly), and the noise stream's position.
/// </summary>
public class DeviceNoiseTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;

    private static float[] Draw(long n, ulong seed, ulong offset)
    {
        var b = Cpu.Allocate(n);
        try
        {
            Cpu.Normal(b, n, seed, offset);
            var a = new float[n];
            Cpu.CopyOut(b, 0, a);
            return a;
        }
        finally { Cpu.Free(b); }
    }

    [TestCase(42UL)]
    [TestCase(0xDEADBEEFUL)]
    public void MomentsAndTailsAreThoseOfAStandardNormal(ulong seed)
    {
        const int n = 1 << 20;
        var z = Draw(n, seed, 12345);
        double m = z.Average(v => (double)v);
        double var = z.Sum(v => (v - m) * (v - m)) / (n - 1);
        double skew = z.Sum(v => Math.Pow(v - m, 3)) / n / Math.Pow(var, 1.5);
        double kurt = z.Sum(v => Math.Pow(v - m, 4)) / n / (var * var);
        Assert.That(m, Is.EqualTo(0).Within(5 / Math.Sqrt(n)), "mean");
        Assert.That(var, Is.EqualTo(1).Within(5 * Math.Sqrt(2.0 / n)), "variance");
        Assert.That(skew, Is.EqualTo(0).Within(5 * Math.Sqrt(6.0 / n)), "skewness");
        Assert.That(kurt, Is.EqualTo(3).Within(5 * Math.Sqrt(24.0 / n)), "kurtosis");
        // Two-sided tails: P(|z| > 2) = 0.0455, > 3 = 0.0027, > 4 = 6.33e-5 (binomial counts, 5 σ).
        foreach (var (k, p) in new[] { (2.0, 0.0455003), (3.0, 0.0026998), (4.0, 6.334e-5) })
        {
            long count = z.LongCount(v => Math.Abs(v) > k);
            double want = n * p, sd = Math.Sqrt(n * p * (1 - p));
            Assert.That(count, Is.EqualTo(want).Within(5 * sd), $"P(|z| > {k})");
        }
        Assert.That(z.Max(v => Math.Abs(v)), Is.LessThan(6.7), "32-bit uniforms cap |z| at 6.66");
        // Box–Muller pairs (2p, 2p+1) share a radius: they must still be uncorrelated, and so must neighbours.
        double pair = 0, next = 0;
        for (int i = 0; i + 1 < n; i += 2) pair += z[i] * z[i + 1];
        for (int i = 1; i + 1 < n; i += 2) next += z[i] * z[i + 1];
        Assert.That(pair / (n / 2), Is.EqualTo(0).Within(5 / Math.Sqrt(n / 2)), "pair correlation");
        Assert.That(next / (n / 2), Is.EqualTo(0).Within(5 / Math.Sqrt(n / 2)), "neighbour correlation");
    }

    [Test]
    public void ADrawDependsOnlyOnSeedAndIndex()
    {
        var whole = Draw(1001, 7, 100);
        var head = Draw(333, 7, 100);
        var tail = Draw(668, 7, 433);   // odd split: a Box–Muller pair falls across the two calls
        Assert.That(head.Concat(tail), Is.EqualTo(whole), "offsets split the stream exactly");
        Assert.That(Draw(1001, 7, 100), Is.EqualTo(whole), "same seed, same bits");
        Assert.That(Draw(1001, 8, 100), Is.Not.EqualTo(whole), "another seed, other noise");
        Assert.That(whole[0], Is.EqualTo(Ddsm.Kernels.CounterHash.Normal(7, 100)), "the shared counter-hash code");
    }

    [Test]
    public void NoiseStreamAdvancesAndRestores()
    {
        using var scope = new TensorScope();
        var s = new NoiseStream(99);
        var a = s.Next(Cpu, 3, 5).ToArray();
        Assert.That(s.Position, Is.EqualTo(15UL));
        var saved = s.GetState();
        var b = s.Next(Cpu, 4).ToArray();
        Assert.That(b, Is.EqualTo(Draw(4, 99, 15)), "continues where it stopped");
        var r = new NoiseStream(1);
        r.SetState(saved);
        Assert.That(r.Next(Cpu, 4).ToArray(), Is.EqualTo(b), "a restored stream repeats the draws");
        Assert.That(a, Is.EqualTo(Draw(15, 99, 0)));
        Assert.Throws<ArgumentException>(() => r.SetState([1UL]));
    }

    [Test]
    public void ClampUnitClipsToTheDataRange()
    {
        var x = new[] { -3f, -1f, -0.25f, 0f, 0.5f, 1f, 1.0001f, 7f, float.NegativeInfinity, float.PositiveInfinity };
        var b = Cpu.Allocate(x.Length);
        try
        {
            Cpu.CopyIn(b, 0, x);
            Cpu.Unary(UnaryOp.ClampUnit, b, b, x.Length);
            var y = new float[x.Length];
            Cpu.CopyOut(b, 0, y);
            Assert.That(y, Is.EqualTo(new[] { -1f, -1f, -0.25f, 0f, 0.5f, 1f, 1f, 1f, -1f, 1f }));
        }
        finally { Cpu.Free(b); }
    }
}
