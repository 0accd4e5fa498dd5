namespace Ddsm.Diffusion;

/// <summary>DDPM ancestral sampling over all T steps with the posterior variance β̃_t.</summary>
public sealed class DdpmSampler : Sampler
{
    public override SamplerKind Kind => SamplerKind.Ddpm;
    public override IReadOnlyList<double> EvaluationTimes(NoiseSchedule s, SamplerOptions o) =>
        Enumerable.Range(0, s.T).Reverse().Select(t => (double)t).ToArray();

    protected override void Run(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions o, Action<int, int>? progress)
    {
        for (int t = s.T - 1; t >= 0; t--)
        {
            using var scope = new TensorScope();
            var eps = model.PredictEps(x, t, strategy[t]);
            double ab = s.AlphaBars[t], abPrev = t > 0 ? s.AlphaBars[t - 1] : 1.0, beta = s.Betas[t];
            var x0 = PredictX0(x, eps, ab, o.ClipDenoised);
            // posterior mean = c0·x̂0 + ct·x_t
            double c0 = beta * Math.Sqrt(abPrev) / (1 - ab);
            double ct = (1 - abPrev) * Math.Sqrt(1 - beta) / (1 - ab);
            Lin(x, ct, x0, c0);
            if (t > 0) AddNoise(x, Math.Sqrt(beta * (1 - abPrev) / (1 - ab)), noise);
            progress?.Invoke(s.T - t, s.T);
        }
    }
}
