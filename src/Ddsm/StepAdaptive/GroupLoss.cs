namespace Ddsm.StepAdaptive;

/// <summary>Fixed evaluation batches for <see cref="GroupLoss"/>: batches × batch size images, one seed.</summary>
public sealed record GroupLossOptions(int Batches = 4, int BatchSize = 32, ulong Seed = 17);

/// <summary>
/// ε-prediction MSE of a model at one width on a timestep range, without gradients, on batches that
/// depend only on the seed and the range (common random numbers: two widths, two groups' models or a
/// model before and after pruning see the same images, timesteps and noise).
/// </summary>
public static class GroupLoss
{
    public static double Mean(SlimUNet model, ImageDataset data, NoiseSchedule schedule, int tFirst, int tLast,
        double width, GroupLossOptions? options = null)
    {
        options ??= new GroupLossOptions();
        var cfg = model.Config;
        cfg.CheckWidth(width);
        if (data.Count == 0) throw new ArgumentException($"group loss: data set '{data.Name}' is empty");
        if (options.Batches <= 0 || options.BatchSize <= 0)
            throw new ArgumentException("group loss: batches and batch size must be positive");
        var rng = new Rng(options.Seed);
        int b = options.BatchSize, d = data.ImageSize;
        var idx = new int[b];
        float[] x0 = new float[b * d], xt = new float[b * d], eps = new float[b * d], ts = new float[b];
        double total = 0;
        for (int batch = 0; batch < options.Batches; batch++)
        {
            for (int i = 0; i < b; i++) idx[i] = rng.NextInt(data.Count);
            data.Batch(idx, x0);
            NoisedBatch.Fill(schedule, rng, tFirst, tLast, x0, xt, eps, ts);
            using var scope = new TensorScope();
            using (Tape.NoGrad())
            {
                var x = Tensor.FromArray(model.Backend, xt, b, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize);
                var pred = model.Forward(x, Tensor.FromArray(model.Backend, ts, b), width);
                total += F.MseLoss(pred, Tensor.FromArray(model.Backend, eps, x.Shape)).Item();
            }
        }
        return total / options.Batches;
    }

    /// <summary>loss[g][i]: the model's loss on group g's timesteps at widths[i].</summary>
    public static double[][] PerGroupAndWidth(SlimUNet model, ImageDataset data, NoiseSchedule schedule,
        TimestepGroups groups, IReadOnlyList<double> widths, GroupLossOptions? options = null) =>
        groups.Groups.Select(g =>
            widths.Select(w => Mean(model, data, schedule, g.TFirst, g.TLast, w, options)).ToArray()).ToArray();
}
