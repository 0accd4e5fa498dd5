namespace Ddsm.Training;

/// <summary>
/// A training checkpoint as one safetensors file: model weights under their PyTorch-style names,
/// EMA weights under "ema.", Adam moments under "adam.m."/"adam.v.", and as metadata the step, the
/// Adam step, the RNG state, the noise stream's (seed, position), the model config, the training options, the data
/// spec (when known) and the checksums of all of it (<see cref="TensorChecksums"/>). Written atomically, so a kill
/// during a save leaves the previous checkpoint intact; loading checks the checksums (when there) and that every
/// weight used is finite.
/// </summary>
public static class Checkpoint
{
    public const string Format = "ddsm-checkpoint-v1";

    public static string Save(CheckpointRotation rotation, SandwichTrainer tr, string? dataSpec = null)
    {
        tr.Optimizer.EnsureState();
        var tensors = new List<SafeTensor>();
        void Add(string name, Tensor t) =>
            tensors.Add(SafeTensor.F32(name, t.ToArray(), t.Shape.Select(d => (long)d).ToArray()));
        var named = tr.Model.NamedParameters().ToList();
        foreach (var (n, p) in named) Add(n, p);
        for (int i = 0; i < named.Count; i++) Add("ema." + named[i].Name, tr.Ema.Shadow[i]);
        var state = tr.Optimizer.State;
        for (int i = 0; i < named.Count; i++)
        {
            Add("adam.m." + named[i].Name, state[i].M);
            Add("adam.v." + named[i].Name, state[i].V);
        }
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["step"] = tr.Step.ToString(CultureInfo.InvariantCulture),
            ["adam_step"] = tr.Optimizer.StepCount.ToString(CultureInfo.InvariantCulture),
            ["rng"] = Hex(tr.Rng.GetState()),
            ["noise"] = Hex(tr.Noise.GetState()),
            ["config"] = tr.Model.Config.ToJson(),
            ["train_options"] = tr.Options.ToJson(),
        };
        if (dataSpec is not null) meta["data"] = dataSpec;
        return rotation.Save(tr.Step, tensors, TensorChecksums.Stamp(tensors, meta));
    }

    /// <summary>
    /// A checkpoint of weights only (imported ones): raw weights, EMA weights under "ema.", the config, the
    /// train options (their noise schedule) and <paramref name="extra"/> metadata; no optimiser state, so
    /// sample, search and stepadapt read it and train --resume does not. Written atomically.
    /// </summary>
    public static void SaveWeights(string path, UNetConfig cfg, IReadOnlyDictionary<string, Interop.HostTensor> raw,
        IReadOnlyDictionary<string, Interop.HostTensor> ema, TrainOptions options,
        IReadOnlyDictionary<string, string> extra)
    {
        var tensors = new List<SafeTensor>();
        foreach (var (prefix, state) in new[] { ("", raw), ("ema.", ema) })
            foreach (var (name, t) in state.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                tensors.Add(SafeTensor.F32(prefix + name, t.Values, t.Shape.Select(d => (long)d).ToArray()));
        var meta = new Dictionary<string, string>(extra)
        {
            ["format"] = Format,
            ["step"] = "0",
            ["config"] = cfg.ToJson(),
            ["train_options"] = options.ToJson(),
        };
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        SafeTensors.Write(path, tensors, TensorChecksums.Stamp(tensors, meta));
    }

    /// <summary>Reads only the metadata and the model config (e.g. to build the model first).</summary>
    public static (UNetConfig Config, IReadOnlyDictionary<string, string> Meta,
                   SafeTensorsFile File) Read(string path) =>
        Read(SafeTensors.Read(path), path);

    /// <summary>The same for a file already read (<paramref name="path"/> names it in errors).</summary>
    public static (UNetConfig Config, IReadOnlyDictionary<string, string> Meta,
                   SafeTensorsFile File) Read(SafeTensorsFile f, string path)
    {
        if (!f.Metadata.TryGetValue("format", out var fmt) || fmt != Format)
            throw new DataFormatException(path,
                                          $"not a DDSM training checkpoint (format '{fmt ?? "missing"}', want " +
                                          $"'{Format}')");
        return (ConfigOf(f.Metadata, path), f.Metadata, f);
    }

    /// <summary>
    /// The model config in a checkpoint's metadata (a training or a grouped one), validated; for a file written
    /// before the schedule was part of the config, with the schedule of its train options.
    /// </summary>
    public static UNetConfig ConfigOf(IReadOnlyDictionary<string, string> meta, string path)
    {
        if (!meta.TryGetValue("config", out var cj)) throw new DataFormatException(path, "metadata 'config' missing");
        UNetConfig cfg;
        try { cfg = UNetConfig.FromJson(cj, meta.GetValueOrDefault("train_options")); }
        catch (System.Text.Json.JsonException e)
        {
            throw new DataFormatException(path, $"model config is not valid JSON ({e.Message})");
        }
        try { cfg.Validate(); }
        catch (ArgumentException e) { throw new DataFormatException(path, e.Message); }
        return cfg;
    }

    /// <summary>Loads model weights only (for sampling): the EMA weights when present and asked for.</summary>
    public static void LoadWeights(string path, SlimUNet model, bool ema) =>
        LoadWeights(SafeTensors.Read(path), path, model, ema);

    public static void LoadWeights(SafeTensorsFile file, string path, SlimUNet model, bool ema)
    {
        var (cfg, _, f) = Read(file, path);
        CheckSame(path, cfg, model.Config);
        model.LoadState(model.NamedParameters()
            .ToDictionary(p => p.Name, p => Get(f, path, (ema ? "ema." : "") + p.Name, p.Param)));
    }

    /// <summary>Restores everything a resumed run needs; the trainer must be built with the same config.</summary>
    public static void Restore(string path, SandwichTrainer tr)
    {
        var (cfg, meta, f) = Read(path);
        CheckSame(path, cfg, tr.Model.Config);
        var named = tr.Model.NamedParameters().ToList();
        // Read and check everything before touching the trainer: a bad file changes nothing.
        var weights = named.ToDictionary(p => p.Name, p => Get(f, path, p.Name, p.Param));
        var ema = named.Select(p => Get(f, path, "ema." + p.Name, p.Param)).ToArray();
        var m = named.Select(p => Get(f, path, "adam.m." + p.Name, p.Param)).ToArray();
        var v = named.Select(p => Get(f, path, "adam.v." + p.Name, p.Param)).ToArray();
        long step = Long(meta, "step", path), adamStep = Long(meta, "adam_step", path);
        var rng = Words(meta, "rng", 6, "RNG state", path)!;
        // Checkpoints from before the device noise stream have none: such a run resumes with fresh noise.
        var noise = Words(meta, "noise", 2, "noise stream state", path, optional: true);

        tr.Model.LoadState(weights);
        tr.Optimizer.EnsureState();
        var st = tr.Optimizer.State;
        for (int i = 0; i < named.Count; i++)
        {
            tr.Ema.Shadow[i].CopyFrom(ema[i]);
            st[i].M.CopyFrom(m[i]);
            st[i].V.CopyFrom(v[i]);
        }
        tr.Optimizer.StepCount = adamStep;
        tr.Step = step;
        tr.Rng.SetState(rng);
        if (noise is not null) tr.Noise.SetState(noise);
    }

    private static string Hex(ulong[] words) =>
        string.Join(",", words.Select(v => v.ToString("x16", CultureInfo.InvariantCulture)));

    /// <summary>Comma-separated hex words of metadata <paramref name="key"/>; null when optional and absent.</summary>
    private static ulong[]? Words(IReadOnlyDictionary<string, string> meta, string key, int count, string what,
        string path, bool optional = false)
    {
        if (!meta.TryGetValue(key, out var text))
            return optional ? null
                : throw new DataFormatException(path, $"{what} unreadable (metadata '{key}' missing)");
        ulong[] words;
        try
        {
            words = text.Split(',')
                .Select(s => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        { throw new DataFormatException(path, $"{what} unreadable ({e.Message})"); }
        if (words.Length != count)
            throw new DataFormatException(path, $"{what} has {words.Length} words, want {count}");
        return words;
    }

    private static void CheckSame(string path, UNetConfig saved, UNetConfig want)
    {
        if (!saved.SameArchitecture(want))
            throw new DataFormatException(path,
                                          $"checkpoint is of model '{saved.Name}' ({saved.ModelChannels} ch, mult " +
                                          $"{string.Join(",", saved.ChannelMult)}), " +
                                          $"not of '{want.Name}' ({want.ModelChannels} ch, mult " +
                                          $"{string.Join(",", want.ChannelMult)})");
    }

    internal static float[] Get(SafeTensorsFile f, string path, string name, Tensor like)
    {
        if (!f.Contains(name)) throw new DataFormatException(path, $"tensor '{name}' missing");
        var t = f[name];
        var want = like.Shape.Select(d => (long)d).ToArray();
        if (!t.Shape.SequenceEqual(want))
            throw new DataFormatException(path,
                                          $"tensor '{name}' has shape ({string.Join(", ", t.Shape)}), want " +
                                          $"{ShapeUtil.Str(like.Shape)}");
        var v = t.ToFloat();
        // A NaN or Inf weight makes every image NaN: refuse it here, naming the tensor, rather than sample noise.
        int bad = Array.FindIndex(v, x => !float.IsFinite(x));
        if (bad >= 0) throw new DataFormatException(path, $"tensor '{name}' holds {v[bad]} at element {bad}");
        return v;
    }

    private static long Long(IReadOnlyDictionary<string, string> meta, string key, string path) =>
        meta.TryGetValue(key, out var s) &&
            long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 0
            ? v : throw new DataFormatException(path, $"metadata '{key}' missing or not a count");
}
