using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Model;

namespace Ddsm.Search;

/// <summary>
/// The real search objective: sample N images with the candidate strategy and score them
/// (quality: e.g. FD of their features to the data's statistics), cost = analytic GFLOPs per image
/// of that strategy under this sampler. Common random numbers by construction: every evaluation
/// re-creates the generator from the same seed, so x_T and every per-step noise draw are identical
/// across candidates, and the only difference between two candidates is their widths.
/// <paramref name="widthsRun"/> maps a strategy to the widths the model really runs (a grouped step-adaptive
/// denoiser caps them per group); cost is counted on those.
/// </summary>
public sealed class SamplingEvaluator(
    IDenoiser model, UNetConfig config, NoiseSchedule schedule, SamplerKind sampler, SamplerOptions options,
    int count, int batch, ulong seed, Func<float[], int, double> score, Func<StepStrategy, StepStrategy>? widthsRun = null) : IStrategyEvaluator
{
    /// <summary>Images per evaluation.</summary>
    public int Count => count;

    /// <summary>Called with (images done, total) during one evaluation, for progress display.</summary>
    public Action<int, int>? OnProgress { get; set; }

    public (double quality, double cost) Evaluate(StepStrategy s)
    {
        var images = Sample(s);
        double q = score(images, count);
        return (double.IsFinite(q) ? q : double.PositiveInfinity, Cost(s));
    }

    /// <summary>Analytic GFLOPs per image of a strategy under this sampler (no sampling).</summary>
    public double Cost(StepStrategy s) => UNetFlops.StrategyGflops(config, schedule, widthsRun?.Invoke(s) ?? s, sampler, options).Gflops;

    /// <summary>The candidate's samples: (count, C, H, W) floats, same noise for every candidate.</summary>
    public float[] Sample(StepStrategy s)
    {
        int d = config.ImageChannels * config.ImageSize * config.ImageSize;
        var all = new float[count * d];
        var rng = new Rng(seed);
        var smp = Sampler.Create(sampler);
        for (int start = 0; start < count; start += batch)
        {
            int b = Math.Min(batch, count - start);
            using var scope = new TensorScope();
            var z = new float[b * d];
            rng.FillNormal(z);
            var x = Tensor.FromArray(model.Backend, z, b, config.ImageChannels, config.ImageSize, config.ImageSize);
            smp.Sample(model, schedule, s, x, rng, options);
            x.ToArray().CopyTo(all, start * d);
            OnProgress?.Invoke(start + b, count);
        }
        return all;
    }
}
