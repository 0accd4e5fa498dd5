namespace Ddsm.Diffusion;

/// <summary>
/// EDM's Heun 2nd-order sampler (Karras et al. 2022, Alg. 1 without churn) on the VP model, as the
/// DDSM supplement does: Karras σ schedule (ρ = 7) between the model's σ_max and σ_min, then 0.
/// Works in x = x_t/√ᾱ (so x = x_0 + σ·ε); each evaluation maps σ to a fractional timestep and
/// uses that timestep's width. NFE = 2·steps − 1.
/// </summary>
public sealed class EdmHeunSampler : Sampler
{
    public override SamplerKind Kind => SamplerKind.EdmHeun;
    /// <summary>Step i evaluates at σ_i, and (Heun's correction) at σ_{i+1} unless that is 0.</summary>
    public override IReadOnlyList<double> EvaluationTimes(NoiseSchedule s, SamplerOptions o)
    {
        var sig = KarrasSigmas(s, o.Steps, o.Rho);
        var times = new List<double>();
        for (int i = 0; i < o.Steps; i++)
        {
            times.Add(s.SigmaToT(sig[i]));
            if (sig[i + 1] != 0) times.Add(s.SigmaToT(sig[i + 1]));
        }
        return times;
    }

    public static double[] KarrasSigmas(NoiseSchedule s, int steps, double rho)
    {
        double lo = Math.Pow(s.SigmaMin, 1 / rho), hi = Math.Pow(s.SigmaMax, 1 / rho);
        var sig = new double[steps + 1];
        for (int i = 0; i < steps; i++)
            sig[i] = Math.Pow(hi + (steps == 1 ? 0 : (double)i / (steps - 1)) * (lo - hi), rho);
        sig[steps] = 0;
        return sig;
    }

    protected override void Run(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions o, Action<int, int>? progress)
    {
        var sig = KarrasSigmas(s, o.Steps, o.Rho);
        // x_T ~ N(0, I) is x_t at σ_max; in the EDM variable that is x·√(1+σ²).
        Lin(x, Math.Sqrt(1 + sig[0] * sig[0]), x, 0);
        for (int i = 0; i < o.Steps; i++)
        {
            using var scope = new TensorScope();
            double si = sig[i], sn = sig[i + 1];
            var d = Eps(model, s, strategy, x, si, o.ClipDenoised);      // dx/dσ = ε
            if (sn == 0)
            {
                Lin(x, 1, d, sn - si);                                     // Euler to σ = 0
            }
            else
            {
                var xe = x.Clone();
                Lin(xe, 1, d, sn - si);
                var d2 = Eps(model, s, strategy, xe, sn, o.ClipDenoised);
                Lin(d, 0.5, d2, 0.5);
                Lin(x, 1, d, sn - si);
            }
            progress?.Invoke(i + 1, o.Steps);
        }
    }

    /// <summary>ε̂ at noise level σ for x in the EDM variable (the ODE slope (x − D)/σ).</summary>
    private static Tensor Eps(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x, double sigma,
                              bool clip)
    {
        double t = s.SigmaToT(sigma);
        double ab = 1 / (1 + sigma * sigma);
        var xt = x.Clone();
        Lin(xt, Math.Sqrt(ab), xt, 0);
        var eps = model.PredictEps(xt, t, strategy.At(t));
        if (!clip) return eps;
        // Clip the denoised D = x − σε to [−1, 1] and return the slope consistent with it.
        var den = x.Clone();
        Lin(den, 1, eps, -sigma);
        Clamp(den);
        var e = x.Clone();
        Lin(e, 1 / sigma, den, -1 / sigma);
        return e;
    }
}
