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

    // The step table's columns: t, x̂0's two coefficients, D's two (second order), x_{i+1}'s two.
    private const int T = 0, X0 = 1, DA = 3, DB = 4, NextA = 5, NextB = 6, Stride = 7;

    protected override void Run(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions o, Action<int, int>? progress)
    {
        var seq = LogSnrSpacedTimesteps(s, o.Steps);
        var rows = new StepRows(seq.Length, Stride);
        double prevH = 0;
        for (int i = 0; i < seq.Length; i++)
        {
            double ab = s.AlphaBars[seq[i]];
            rows[i, T] = seq[i];
            X0Columns(rows, i, X0, ab);
            if (i + 1 == seq.Length) break;                // the last step: x = x̂0
            double abN = s.AlphaBars[seq[i + 1]];
            double lam = Lambda(ab), lamN = Lambda(abN), h = lamN - lam;
            double sigma = Math.Sqrt(1 - ab), sigmaN = Math.Sqrt(1 - abN), alphaN = Math.Sqrt(abN);
            // D = (1 + 1/(2r))·x̂0_i − 1/(2r)·x̂0_{i−1}, r = h_{i−1}/h_i (from the second step)
            if (i > 0)
            {
                double r = prevH / h;
                (rows[i, DA], rows[i, DB]) = (1 + 1 / (2 * r), -1 / (2 * r));
            }
            // x_{i+1} = (σ'/σ)·x − α'·(e^{−h} − 1)·D
            (rows[i, NextA], rows[i, NextB]) = (sigmaN / sigma, -alphaN * (Math.Exp(-h) - 1));
            prevH = h;
        }
        using var steps = new SamplerSteps(x.Backend, rows, o.StepGraphs);
        using var prevX0 = Tensor.Empty(x.Backend, x.Shape);   // x̂0 of the step before: state across steps
        string Shape(int i) => i + 1 == seq.Length ? "last" : i == 0 ? "first" : "second-order";
        for (int i = 0; i < seq.Length; i++)
        {
            int t = seq[i];
            steps.Run(i, SamplerSteps.Key(Shape(i), model.Route(t, strategy[t])), step =>
            {
                int ts = seq[step];
                var eps = model.PredictEps(x, new Timestep(ts, steps[T]), strategy[ts]);
                var x0 = PredictX0(x, eps, steps[X0], o.ClipDenoised);
                if (step + 1 == seq.Length)
                {
                    x.CopyFrom(x0);                      // to σ = 0: x = x̂0
                    return;
                }
                var d = x0.Clone();
                if (step > 0) Lin(d, steps[DA], prevX0, steps[DB]);
                Lin(x, steps[NextA], d, steps[NextB]);
                prevX0.CopyFrom(x0);
            });
            progress?.Invoke(i + 1, seq.Length);
        }
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
