namespace Ddsm.StepAdaptive;

/// <summary>
/// A step-adaptive model loaded from a <see cref="GroupedCheckpoint"/>: one slimmable UNet per timestep
/// group (all of the base layout, each allowing the widths up to its group's), the groups and widths.
/// Owns the models.
/// </summary>
public sealed class GroupedModel : IDisposable
{
    public required UNetConfig BaseConfig { get; init; }
    public required NoiseSchedule Schedule { get; init; }
    public required TimestepGroups Groups { get; init; }
    public required SlimUNet[] Models { get; init; }
    public required double[] GroupWidths { get; init; }
    /// <summary>The plan the run was made with (null when the file carries none).</summary>
    public StepAdaptivePlan? Plan { get; init; }

    /// <summary>Each group at its own width, or (CappedByGroup) a step strategy capped at it.</summary>
    public GroupedDenoiser Denoiser(GroupWidthMode mode = GroupWidthMode.FixedPerGroup) =>
        new(Models, Groups, GroupWidths, mode);

    public void Dispose() { foreach (var m in Models) m.Dispose(); }
}

/// <summary>
/// One safetensors file holding every group's weights (the EMA weights the groups were fine-tuned to,
/// under "group{g}." + the PyTorch-style parameter name), and as metadata the base model config (with its
/// noise schedule; files written before that took it from the base run's train options), the grouping (count, mode and
/// each group's t range, checked against a rebuild on load), each group's width and the plan. Full-size tensors: a
/// group model slims by prefix like any other, so its pruned channels are simply never read. Written atomically.
/// </summary>
public static class GroupedCheckpoint
{
    public const string Format = "ddsm-stepadapt-v1";

    public static bool IsGrouped(SafeTensorsFile file) => file.Metadata.TryGetValue("format", out var f) && f == Format;

    /// <param name="models">Group models, index-aligned with the groups, holding the weights to save.</param>
    /// <param name="dataSpec">the data set the groups were fine-tuned on (null: not recorded).</param>
    public static void Save(string path, UNetConfig baseCfg, TimestepGroups groups, IReadOnlyList<SlimUNet> models,
        StepAdaptivePlan plan, string baseCheckpoint, string? dataSpec = null)
    {
        if (models.Count != groups.Count)
            throw new ArgumentException($"grouped checkpoint: {models.Count} models for {groups.Count} groups");
        var tensors = new List<SafeTensor>();
        for (int g = 0; g < models.Count; g++)
        {
            if (!models[g].Config.SameArchitecture(baseCfg))
                throw new ArgumentException($"grouped checkpoint: model {g} is not of the base layout");
            foreach (var (n, p) in models[g].NamedParameters())
                tensors.Add(SafeTensor.F32($"group{g}.{n}", p.ToArray(), p.Shape.Select(d => (long)d).ToArray()));
        }
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["config"] = baseCfg.ToJson(),
            ["groups"] = groups.Count.ToString(CultureInfo.InvariantCulture),
            ["grouping"] = groups.Mode.ToString(),
            ["group_ranges"] = Ranges(groups),
            ["group_widths"] =
                string.Join(",", plan.GroupWidths.Select(w => w.ToString("R", CultureInfo.InvariantCulture))),
            ["plan"] = plan.ToJson(),
            ["base_checkpoint"] = baseCheckpoint,
        };
        if (dataSpec is not null) meta["data"] = dataSpec;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        SafeTensors.Write(path, tensors, TensorChecksums.Stamp(tensors, meta));
    }

    public static GroupedModel Load(string path, Backend backend) => Load(SafeTensors.Read(path), path, backend);

    /// <summary>From a file already read (<paramref name="path"/> names it in errors).</summary>
    public static GroupedModel Load(SafeTensorsFile f, string path, Backend backend)
    {
        var meta = f.Metadata;
        string Meta(string key) =>
            meta.TryGetValue(key, out var v) ? v : throw new DataFormatException(path, $"metadata '{key}' missing");
        if (!meta.TryGetValue("format", out var fmt) || fmt != Format)
            throw new DataFormatException(path,
                                          $"not a step-adaptive checkpoint (format '{fmt ?? "missing"}', want " +
                                          $"'{Format}')");
        var cfg = Checkpoint.ConfigOf(meta, path);
        StepAdaptivePlan? plan;
        try { plan = meta.TryGetValue("plan", out var pj) ? StepAdaptivePlan.FromJson(pj) : null; }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException)
        { throw new DataFormatException(path, $"plan unreadable ({e.Message})"); }

        var sched = cfg.NoiseSchedule();
        if (!int.TryParse(Meta("groups"), NumberStyles.None, CultureInfo.InvariantCulture, out int count) ||
            count < 1 || count > sched.T)
            throw new DataFormatException(path,
                                          $"metadata 'groups' = '{meta["groups"]}' is not a group count in " +
                                          $"[1, {sched.T}]");
        if (!Enum.TryParse<GroupingMode>(Meta("grouping"), out var mode) || !Enum.IsDefined(mode))
            throw new DataFormatException(path,
                                          $"metadata 'grouping' = '{meta["grouping"]}' is not one of " +
                                          $"{string.Join(", ", Enum.GetNames<GroupingMode>())}");
        TimestepGroups groups;
        try { groups = TimestepGroups.Build(sched, count, mode); }
        catch (ArgumentException e) { throw new DataFormatException(path, e.Message); }
        if (Ranges(groups) != Meta("group_ranges"))
            throw new DataFormatException(path,
                                          $"group t ranges '{meta["group_ranges"]}' differ from this schedule's " +
                                          $"grouping '{Ranges(groups)}'");
        var widths = Meta("group_widths").Split(',').Select(s =>
            double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var w) &&
                cfg.Widths.Any(a => Math.Abs(a - w) < 1e-9) ? w
                : throw new DataFormatException(path,
                                                $"group width '{s}' is not one of the model's widths " +
                                                $"{string.Join(", ", cfg.Widths)}")).ToArray();
        if (widths.Length != count)
            throw new DataFormatException(path, $"{widths.Length} group widths for {count} groups");

        var models = new List<SlimUNet>();
        try
        {
            for (int g = 0; g < count; g++)
            {
                var m = new SlimUNet(backend, StepAdaptivePlan.GroupConfig(cfg, g, widths[g]), 0);
                models.Add(m);
                // Read and check every tensor of the group before loading any of it.
                m.LoadState(m.NamedParameters()
                    .ToDictionary(p => p.Name, p => Checkpoint.Get(f, path, $"group{g}.{p.Name}", p.Param)));
            }
        }
        catch
        {
            foreach (var m in models) m.Dispose();
            throw;
        }
        return new GroupedModel
        {
            BaseConfig = cfg, Schedule = sched, Groups = groups, Models = models.ToArray(), GroupWidths = widths,
            Plan = plan,
        };
    }

    private static string Ranges(TimestepGroups groups) =>
        string.Join(",",
                    groups.Groups.Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.TFirst}-{g.TLast}")));
}
