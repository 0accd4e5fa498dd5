namespace Ddsm.Training;

/// <summary>Sandwich-rule training settings (US-Nets, as DDSM trains its supernet).</summary>
public sealed record TrainOptions
{
    public int BatchSize { get; init; } = 32;
    /// <summary>Widths per step: the largest, the smallest, and n−2 random middle ones.</summary>
    public int SandwichN { get; init; } = 4;
    public float Lr { get; init; } = 2e-4f;
    public int WarmupSteps { get; init; } = 200;
    public float ClipNorm { get; init; } = 1f;
    public float WeightDecay { get; init; }
    public float EmaDecay { get; init; } = 0.9999f;
    /// <summary>Smaller widths also regress the largest width's detached prediction (weight 1).</summary>
    public bool InplaceDistill { get; init; }
    public bool HorizontalFlip { get; init; }
    /// <summary>
    /// Timesteps drawn for training, [TMin, TMax] inclusive (null = all): step-adaptive training
    /// fine-tunes each timestep group's model on its own range only.
    /// </summary>
    public int? TMin { get; init; }
    public int? TMax { get; init; }
    /// <summary>Class-conditional models: probability a label is replaced by the null class (CFG training).</summary>
    public double LabelDropout { get; init; } = 0.1;

    public string ToJson() => JsonSerializer.Serialize(this);
    public static TrainOptions FromJson(string s) => JsonSerializer.Deserialize<TrainOptions>(s) ??
        throw new FormatException("train options JSON is empty");

    public void Validate()
    {
        if (BatchSize <= 0) throw new ArgumentException($"batch size must be > 0, got {BatchSize}");
        if (SandwichN < 1) throw new ArgumentException($"sandwich n must be ≥ 1, got {SandwichN}");
        if (!(Lr > 0) || !float.IsFinite(Lr)) throw new ArgumentException($"learning rate must be > 0, got {Lr}");
        if (!(EmaDecay >= 0 && EmaDecay < 1))
            throw new ArgumentException($"EMA decay must be in [0, 1), got {EmaDecay}");
        if (!(LabelDropout >= 0 && LabelDropout <= 1))
            throw new ArgumentException($"label dropout must be in [0, 1], got {LabelDropout}");
        if (TMin < 0 || TMin > TMax)
            throw new ArgumentException($"timestep range [{TMin}, {TMax}] must start at ≥ 0 and not be empty");
    }

    /// <summary>
    /// The timestep range drawn on a schedule of <paramref name="T"/> steps (checked to lie within it).
    /// </summary>
    public (int First, int Last) TimestepRange(int T)
    {
        int lo = TMin ?? 0, hi = TMax ?? T - 1;
        if (lo < 0 || hi >= T || lo > hi)
            throw new ArgumentException($"timestep range [{lo}, {hi}] must lie within [0, {T - 1}] and not be empty");
        return (lo, hi);
    }
}
