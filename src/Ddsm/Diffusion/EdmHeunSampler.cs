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

    // The step table's columns: 1, 0, σ_{i+1} − σ_i, then per evaluation (at σ_i, at σ_{i+1}) five: its t, √ᾱ,
    // −σ, 1/σ, −1/σ.
    private const int One = 0, Zero = 1, Ds = 2, First = 3, Second = 8, Stride = 13;
    private const int EvalT = 0, EvalSqrtAb = 1, EvalNegSigma = 2, EvalInvSigma = 3, EvalNegInvSigma = 4;

    protected override void Run(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions o, Action<int, int>? progress)
    {
        var sig = KarrasSigmas(s, o.Steps, o.Rho);
        var rows = new StepRows(o.Steps, Stride);
        for (int i = 0; i < o.Steps; i++)
        {
            (rows[i, One], rows[i, Zero], rows[i, Ds]) = (1, 0, sig[i + 1] - sig[i]);
            EvalColumns(rows, i, First, s, sig[i]);
            if (sig[i + 1] != 0) EvalColumns(rows, i, Second, s, sig[i + 1]);
        }
        // x_T ~ N(0, I) is x_t at σ_max; in the EDM variable that is x·√(1+σ²).
        Lin(x, Math.Sqrt(1 + sig[0] * sig[0]), x, 0);
        using var steps = new SamplerSteps(x.Backend, rows, o.StepGraphs);
        (int, double) Route(double sigma) => model.Route(s.SigmaToT(sigma), strategy.At(s.SigmaToT(sigma)));
        for (int i = 0; i < o.Steps; i++)
        {
            string key = sig[i + 1] == 0 ? SamplerSteps.Key("euler", Route(sig[i]))
                : SamplerSteps.Key("heun", Route(sig[i]), Route(sig[i + 1]));
            steps.Run(i, key, step =>
            {
                var d = Eps(model, steps, First, strategy, x, s.SigmaToT(sig[step]), o.ClipDenoised); // dx/dσ = ε
                if (sig[step + 1] == 0)
                {
                    Lin(x, steps[One], d, steps[Ds]);                                     // Euler to σ = 0
                }
                else
                {
                    var xe = x.Clone();
                    Lin(xe, steps[One], d, steps[Ds]);
                    var d2 = Eps(model, steps, Second, strategy, xe, s.SigmaToT(sig[step + 1]), o.ClipDenoised);
                    Lin(d, 0.5, d2, 0.5);
                    Lin(x, steps[One], d, steps[Ds]);
                }
            });
            progress?.Invoke(i + 1, o.Steps);
        }
    }

    /// <summary>The columns of one evaluation at noise level σ (from <paramref name="col"/>).</summary>
    private static void EvalColumns(StepRows rows, int step, int col, NoiseSchedule s, double sigma)
    {
        rows[step, col + EvalT] = s.SigmaToT(sigma);
        rows[step, col + EvalSqrtAb] = Math.Sqrt(1 / (1 + sigma * sigma));
        rows[step, col + EvalNegSigma] = -sigma;
        rows[step, col + EvalInvSigma] = 1 / sigma;
        rows[step, col + EvalNegInvSigma] = -1 / sigma;
    }

    /// <summary>
    /// ε̂ at the noise level of the evaluation whose columns start at <paramref name="col"/>, for x in the EDM
    /// variable (the ODE slope (x − D)/σ); <paramref name="t"/> is its timestep on the host (route and width).
    /// </summary>
    private static Tensor Eps(IDenoiser model, SamplerSteps steps, int col, StepStrategy strategy, Tensor x,
        double t, bool clip)
    {
        var xt = x.Clone();
        Lin(xt, steps[col + EvalSqrtAb], xt, steps[Zero]);
        var eps = model.PredictEps(xt, new Timestep(t, steps[col + EvalT]), strategy.At(t));
        if (!clip) return eps;
        // Clip the denoised D = x − σε to [−1, 1] and return the slope consistent with it.
        var den = x.Clone();
        Lin(den, steps[One], eps, steps[col + EvalNegSigma]);
        Clamp(den);
        var e = x.Clone();
        Lin(e, steps[col + EvalInvSigma], den, steps[col + EvalNegInvSigma]);
        return e;
    }
}
