namespace Ddsm.Eval;

// Saving and loading a trained feature net as safetensors, with what it was trained on as metadata.
public sealed partial class FeatureNet
{
    public const string Format = "ddsm-featurenet-v1";

    /// <summary>Writes the weights (F32, PyTorch-style names) and the architecture, data set and accuracies
    /// as metadata, atomically.</summary>
    public void Save(string path)
    {
        var tensors = NamedParameters()
            .Select(p => SafeTensor.F32(p.Name, p.Param.ToArray(), p.Param.Shape.Select(d => (long)d).ToArray()))
            .ToList();
        static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
        static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["dataset"] = Info.Dataset,
            ["input_channels"] = I(InputChannels),
            ["image_size"] = I(ImageSize),
            ["classes"] = I(Classes),
            ["width1"] = I(Width1),
            ["width2"] = I(Width2),
            ["feature_dim"] = I(FeatureDim),
            ["steps"] = I(Info.Steps),
            ["train_accuracy"] = R(Info.TrainAccuracy),
            ["heldout_accuracy"] = R(Info.HeldOutAccuracy),
            ["fingerprint"] = Fingerprint(),
        };
        if (Info.DataSpec is not null) meta["data"] = Info.DataSpec;
        SafeTensors.Write(path, tensors, TensorChecksums.Stamp(tensors, meta));
    }

    /// <summary>
    /// Loads a net saved by <see cref="Save"/>. Everything is checked before a weight is used: the
    /// format tag, the architecture numbers (bounded, so a hostile header cannot ask for a huge net),
    /// every tensor's presence, dtype and shape, no extra tensors, and the weights' fingerprint.
    /// Any mismatch is a <see cref="DataFormatException"/> naming the file and the problem.
    /// </summary>
    public static FeatureNet Load(Backend be, string path)
    {
        var f = SafeTensors.Read(path);
        var m = f.Metadata;
        m.TryGetValue("format", out var fmt);
        DataFormatException.Check(fmt == Format, path,
                                  $"not a DDSM feature net (format '{fmt ?? "missing"}', want '{Format}')");
        int Int(string key, int lo, int hi) =>
            m.TryGetValue(key, out var s) &&
                int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= lo && v <= hi
                ? v
                : throw new DataFormatException(path,
                                                $"metadata '{key}' missing or outside [{lo}, {hi}] (got " +
                                                $"'{s ?? "missing"}')");
        double Real(string key) =>
            m.TryGetValue(key, out var s) &&
                double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : double.NaN;
        int channels = Int("input_channels", 1, 64), size = Int("image_size", 16, 1024),
            classes = Int("classes", 2, 256);
        int w1 = Int("width1", 1, 1024), w2 = Int("width2", 1, 1024), steps = Int("steps", 0, int.MaxValue);
        DataFormatException.Check(size % 4 == 0, path, $"image size {size} is not a multiple of 4");
        DataFormatException.Check(Int("feature_dim", 1, 1 << 20) == FeatureDim, path,
                                  $"feature dim {m["feature_dim"]} is not {FeatureDim}");

        var net = new FeatureNet(be, channels, classes, 0, size, w1, w2);
        try
        {
            var mine = net.NamedParameters().ToList();
            var names = mine.Select(p => p.Name).ToHashSet();
            var extra = f.Tensors.Select(t => t.Name).Where(n => !names.Contains(n)).ToList();
            DataFormatException.Check(extra.Count == 0, path,
                                      $"unexpected tensors: {string.Join(", ", extra.Take(5))}");
            var state = new Dictionary<string, float[]>();
            foreach (var (name, p) in mine)
            {
                DataFormatException.Check(f.Contains(name), path, $"tensor '{name}' missing");
                var t = f[name];
                DataFormatException.Check(t.DType == "F32", path, $"tensor '{name}' is {t.DType}, want F32");
                DataFormatException.Check(t.Shape.SequenceEqual(p.Shape.Select(d => (long)d)), path,
                    $"tensor '{name}' has shape ({string.Join(", ", t.Shape)}), want {ShapeUtil.Str(p.Shape)}");
                var v = t.ToFloat();
                DataFormatException.Check(v.All(float.IsFinite), path, $"tensor '{name}' holds NaN or Inf");
                state[name] = v;
            }
            net.LoadState(state);
            if (m.TryGetValue("fingerprint", out var fp))
                DataFormatException.Check(fp == net.Fingerprint(), path,
                                          $"weights do not match their fingerprint {fp} (file corrupted or edited)");
            m.TryGetValue("dataset", out var dataset);
            net.Info = new FeatureNetInfo(dataset ?? "", steps, Real("train_accuracy"), Real("heldout_accuracy"),
                m.GetValueOrDefault("data"));
            return net;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }
}
