namespace Ddsm.Interop;

/// <summary>A tensor on the host: row-major shape and float32 values.</summary>
public sealed record HostTensor(int[] Shape, float[] Values)
{
    public string ShapeText => "(" + string.Join(", ", Shape) + ")";
}

/// <summary>
/// The weights found in a checkpoint file, still under the file's own names: the raw weights, the EMA
/// weights when the file has both (else the same dict), and what else the file said.
/// </summary>
public sealed record StateDicts(IReadOnlyDictionary<string, HostTensor> Raw,
    IReadOnlyDictionary<string, HostTensor> Ema, string? ConfigJson, long? Step, string Found,
    IReadOnlyList<string> Ignored);

/// <summary>
/// Reads the state dicts of a PyTorch zip checkpoint (torch.save) or a safetensors file. A torch file may be
/// a state dict itself, or a training checkpoint that holds one: the DDSM release's {net_model, ema_model,
/// optim, sched, step, x_T}, or {model|state_dict, ema, config}. A safetensors file holds raw tensors, EMA
/// tensors as "ema.NAME" (our checkpoints) and optimiser moments ("adam.…", ignored).
/// </summary>
public static class StateDictFile
{
    private static readonly string[] RawKeys = ["net_model", "model", "state_dict"];
    private static readonly string[] EmaKeys = ["ema_model", "ema"];

    public static StateDicts Read(string path)
    {
        byte[] head = new byte[8];
        using (var f = File.OpenRead(path)) head = head[..f.Read(head, 0, head.Length)];
        if (TorchZip.IsZip(head)) return ReadTorch(path);
        if (head.Length >= 2 && head[0] == 0x80 && head[1] <= 5)
            throw new DataFormatException(path, "a legacy torch.save file (PyTorch before 1.6): " +
                                                "load and save it again with a newer PyTorch");
        return ReadSafeTensors(path);
    }

    private static StateDicts ReadTorch(string path)
    {
        using var zip = TorchZip.Open(path);
        if (zip.Root is not PickleDict root || root.Items.Any(kv => kv.Key is not string))
            throw new DataFormatException(path,
                $"the checkpoint holds {TorchPickle.Describe(zip.Root)}, not a dict with string keys");
        var byKey = root.Items.ToDictionary(kv => (string)kv.Key!, kv => kv.Value);
        Dictionary<string, HostTensor> Load(PickleDict d, string where) => d.Items.ToDictionary(
            kv => (string)kv.Key!,
            kv => kv.Value is TorchTensorRef t
                ? new HostTensor(ToInts(t.Shape, path), zip.ReadFloats(t, where + kv.Key))
                : throw new DataFormatException(path,
                    $"'{where}{kv.Key}' is {TorchPickle.Describe(kv.Value)}, not a tensor"));

        if (IsStateDict(root))
        {
            var sd = Load(root, "");
            return new StateDicts(sd, sd, null, null, "a state dict", []);
        }
        string? rawKey = RawKeys.FirstOrDefault(k => byKey.GetValueOrDefault(k) is PickleDict d && IsStateDict(d));
        string? emaKey = EmaKeys.FirstOrDefault(k => byKey.GetValueOrDefault(k) is PickleDict d && IsStateDict(d));
        if (rawKey is null && emaKey is null)
            throw new DataFormatException(path,
                $"no state dict in the checkpoint (keys: {string.Join(", ", byKey.Keys.Take(20))}); " +
                $"want a state dict or a dict with {string.Join("/", RawKeys.Concat(EmaKeys))}");
        var raw = rawKey is null ? null : Load((PickleDict)byKey[rawKey]!, rawKey + ".");
        var ema = emaKey is null ? null : Load((PickleDict)byKey[emaKey]!, emaKey + ".");
        string? config = byKey.GetValueOrDefault("config") as string;
        long? step = byKey.GetValueOrDefault("step") as long?;
        var used = new[] { rawKey, emaKey, config is null ? null : "config", step is null ? null : "step" };
        var ignored = byKey.Keys.Where(k => !used.Contains(k)).ToList();
        string found = rawKey is not null && emaKey is not null
            ? $"raw weights '{rawKey}', EMA '{emaKey}'" : $"'{rawKey ?? emaKey}' (raw = EMA)";
        return new StateDicts(raw ?? ema!, ema ?? raw!, config, step, found, ignored);
    }

    private static bool IsStateDict(PickleDict d) =>
        d.Items.Count > 0 && d.Items.All(kv => kv.Key is string && kv.Value is TorchTensorRef);

    private static int[] ToInts(long[] shape, string path) =>
        shape.Select(d => d <= int.MaxValue ? (int)d : throw new DataFormatException(path, $"dimension {d} too large"))
             .ToArray();

    private static StateDicts ReadSafeTensors(string path)
    {
        var f = SafeTensors.Read(path);
        var raw = new Dictionary<string, HostTensor>();
        var ema = new Dictionary<string, HostTensor>();
        var ignored = new List<string>();
        foreach (var t in f.Tensors)
        {
            if (t.Name.StartsWith("adam.", StringComparison.Ordinal)) { ignored.Add(t.Name); continue; }
            if (t.DType is not ("F32" or "F16" or "BF16" or "F64"))
                throw new DataFormatException(path, $"tensor '{t.Name}' is {t.DType}, not floating point");
            var h = new HostTensor(ToInts(t.Shape, path), t.ToFloat());
            if (t.Name.StartsWith("ema.", StringComparison.Ordinal)) ema[t.Name[4..]] = h; else raw[t.Name] = h;
        }
        DataFormatException.Check(raw.Count + ema.Count > 0, path, "no tensors");
        string found = raw.Count > 0 && ema.Count > 0
            ? "raw and EMA ('ema.') weights" : "one set of weights (raw = EMA)";
        var r = raw.Count > 0 ? raw : ema;
        long? step = f.Metadata.TryGetValue("step", out var s)
                     && long.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : null;
        return new StateDicts(r, ema.Count > 0 ? ema : r, f.Metadata.GetValueOrDefault("config"), step, found,
            ignored.Count > 0 ? [$"{ignored.Count} optimiser tensors (adam.*)"] : []);
    }
}
