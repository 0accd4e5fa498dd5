namespace Ddsm.Search;

/// <summary>
/// The real search objective: sample N images with the candidate strategy and score them
/// (quality: e.g. FD of their features to the data's statistics), cost = GFLOPs per image of that
/// strategy under this sampler, as the model will run it (<see cref="Sampler.Cost"/>: a grouped
/// step-adaptive model counts the widths it caps per group). Common random numbers by construction:
/// every evaluation samples from the same seed (<see cref="BatchSampler"/>), so x_T and every per-step
/// noise draw are identical across candidates, and the only difference between two candidates is their widths.
/// </summary>
public sealed class SamplingEvaluator(IDenoiser model, NoiseSchedule schedule, SampleSpec spec,
    Func<float[], int, double> score) : IStrategyEvaluator
{
    /// <summary>Images per evaluation.</summary>
    public int Count => spec.Count;

    /// <summary>Called while sampling one evaluation, for progress display.</summary>
    public Action<SampleProgress>? OnProgress { get; set; }

    public (double quality, double cost) Evaluate(StepStrategy s)
    {
        var images = Sample(s);
        double q = score(images, spec.Count);
        return (double.IsFinite(q) ? q : double.PositiveInfinity, Cost(s));
    }

    /// <summary>GFLOPs per image of a strategy under this sampler (no sampling).</summary>
    public double Cost(StepStrategy s) => Sampler.Create(spec.Sampler).Cost(model, schedule, s, spec.Options).Gflops;

    /// <summary>The candidate's samples: (count, C, H, W) floats, same noise for every candidate.</summary>
    public float[] Sample(StepStrategy s) => BatchSampler.Sample(model, schedule, s, spec, progress: OnProgress);
}
