namespace Ddsm.Runs;

/// <summary>How to load a model for sampling.</summary>
/// <param name="Strategy">uniform:W or a strategy file; null: full width (a grouped model: each group's own
/// width).</param>
/// <param name="Ema">the EMA weights (a grouped checkpoint holds only those).</param>
/// <param name="CapGroups">a grouped model runs the sampler's widths capped at each group's, even with no strategy
/// given (what a search over a step-adaptive model needs).</param>
/// <param name="Resample">a strategy file of another length than the schedule is resampled to it (else
/// refused).</param>
public sealed record LoadOptions(string? Strategy = null, bool Ema = true, bool CapGroups = false,
                                 bool Resample = false);

/// <summary>
/// Any diffusion checkpoint, ready to sample: a training checkpoint (one slimmable UNet) or a step-adaptive
/// one (one model per timestep group, dispatched by t), with its config, noise schedule, the data set it
/// was trained on (when recorded) and the strategy to sample with. Owns the models.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private readonly IDisposable _owner;

    private LoadedModel(IDisposable owner) => _owner = owner;

    /// <summary>The checkpoint file it came from.</summary>
    public required string Path { get; init; }
    public required IDenoiser Denoiser { get; init; }
    public required UNetConfig Config { get; init; }
    public required NoiseSchedule Schedule { get; init; }
    /// <summary>The data spec it was trained on (<c>--data</c>), or null where the file does not say.</summary>
    public string? DataSpec { get; init; }
    /// <summary>The strategy to pass the sampler, and what to call it in reports.</summary>
    public required StepStrategy Strategy { get; init; }
    public required string StrategyName { get; init; }
    /// <summary>
    /// One line on what kind of model this is (grouped: its groups and widths); null for a plain one.
    /// </summary>
    public string? Note { get; init; }

    /// <summary>The one UNet of a training checkpoint; null for a grouped one.</summary>
    public SlimUNet? Plain => Denoiser as SlimUNet;
    /// <summary>
    /// The group models of a step-adaptive checkpoint (for a denoiser of another width mode); null for a plain one.
    /// </summary>
    public GroupedModel? Grouped { get; init; }

    public void Dispose() => _owner.Dispose();

    /// <summary>
    /// A checkpoint file, or a run directory: a stepadapt run's grouped checkpoint, else the newest training
    /// checkpoint (in its checkpoints/ folder or in the directory itself).
    /// </summary>
    public static string Resolve(string path)
    {
        if (File.Exists(path)) return path;
        if (Directory.Exists(path))
        {
            var grouped = System.IO.Path.Combine(path, "stepadapt.safetensors");
            if (File.Exists(grouped)) return grouped;
            var sub = System.IO.Path.Combine(path, "checkpoints");
            var dir = Directory.Exists(sub) ? sub : path;
            return new CheckpointRotation(dir, int.MaxValue).Latest() ??
                throw new FileNotFoundException($"no checkpoint in {dir}");
        }
        throw new FileNotFoundException($"checkpoint '{path}' not found", path);
    }

    /// <summary>
    /// Loads the checkpoint at <paramref name="pathOrRunDir"/> (see <see cref="Resolve"/>) onto a backend.
    /// </summary>
    public static LoadedModel Load(string pathOrRunDir, Backend be, LoadOptions? options = null)
    {
        var o = options ?? new LoadOptions();
        var path = Resolve(pathOrRunDir);
        var file = SafeTensors.Read(path);   // read once: a grouped checkpoint holds every group's weights
        file.Metadata.TryGetValue("format", out var format);
        if (format == FeatureNet.Format)
            throw new ArgumentException(
                $"'{path}' is a feature net (it goes to --features), not a diffusion checkpoint");
        file.Metadata.TryGetValue("data", out var data);
        return GroupedCheckpoint.IsGrouped(file) ? LoadGrouped(file, path, be, o, data)
            : LoadPlain(file, path, be, o, data);
    }

    private static LoadedModel LoadPlain(SafeTensorsFile file, string path, Backend be, LoadOptions o, string? data)
    {
        var (cfg, meta, _) = Checkpoint.Read(file, path);
        var sched = cfg.NoiseSchedule();
        var strategy = ParseStrategy(o.Strategy ?? "uniform:1", sched, cfg, o.Resample);
        var model = new SlimUNet(be, cfg, 0);
        try { Checkpoint.LoadWeights(file, path, model, o.Ema); }
        catch { model.Dispose(); throw; }
        return new LoadedModel(model)
        {
            Path = path, Denoiser = model, Config = cfg, Schedule = sched, DataSpec = data,
            Strategy = strategy, StrategyName = o.Strategy ?? "uniform:1",
        };
    }

    private static LoadedModel LoadGrouped(SafeTensorsFile file, string path, Backend be, LoadOptions o, string? data)
    {
        if (!o.Ema)
            throw new ArgumentException("--no-ema: a step-adaptive checkpoint holds only the groups' EMA weights");
        var gm = GroupedCheckpoint.Load(file, path, be);
        try
        {
            var given = o.Strategy is null ? null : ParseStrategy(o.Strategy, gm.Schedule, gm.BaseConfig, o.Resample);
            bool capped = given is not null || o.CapGroups;
            var den = gm.Denoiser(capped ? GroupWidthMode.CappedByGroup : GroupWidthMode.FixedPerGroup);
            var ranges = string.Join(", ",
                                     gm.Groups.Groups.Select(g =>
                                         $"t {g.TFirst}–{g.TLast} → width {gm.GroupWidths[g.Index]}"));
            return new LoadedModel(gm)
            {
                Path = path, Denoiser = den, Grouped = gm, Config = gm.BaseConfig, Schedule = gm.Schedule,
                DataSpec = data,
                Strategy = given ?? StepStrategy.Uniform(gm.BaseConfig.MaxWidth, gm.Schedule.T),
                StrategyName = o.Strategy ?? "step-adaptive",
                Note = $"step-adaptive: {gm.Groups.Count} group models ({ranges})" +
                       (capped ? ", strategy widths capped at each group's" : ""),
            };
        }
        catch { gm.Dispose(); throw; }
    }

    /// <summary>A strategy spec on this schedule, every width one the model allows.</summary>
    private static StepStrategy ParseStrategy(string spec, NoiseSchedule sched, UNetConfig cfg, bool resample)
    {
        var s = StepStrategy.Parse(spec, sched.T, resample);
        foreach (var w in s.DistinctWidths()) cfg.CheckWidth(w);
        return s;
    }
}
