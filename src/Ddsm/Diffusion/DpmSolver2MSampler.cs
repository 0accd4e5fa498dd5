namespace Ddsm.Diffusion;

/// <summary>
/// DPM-Solver++(2M) (Lu et al. 2022b): multistep second order in the data prediction x̂0, with
/// λ = log(α/σ) on the VP model (α = √ᾱ, σ = √(1−ᾱ)). The first step is first order; the final
/// step to σ = 0 returns x̂0 (first order, as the solver's lower-order-final does). NFE = steps.
/// Timesteps are spaced uniformly in λ (the authors' "logSNR" spacing), rounded to distinct integer
/// steps: with uniform-t spacing the last steps of the linear schedule jump far in λ and the
/// second-order extrapolation overshoots (measured: variance +26 % at 40 steps on Gaussian data).
/// </summary>
public sealed class DpmSolver2MSampler : Sampler
{
    public override SamplerKind Kind => SamplerKind.DpmSolver2M;
    public override IReadOnlyList<double> EvaluationTimes(NoiseSchedule s, SamplerOptions o) =>
        LogSnrSpacedTimesteps(s, o.Steps).Select(t => (double)t).ToArray();

    protected override void Run(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions o, Action<int, int>? progress)
    {
        var seq = LogSnrSpacedTimesteps(s, o.Steps);
        Tensor? prevX0 = null;
        double prevH = 0;
        try
        {
            for (int i = 0; i < seq.Length; i++)
            {
                int t = seq[i];
                double ab = s.AlphaBars[t];
                Tensor x0;
                using (var scope = new TensorScope())
                {
                    var eps = model.PredictEps(x, t, strategy[t]);
                    x0 = TensorScope.Escape(PredictX0(x, eps, ab, o.ClipDenoised));
                }
                if (i + 1 == seq.Length)
                {
                    x.CopyFrom(x0);                      // to σ = 0: x = x̂0
                }
                else
                {
                    double abN = s.AlphaBars[seq[i + 1]];
                    double lam = Lambda(ab), lamN = Lambda(abN), h = lamN - lam;
                    double sigma = Math.Sqrt(1 - ab), sigmaN = Math.Sqrt(1 - abN), alphaN = Math.Sqrt(abN);
                    // D = (1 + 1/(2r))·x̂0_i − 1/(2r)·x̂0_{i−1}, r = h_{i−1}/h_i
                    using var d = x0.Clone();
                    if (prevX0 is not null)
                    {
                        double r = prevH / h;
                        Lin(d, 1 + 1 / (2 * r), prevX0, -1 / (2 * r));
                    }
                    // x_{i+1} = (σ'/σ)·x − α'·(e^{−h} − 1)·D
                    Lin(x, sigmaN / sigma, d, -alphaN * (Math.Exp(-h) - 1));
                    prevH = h;
                }
                prevX0?.Dispose();
                prevX0 = x0;
                progress?.Invoke(i + 1, seq.Length);
            }
        }
        finally { prevX0?.Dispose(); }
    }

    /// <summary>Distinct integer timesteps from T−1 to 0, uniform in λ = log(α/σ) before rounding.</summary>
    public static int[] LogSnrSpacedTimesteps(NoiseSchedule s, int steps)
    {
        if (steps < 1 || steps > s.T) throw new ArgumentException($"sampler: steps {steps} must be in [1, {s.T}]");
        if (steps == 1) return [s.T - 1];
        double l0 = Lambda(s.AlphaBars[s.T - 1]), l1 = Lambda(s.AlphaBars[0]);
        var seq = new int[steps];
        int t = s.T - 1, prev = s.T;
        for (int i = 0; i < steps; i++)
        {
            double target = l0 + (l1 - l0) * i / (steps - 1);
            while (t > 0 && Lambda(s.AlphaBars[t]) < target) t--;   // λ grows as t falls
            // strictly below the previous pick, and high enough to leave room for the steps to come
            int pick = Math.Max(Math.Min(t, prev - 1), steps - 1 - i);
            seq[i] = pick;
            prev = pick;
        }
        seq[^1] = 0;
        return seq;
    }

    private static double Lambda(double alphaBar) => 0.5 * Math.Log(alphaBar / (1 - alphaBar));
}
