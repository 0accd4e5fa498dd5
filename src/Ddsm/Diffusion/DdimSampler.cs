namespace Ddsm.Diffusion;

/// <summary>DDIM with any number of steps and stochasticity η (η = 0: deterministic).</summary>
public sealed class DdimSampler : Sampler
{
    public override SamplerKind Kind => SamplerKind.Ddim;
    public override IReadOnlyList<double> EvaluationTimes(NoiseSchedule s, SamplerOptions o) =>
        SpacedTimesteps(s.T, o.Steps).Select(t => (double)t).ToArray();

    // The step table's columns: 1, t, x̂0's two coefficients, the clipped ε's two, x_prev's two, σ and the
    // noise offset.
    private const int One = 0, T = 1, X0 = 2, EpsA = 4, EpsB = 5, PrevA = 6, PrevB = 7, Std = 8, Offset = 9,
        Stride = 11;

    protected override void Run(IDenoiser model, NoiseSchedule s, StepStrategy strategy, Tensor x,
        NoiseStream noise, SamplerOptions o, Action<int, int>? progress)
    {
        var seq = SpacedTimesteps(s.T, o.Steps);
        var rows = new StepRows(seq.Length, Stride);
        var noised = new bool[seq.Length];
        for (int i = 0; i < seq.Length; i++)
        {
            double ab = s.AlphaBars[seq[i]], abPrev = i + 1 < seq.Length ? s.AlphaBars[seq[i + 1]] : 1.0;
            (rows[i, One], rows[i, T]) = (1, seq[i]);
            X0Columns(rows, i, X0, ab);
            // ε consistent with the clipped x̂0, as ADM's ddim_sample does.
            (rows[i, EpsA], rows[i, EpsB]) = (1 / Math.Sqrt(1 - ab), -Math.Sqrt(ab / (1 - ab)));
            double sigma = o.Eta * Math.Sqrt((1 - abPrev) / (1 - ab)) * Math.Sqrt(1 - ab / abPrev);
            // x_prev = √ᾱ' x̂0 + √(1−ᾱ'−σ²) ε + σ z
            (rows[i, PrevA], rows[i, PrevB]) = (Math.Sqrt(abPrev), Math.Sqrt(Math.Max(0, 1 - abPrev - sigma * sigma)));
            rows[i, Std] = sigma;
            noised[i] = sigma > 0;
            if (noised[i]) rows.Noise(i, Offset, noise, x.Length);
        }
        using var steps = new SamplerSteps(x.Backend, rows, o.StepGraphs);
        for (int i = 0; i < seq.Length; i++)
        {
            int t = seq[i];
            steps.Run(i, SamplerSteps.Key(noised[i] ? "noised" : "plain", model.Route(t, strategy[t])), step =>
            {
                int ts = seq[step];
                var eps = model.PredictEps(x, new Timestep(ts, steps[T]), strategy[ts]);
                var x0 = PredictX0(x, eps, steps[X0], o.ClipDenoised);
                if (o.ClipDenoised)
                {
                    eps.CopyFrom(x);
                    Lin(eps, steps[EpsA], x0, steps[EpsB]);
                }
                x.CopyFrom(x0);
                Lin(x, steps[PrevA], eps, steps[PrevB]);
                if (noised[step]) AddNoise(x, steps[Std], steps[One], noise.Seed, steps[Offset]);
            });
            progress?.Invoke(i + 1, seq.Length);
        }
    }
}
