using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Diffusion;

/// <summary>
/// The exact ε-predictor for data x0 ~ N(μ, diag(s²)): x_t ~ N(√ᾱμ, ᾱs² + 1 − ᾱ), so
/// E[ε | x_t] = √(1−ᾱ)·(x_t − √ᾱμ)/(ᾱs² + 1 − ᾱ). With it, every sampler must return the data
/// distribution up to its discretisation error: no trained model needed.
/// </summary>
internal sealed class GaussianDenoiser(NoiseSchedule schedule, double[] mu, double[] s) : IDenoiser
{
    public Backend Backend => CpuBackend.Instance;
    public ImageShape Image => new(mu.Length, 1);
    public List<(double t, double width)> Calls { get; } = new();
    /// <summary>A cost that depends on t and width, so a sum over the wrong calls shows.</summary>
    public long FlopsPerImage(double t, double width) => (long)Math.Round(1000 * width) + (long)Math.Round(t);

    public Tensor PredictEps(Tensor x, Timestep t, double width)
    {
        Calls.Add((t.Value, width));
        double ab = schedule.AlphaBarAt(t.Value);
        var a = x.ToArray();
        int d = mu.Length;
        for (int i = 0; i < a.Length; i++)
        {
            int k = i % d;
            a[i] = (float)(Math.Sqrt(1 - ab) * (a[i] - Math.Sqrt(ab) * mu[k]) / (ab * s[k] * s[k] + 1 - ab));
        }
        return Tensor.FromArray(x.Backend, a, x.Shape);
    }
}

public class SamplerTests
{
    private const int N = 4000, D = 8;
    private static readonly NoiseSchedule Sched = NoiseSchedule.Linear();

    private static (double[] mu, double[] s) Data()
    {
        var r = new Rng(3);
        return (Enumerable.Range(0, D).Select(_ => r.NextNormal() * 0.5).ToArray(),
                Enumerable.Range(0, D).Select(_ => 0.3 + 0.7 * r.NextDouble()).ToArray());
    }

    private static float[] Run(SamplerKind kind, SamplerOptions o, StepStrategy? strat = null, ulong seed = 5,
                               GaussianDenoiser? den = null)
    {
        var (mu, s) = Data();
        den ??= new GaussianDenoiser(Sched, mu, s);
        var rng = new Rng(seed);
        var z = new float[N * D];
        rng.FillNormal(z);
        using var x = Tensor.FromArray(CpuBackend.Instance, z, N, D / 4, 2, 2);
        Sampler.Create(kind).Sample(den, Sched, strat ?? StepStrategy.Uniform(1.0, Sched.T), x, rng, o);
        return x.ToArray();
    }

    // Tolerances: sampling error of the mean is s/√N ≈ 0.016·s, of the variance ≈ √(2/N) ≈ 2.2 %;
    // we allow 5 standard errors plus the sampler's own discretisation error (stated per case).
    [TestCase(SamplerKind.Ddpm, 1000, 0.0, 0.02)]
    [TestCase(SamplerKind.Ddim, 100, 0.0, 0.04)]
    [TestCase(SamplerKind.Ddim, 100, 1.0, 0.04)]
    [TestCase(SamplerKind.EdmHeun, 40, 0.0, 0.03)]
    [TestCase(SamplerKind.DpmSolver2M, 40, 0.0, 0.04)]
    [TestCase(SamplerKind.Ddim, 40, 0.0, 0.04)]
    public void MatchesGaussianDataMeanAndVariance(SamplerKind kind, int steps, double eta, double discretisation)
    {
        var (mu, s) = Data();
        var x = Run(kind, new SamplerOptions(steps, eta, ClipDenoised: false));
        for (int k = 0; k < D; k++)
        {
            double m = 0, v = 0;
            for (int i = 0; i < N; i++) m += x[i * D + k];
            m /= N;
            for (int i = 0; i < N; i++) v += (x[i * D + k] - m) * (x[i * D + k] - m);
            v /= N - 1;
            double se = s[k] / Math.Sqrt(N);
            Assert.That(m, Is.EqualTo(mu[k]).Within(5 * se + discretisation), $"{kind} mean, dim {k}");
            Assert.That(v / (s[k] * s[k]), Is.EqualTo(1.0).Within(5 * Math.Sqrt(2.0 / N) + 2 * discretisation),
                        $"{kind} variance ratio, dim {k}");
        }
    }

    [Test]
    public void DdimEtaZeroIsBitReproducibleAndWidthsOnlyChangeTheCall()
    {
        var o = new SamplerOptions(20, 0.0, ClipDenoised: true);
        var a = Run(SamplerKind.Ddim, o);
        var b = Run(SamplerKind.Ddim, o);
        Assert.That(b, Is.EqualTo(a), "same seed, same bits");
        // A width-independent model sampled under another strategy: identical bits, different calls.
        var (mu, s) = Data();
        var den = new GaussianDenoiser(Sched, mu, s);
        var strat = new StepStrategy(Enumerable.Range(0, Sched.T).Select(t => t < 500 ? 1.0 : 0.5).ToArray());
        var c = Run(SamplerKind.Ddim, o, strat, den: den);
        Assert.That(c, Is.EqualTo(a));
        Assert.That(den.Calls, Has.Count.EqualTo(20));
        foreach (var (t, w) in den.Calls) Assert.That(w, Is.EqualTo(t < 500 ? 1.0 : 0.5), $"width at t={t}");
    }

    [Test]
    public void EachSamplerCallsTheWidthOfItsOwnTimestep()
    {
        var (mu, s) = Data();
        var strat = new StepStrategy(Enumerable.Range(0, Sched.T).Select(t => 0.25 + 0.75 * (t % 4) / 3).ToArray());
        foreach (var kind in Enum.GetValues<SamplerKind>())
        {
            var den = new GaussianDenoiser(Sched, mu, s);
            var o = new SamplerOptions(10);
            Run(kind, o, strat, den: den);
            var sampler = Sampler.Create(kind);
            Assert.That(den.Calls.Select(c => c.t), Is.EqualTo(sampler.EvaluationTimes(Sched, o)),
                        $"{kind}: the times it calls at");
            foreach (var (t, w) in den.Calls) Assert.That(w, Is.EqualTo(strat.At(t)), $"{kind} width at t={t}");
            var (gflops, nfe) = sampler.Cost(den, Sched, strat, o);
            Assert.That(nfe, Is.EqualTo(den.Calls.Count));
            Assert.That(gflops * 1e9,
                Is.EqualTo(den.Calls.Sum(c => (double)den.FlopsPerImage(c.t, c.width))).Within(1e-3),
                $"{kind}: the cost is the denoiser's cost of the calls it makes");
        }
    }

    [Test]
    public void DifferentSeedsGiveDifferentSamples()
    {
        var o = new SamplerOptions(10, 1.0, false);
        Assert.That(Run(SamplerKind.Ddim, o, seed: 1), Is.Not.EqualTo(Run(SamplerKind.Ddim, o, seed: 2)));
    }
}
