namespace Ddsm.Diffusion;

/// <summary>The images a model makes: channels × size × size.</summary>
public readonly record struct ImageShape(int Channels, int Size)
{
    /// <summary>Floats per image.</summary>
    public int Floats => Channels * Size * Size;
}

/// <summary>How N images are drawn: the sampler and its options, N, images per forward, the seed.</summary>
public sealed record SampleSpec(SamplerKind Sampler, SamplerOptions Options, int Count, int Batch, ulong Seed)
{
    public SampleSpec Validate() =>
        Count > 0 &&
            Batch > 0 ? this
                : throw new ArgumentException($"image count ({Count}) and batch ({Batch}) must be positive");
}

/// <summary>
/// Where one sampling call is: the batch ending at image BatchEnd (of Count) has done Step of its Steps.
/// </summary>
public readonly record struct SampleProgress(int BatchEnd, int Count, int Step, int Steps);

/// <summary>
/// Sampling N images in batches from one seed, the one way every caller does it (the sample verb, the
/// search's evaluator, the training run's grids, the quickstart, the benches). One device
/// <see cref="NoiseStream"/> from the seed draws each batch's x_T and then that batch's sampler noise, batch
/// after batch; so a seed fixes the images, and two strategies sampled with the same seed see the same noise
/// (common random numbers). Nothing goes to the device; each batch's images come back once, at its end.
/// </summary>
public static class BatchSampler
{
    /// <param name="denoiserFor">The denoiser for images [start, start + count) (class guidance slices its
    /// labels per batch); null: <paramref name="model"/> for every batch.</param>
    /// <returns>(Count, C, H, W) floats.</returns>
    public static float[] Sample(IDenoiser model, NoiseSchedule schedule, StepStrategy strategy, SampleSpec spec,
        Func<int, int, IDenoiser>? denoiserFor = null, Action<SampleProgress>? progress = null)
    {
        spec.Validate();
        var shape = model.Image;
        int n = spec.Count, d = shape.Floats;
        var all = new float[(long)n * d];
        var noise = new NoiseStream(spec.Seed);
        var sampler = Sampler.Create(spec.Sampler);
        for (int start = 0; start < n; start += spec.Batch)
        {
            int b = Math.Min(spec.Batch, n - start), end = start + b;
            using var scope = new TensorScope();
            var x = noise.Next(model.Backend, b, shape.Channels, shape.Size, shape.Size);
            var den = denoiserFor?.Invoke(start, b) ?? model;
            sampler.Sample(den, schedule, strategy, x, noise, spec.Options,
                (i, steps) => progress?.Invoke(new SampleProgress(end, n, i, steps)));
            x.ToArray().CopyTo(all, (long)start * d);
        }
        return all;
    }
}
