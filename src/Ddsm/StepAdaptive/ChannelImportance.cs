namespace Ddsm.StepAdaptive;

/// <summary>Importance per element (channel or head) of every channel space, by space name.</summary>
public sealed record ImportanceScores(IReadOnlyDictionary<string, double[]> BySpace, int Batches, int TFirst,
                                      int TLast);

/// <summary>Settings of an importance estimate: batches × batch size samples, at one width.</summary>
public sealed record ImportanceOptions(int Batches = 8, int BatchSize = 16, double? Width = null, ulong Seed = 1);

/// <summary>
/// First-order Taylor importance (Molchanov et al.) for pruning a slimmable UNet to one timestep group
/// — our stand-in for the LM proxy of "Not All Steps are Equal" (Xu et al. 2312.13307). For each batch,
/// the ε-prediction MSE loss (as in <see cref="Training.SandwichTrainer"/>, t uniform in the group's range)
/// is back-propagated and every parameter element contributes |w·∂L/∂w|, the first-order change of the
/// loss if that element were zeroed. An element belongs to the output channel it produces — the rows of
/// conv/linear weights and biases and the GroupNorm γ/β of the channel (input columns are not counted) —
/// and per-channel sums are added over all layers sharing the channel's space and over the batches.
/// Attention heads score the qkv rows of the head. The model's gradients are zeroed before and after.
/// </summary>
public static class ChannelImportance
{
    public static ImportanceScores Compute(SlimUNet model, ImageDataset data, NoiseSchedule schedule, int tFirst,
                                           int tLast, ImportanceOptions? options = null)
    {
        options ??= new ImportanceOptions();
        var cfg = model.Config;
        data.CheckFits(cfg.ImageChannels, cfg.ImageSize, $"importance of model '{cfg.Name}'");
        if (tFirst < 0 || tLast >= schedule.T || tFirst > tLast)
            throw new ArgumentException($"importance: t range [{tFirst}, {tLast}] outside [0, {schedule.T})");
        if (options.Batches <= 0 || options.BatchSize <= 0)
            throw new ArgumentException("importance: batches and batch size must be positive");
        double width = cfg.CheckWidth(options.Width ?? cfg.MaxWidth);

        var graph = ChannelPermutation.Graph(model);
        // Σ|w·g| per row
        var perParam = model.NamedParameters().ToDictionary(p => p.Name, p => new double[p.Param.Shape[0]]);
        var rng = new Rng(options.Seed);
        int b = options.BatchSize, d = data.ImageSize;
        var idx = new int[b];
        float[] x0 = new float[b * d], xt = new float[b * d], eps = new float[b * d], ts = new float[b];
        var be = model.Backend;
        model.ZeroGrad();
        try
        {
            for (int batch = 0; batch < options.Batches; batch++)
            {
                for (int i = 0; i < b; i++) idx[i] = rng.NextInt(data.Count);
                data.Batch(idx, x0);
                NoisedBatch.Fill(schedule, rng, tFirst, tLast, x0, xt, eps, ts);
                using (new TensorScope())
                {
                    var xT = Tensor.FromArray(be, xt, b, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize);
                    var epsT = Tensor.FromArray(be, eps, xT.Shape);
                    var tT = Tensor.FromArray(be, ts, b);
                    Tape.Backward(F.MseLoss(model.Forward(xT, tT, width), epsT));
                }
                foreach (var (name, p) in model.NamedParameters())
                {
                    if (p.Grad is null) continue;
                    float[] w = p.ToArray(), g = p.Grad.ToArray();
                    var rows = perParam[name];
                    int inner = w.Length / rows.Length;
                    for (int r = 0; r < rows.Length; r++)
                    {
                        double s = 0;
                        for (int k = r * inner; k < (r + 1) * inner; k++) s += Math.Abs((double)w[k] * g[k]);
                        rows[r] += s;
                    }
                }
                model.ZeroGrad();
            }
        }
        finally { model.ZeroGrad(); }

        var bySpace = new Dictionary<string, double[]>();
        foreach (var s in graph.Spaces)
        {
            var score = new double[s.Size];
            foreach (var u in s.Uses.Where(u => u.Axis == SpaceAxis.Rows))
            {
                var rows = perParam[u.Param];
                for (int i = 0; i < s.Size; i++)
                    for (int k = 0; k < u.Unit; k++) score[i] += rows[u.Offset + i * u.Unit + k];
            }
            bySpace[s.Name] = score;
        }
        return new ImportanceScores(bySpace, options.Batches, tFirst, tLast);
    }

    /// <summary>The same for one timestep group.</summary>
    public static ImportanceScores Compute(SlimUNet model, ImageDataset data, NoiseSchedule schedule,
                                           TimestepGroup group, ImportanceOptions? options = null) =>
        Compute(model, data, schedule, group.TFirst, group.TLast, options);
}
