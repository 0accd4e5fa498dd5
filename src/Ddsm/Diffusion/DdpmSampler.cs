namespace Ddsm.Diffusion;

/// <summary>DDPM ancestral sampling over all T steps with the posterior variance β̃_t.</summary>
public sealed class DdpmSampler : Sampler
{
    public override SamplerKind Kind => SamplerKind.Ddpm;
    public override IReadOnlyList<double> EvaluationTimes(NoiseSchedule s, SamplerOptions o) =>
        Enumerable.Range(0, s.T).Reverse().Select(t => (double)t).ToArray();

    // The step table's columns: 1, t, x̂0's two coefficients, the posterior mean's, the noise's σ and offset.
    private const int One = 0, T = 1, X0 = 2, C0 = 4, Ct = 5, Std = 6, Offset = 7, Stride = 9;

    protected override void Run(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions o, Action<int, int>? progress)
    {
        var rows = new StepRows(s.T, Stride);
        for (int i = 0; i < s.T; i++)
        {
            int t = s.T - 1 - i;
            double ab = s.AlphaBars[t], abPrev = t > 0 ? s.AlphaBars[t - 1] : 1.0, beta = s.Betas[t];
            (rows[i, One], rows[i, T]) = (1, t);
            X0Columns(rows, i, X0, ab);
            // posterior mean = c0·x̂0 + ct·x_t
            rows[i, C0] = beta * Math.Sqrt(abPrev) / (1 - ab);
            rows[i, Ct] = (1 - abPrev) * Math.Sqrt(1 - beta) / (1 - ab);
            rows[i, Std] = Math.Sqrt(beta * (1 - abPrev) / (1 - ab));
            if (t > 0) rows.Noise(i, Offset, noise, x.Length);
        }
        using var steps = new SamplerSteps(x.Backend, rows, o.StepGraphs);
        for (int i = 0; i < s.T; i++)
        {
            int t = s.T - 1 - i;
            steps.Run(i, SamplerSteps.Key(t > 0 ? "noised" : "last", model.Route(t, strategy[t])), step =>
            {
                int ts = s.T - 1 - step;
                var eps = model.PredictEps(x, new Timestep(ts, steps[T]), strategy[ts]);
                var x0 = PredictX0(x, eps, steps[X0], o.ClipDenoised);
                Lin(x, steps[Ct], x0, steps[C0]);
                if (ts > 0) AddNoise(x, steps[Std], steps[One], noise.Seed, steps[Offset]);
            });
            progress?.Invoke(i + 1, s.T);
        }
    }
}
