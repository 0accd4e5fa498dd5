using Ddsm.Engine.Cpu;

namespace Ddsm.Interop;

/// <summary>Whose parameter names a state dict uses.</summary>
public enum StateDictLayout
{
    /// <summary>Ours (ADM's names, as SlimUNet and bench/pytorch/slim_unet.py have them).</summary>
    Ours,
    /// <summary>The DDSM release's CIFAR-10 UNet (<see cref="DdsmReleaseLayout"/>).</summary>
    DdsmRelease,
}

/// <summary>What an import did, for the caller to display.</summary>
public sealed record ImportResult(string OutPath, UNetConfig Config, string ConfigSource, long Parameters, string Found,
    IReadOnlyList<string> Ignored, long? SourceStep);

/// <summary>
/// <c>ddsm import</c>: a PyTorch checkpoint (torch.save zip, through the restricted unpickler) or a safetensors
/// state dict, in our layout or the DDSM release's, checked name by name and shape by shape against the
/// model of a preset, and written as a checkpoint that <c>sample</c>, <c>search</c> and <c>stepadapt</c> read
/// (raw and EMA weights, the config; no optimiser state).
/// </summary>
public static class CheckpointImport
{
    public static StateDictLayout ParseLayout(string name) => name.ToLowerInvariant() switch
    {
        "ours" => StateDictLayout.Ours,
        "ddsm-release" => StateDictLayout.DdsmRelease,
        _ => throw new ArgumentException($"unknown layout '{name}' (ours, ddsm-release)"),
    };

    /// <param name="preset">A preset name or config JSON file; null: the file's own config, else the layout's.</param>
    public static ImportResult Run(string source, StateDictLayout layout, string outPath, string? preset = null)
    {
        var sd = StateDictFile.Read(source);
        var (cfg, cfgSource) = ResolveConfig(preset, sd.ConfigJson, layout, source);
        var raw = ToOurs(sd.Raw, layout, cfg, source);
        var ema = ReferenceEquals(sd.Raw, sd.Ema) ? raw : ToOurs(sd.Ema, layout, cfg, source);
        // The release's table has a row per diffusion step; ours carry T in the config (default 1000).
        if (layout == StateDictLayout.DdsmRelease)
            cfg = cfg with { DiffusionSteps = sd.Raw[DdsmReleaseLayout.TimeTable].Shape[0] };
        var meta = new Dictionary<string, string>
        {
            ["imported_from"] = Path.GetFileName(source),
            ["imported_layout"] = layout == StateDictLayout.Ours ? "ours" : "ddsm-release",
        };
        if (sd.Step is { } step) meta["source_step"] = step.ToString(CultureInfo.InvariantCulture);
        Checkpoint.SaveWeights(outPath, cfg, raw, ema, new TrainOptions(), meta);
        long count = raw.Values.Sum(t => (long)t.Values.Length);
        return new ImportResult(outPath, cfg, cfgSource, count, sd.Found, sd.Ignored, sd.Step);
    }

    /// <summary>The preset or config file given, else the config the file carries, else the layout's preset.</summary>
    public static (UNetConfig Config, string Source) ResolveConfig(string? preset, string? embeddedJson,
        StateDictLayout layout, string path)
    {
        if (preset is not null)
        {
            if (!File.Exists(preset)) return (UNetConfig.Preset(preset), $"preset {preset}");
            try { return (UNetConfig.FromJson(File.ReadAllText(preset)), $"config {preset}"); }
            catch (System.Text.Json.JsonException e)
            {
                throw new ArgumentException($"--preset {preset}: not a UNet config JSON ({e.Message})");
            }
        }
        if (embeddedJson is not null)
        {
            try { return (UNetConfig.FromJson(embeddedJson), "the file's config"); }
            catch (System.Text.Json.JsonException e)
            {
                throw new DataFormatException(path, $"config is not valid JSON ({e.Message})");
            }
        }
        if (layout == StateDictLayout.DdsmRelease) return (UNetConfig.Cifar10Ddsm, "preset cifar10-ddsm");
        throw new ArgumentException($"{path} carries no model config: name one with --preset " +
                                    $"({string.Join(", ", UNetConfig.PresetNames)}, or a config JSON file)");
    }

    /// <summary>A state dict under our names, each tensor checked against the config's model.</summary>
    public static Dictionary<string, HostTensor> ToOurs(IReadOnlyDictionary<string, HostTensor> src,
        StateDictLayout layout, UNetConfig cfg, string path)
    {
        // DataParallel's "module." prefix goes, in either layout.
        var ours = layout == StateDictLayout.DdsmRelease
            ? DdsmReleaseLayout.ToOurs(src, cfg, path)
            : src.ToDictionary(kv => kv.Key.StartsWith("module.", StringComparison.Ordinal) ? kv.Key[7..] : kv.Key,
                               kv => kv.Value);
        CheckAgainstModel(ours, cfg, path);
        return ours;
    }

    private static void CheckAgainstModel(Dictionary<string, HostTensor> state, UNetConfig cfg, string path)
    {
        cfg.Validate();
        using var model = new SlimUNet(CpuBackend.Instance, cfg, 0);
        var want = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param.Shape);
        var missing = want.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var unexpected = state.Keys.Where(k => !want.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var wrong = want.Where(kv => state.TryGetValue(kv.Key, out var t) && !t.Shape.SequenceEqual(kv.Value))
            .Select(kv => $"{kv.Key} {state[kv.Key].ShapeText} want ({string.Join(", ", kv.Value)})").ToList();
        if (missing.Count + unexpected.Count + wrong.Count == 0) return;
        static string List(string what, List<string> xs) =>
            xs.Count == 0 ? "" : $" {xs.Count} {what}: {string.Join(", ", xs.Take(5))}{(xs.Count > 5 ? ", …" : "")};";
        string target = $"model '{cfg.Name}' ({cfg.ModelChannels} ch, mult {string.Join(",", cfg.ChannelMult)})";
        throw new DataFormatException(path, $"does not fit {target}:" + List("missing", missing) +
                                            List("unexpected", unexpected) + List("of another shape", wrong));
    }
}
