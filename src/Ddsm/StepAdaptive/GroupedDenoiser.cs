namespace Ddsm.StepAdaptive;

/// <summary>How a <see cref="GroupedDenoiser"/> picks the width it runs a group's model at.</summary>
public enum GroupWidthMode
{
    /// <summary>
    /// Each group's model runs at its own fixed width; the width a sampler asks for (its step strategy) is ignored.
    /// </summary>
    FixedPerGroup,
    /// <summary>
    /// The sampler's (strategy's) width, capped at the group's width: min(strategy width, group width).
    /// Step-adaptive plus a DDSM strategy: a group model pruned to width w_g still runs narrower where the
    /// searched strategy asks for less. The group's model must allow the resulting width.
    /// </summary>
    CappedByGroup,
}

/// <summary>
/// Step-adaptive sampling (Xu et al., "Not All Steps are Equal"): one model per timestep group, each
/// possibly pruned/fine-tuned for its group's noise levels. ε̂(x, t) comes from the model of the group
/// holding round(t) (clamped to [0, T−1], rounding as <see cref="StepStrategy.At"/> does).
/// </summary>
public sealed class GroupedDenoiser : IDenoiser
{
    private readonly SlimUNet[] _models;
    private readonly double[] _widths;

    public TimestepGroups Groups { get; }
    public GroupWidthMode Mode { get; }
    public IReadOnlyList<SlimUNet> Models => _models;
    /// <summary>Per-group width used under <see cref="GroupWidthMode.FixedPerGroup"/>.</summary>
    public IReadOnlyList<double> GroupWidths => _widths;
    public Backend Backend { get; }
    public ImageShape Image => _models[0].Image;

    /// <param name="groupWidths">Fixed width per group (defaults to each model's largest width).</param>
    public GroupedDenoiser(IReadOnlyList<SlimUNet> models, TimestepGroups groups,
        IReadOnlyList<double>? groupWidths = null, GroupWidthMode mode = GroupWidthMode.FixedPerGroup)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(groups);
        if (models.Count != groups.Count)
            throw new ArgumentException($"grouped denoiser: {models.Count} models for {groups.Count} timestep groups");
        var c0 = models[0].Config;
        for (int g = 0; g < models.Count; g++)
        {
            var c = models[g].Config;
            if (c.ImageChannels != c0.ImageChannels || c.ImageSize != c0.ImageSize)
                throw new ArgumentException($"grouped denoiser: model {g} ('{c.Name}') takes " +
                                            $"{c.ImageChannels}×{c.ImageSize}², model 0 ('{c0.Name}') " +
                                            $"{c0.ImageChannels}×{c0.ImageSize}²");
            if (models[g].Backend != models[0].Backend)
                throw new ArgumentException($"grouped denoiser: model {g} is on another device");
        }
        if (groupWidths is not null && groupWidths.Count != groups.Count)
            throw new ArgumentException($"grouped denoiser: {groupWidths.Count} widths for {groups.Count} groups");
        _models = models.ToArray();
        _widths = Enumerable.Range(0, models.Count)
            .Select(g => models[g].Config.CheckWidth(groupWidths?[g] ?? models[g].Config.MaxWidth)).ToArray();
        Groups = groups;
        Mode = mode;
        Backend = models[0].Backend;
    }

    public int GroupOf(double t) => Groups.GroupOf(Math.Clamp((int)Math.Round(t), 0, Groups.T - 1));

    /// <summary>
    /// Which group's model serves a call at t asked for <paramref name="width"/>, and at which width: the group's
    /// own width, or (capped) the smaller of the two. The one decision behind <see cref="PredictEps"/>,
    /// <see cref="FlopsPerImage"/> and <see cref="EffectiveStrategy"/>.
    /// </summary>
    public (int Group, double Width) Dispatch(double t, double width)
    {
        int g = GroupOf(t);
        return (g, Mode == GroupWidthMode.FixedPerGroup ? _widths[g] : Math.Min(width, _widths[g]));
    }

    public Tensor PredictEps(Tensor x, Timestep t, double width)
    {
        var (g, w) = Dispatch(t.Value, width);
        return _models[g].PredictEps(x, t, w);
    }

    /// <summary>A step's graph is its group's model at the dispatched width.</summary>
    public (int Model, double Width) Route(double t, double width) => Dispatch(t, width);

    public long FlopsPerImage(double t, double width)
    {
        var (g, w) = Dispatch(t, width);
        return _models[g].FlopsPerImage(t, w);
    }

    /// <summary>
    /// The width this denoiser actually runs at every integer t when a sampler passes it
    /// <paramref name="requested"/>: what the base model runs to match the step-adaptive widths.
    /// </summary>
    public StepStrategy EffectiveStrategy(StepStrategy requested)
    {
        if (requested.T != Groups.T)
            throw new ArgumentException($"grouped denoiser: strategy has T = {requested.T}, groups T = {Groups.T}");
        return new StepStrategy(Enumerable.Range(0, Groups.T).Select(t => Dispatch(t, requested[t]).Width).ToArray());
    }
}
