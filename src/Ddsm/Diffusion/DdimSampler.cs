namespace Ddsm.Diffusion;

/// <summary>DDIM with any number of steps and stochasticity η (η = 0: deterministic).</summary>
public sealed class DdimSampler : Sampler
{
    public override SamplerKind Kind => SamplerKind.Ddim;
    public override IReadOnlyList<double> EvaluationTimes(NoiseSchedule s, SamplerOptions o) =>
        SpacedTimesteps(s.T, o.Steps).Select(t => (double)t).ToArray();

    protected override void Run(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions o, Action<int, int>? progress)
    {
        var seq = SpacedTimesteps(s.T, o.Steps);
        for (int i = 0; i < seq.Length; i++)
        {
            using var scope = new TensorScope();
            int t = seq[i];
            double ab = s.AlphaBars[t], abPrev = i + 1 < seq.Length ? s.AlphaBars[seq[i + 1]] : 1.0;
            var eps = model.PredictEps(x, t, strategy[t]);
            var x0 = PredictX0(x, eps, ab, o.ClipDenoised);
            if (o.ClipDenoised)
            {
                // ε consistent with the clipped x̂0, as ADM's ddim_sample does.
                eps.CopyFrom(x);
                Lin(eps, 1 / Math.Sqrt(1 - ab), x0, -Math.Sqrt(ab / (1 - ab)));
            }
            double sigma = o.Eta * Math.Sqrt((1 - abPrev) / (1 - ab)) * Math.Sqrt(1 - ab / abPrev);
            // x_prev = √ᾱ' x̂0 + √(1−ᾱ'−σ²) ε + σ z
            x.CopyFrom(x0);
            Lin(x, Math.Sqrt(abPrev), eps, Math.Sqrt(Math.Max(0, 1 - abPrev - sigma * sigma)));
            if (sigma > 0) AddNoise(x, sigma, noise);
            progress?.Invoke(i + 1, seq.Length);
        }
    }
}
