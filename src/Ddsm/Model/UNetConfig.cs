using System.Text.Json.Serialization;

namespace Ddsm.Model;

/// <summary>
/// The slimmable ADM UNet's hyper-parameters. Widths are fractions of the full width; every layer
/// runs round(C·w) channels, which must divide into <see cref="Groups"/> GroupNorm groups (and into
/// heads of <see cref="HeadChannels"/> where there is attention) for every allowed width.
/// </summary>
public sealed record UNetConfig
{
    public string Name { get; init; } = "custom";
    public int ImageChannels { get; init; } = 1;
    public int ImageSize { get; init; } = 32;
    public int ModelChannels { get; init; } = 64;
    public int[] ChannelMult { get; init; } = [1, 2, 2];
    public int NumResBlocks { get; init; } = 2;
    /// <summary>Resolutions (in pixels) whose blocks get self-attention.</summary>
    public int[] AttentionResolutions { get; init; } = [16];
    public int HeadChannels { get; init; } = 32;
    /// <summary>
    /// 0: attention heads of <see cref="HeadChannels"/> channels, so slimming drops whole heads (ADM's
    /// num_head_channels). &gt; 0: this many heads whose channels shrink with the width (ADM's num_heads;
    /// the DDSM release has one head over all active channels).
    /// </summary>
    public int AttentionHeads { get; init; }
    public float Dropout { get; init; } = 0.1f;
    public bool ScaleShiftNorm { get; init; } = true;
    public int Groups { get; init; } = 16;
    /// <summary>Class-conditional when > 0 (a null class is added for classifier-free guidance).</summary>
    public int NumClasses { get; init; }
    /// <summary>Allowed width fractions, ascending (DDSM: k/8 for k = 2..8).</summary>
    public double[] Widths { get; init; } = [0.25, 0.5, 0.75, 1.0];
    /// <summary>The noise schedule the model is trained and sampled on (linear, cosine) and its T: part of the
    /// model, saved with it (checkpoints made before it was kept their schedule in the train options).</summary>
    public string Schedule { get; init; } = "linear";
    public int DiffusionSteps { get; init; } = 1000;

    public Diffusion.NoiseSchedule NoiseSchedule() => Diffusion.NoiseSchedule.ByName(Schedule, DiffusionSteps);

    public int TimeEmbedChannels => 4 * ModelChannels;
    /// <summary>The images the model takes and makes.</summary>
    [JsonIgnore] public Diffusion.ImageShape Image => new(ImageChannels, ImageSize);
    public double MinWidth => Widths.Min();
    public double MaxWidth => Widths.Max();

    /// <summary>Small enough to train on a 2-core CPU: Fashion-MNIST/MNIST padded to 32×32.</summary>
    public static UNetConfig Fmnist32 => new()
    {
        Name = "fmnist32", ImageChannels = 1, ImageSize = 32, ModelChannels = 64, ChannelMult = [1, 2, 2],
        NumResBlocks = 2, AttentionResolutions = [16], HeadChannels = 32, Dropout = 0.1f,
        // 64·k/8 divides into 16 groups only for even k.
        Widths = [2 / 8.0, 4 / 8.0, 6 / 8.0, 8 / 8.0],
    };

    /// <summary>The DDSM release's CIFAR-10 supernet size (ADM/DDPM layout, ch 128, mult 1,2,2,2).</summary>
    public static UNetConfig Cifar10 => new()
    {
        Name = "cifar10", ImageChannels = 3, ImageSize = 32, ModelChannels = 128, ChannelMult = [1, 2, 2, 2],
        NumResBlocks = 2, AttentionResolutions = [16], HeadChannels = 32, Dropout = 0.1f, ScaleShiftNorm = false,
        Widths = Enumerable.Range(2, 7).Select(k => k / 8.0).ToArray(),
    };

    /// <summary>
    /// The DDSM release's CIFAR-10 UNet itself, for its checkpoints (<c>ddsm import --layout ddsm-release</c>):
    /// the cifar10 layout with GroupNorm(32) and one attention head over the active channels. 32 groups
    /// allow only the quarter widths, which is what the release trains and searches.
    /// </summary>
    public static UNetConfig Cifar10Ddsm => Cifar10 with
    {
        Name = "cifar10-ddsm", Groups = 32, AttentionHeads = 1, Widths = [0.25, 0.5, 0.75, 1.0],
    };

    public static UNetConfig Celeba64 => new()
    {
        Name = "celeba64", ImageChannels = 3, ImageSize = 64, ModelChannels = 128, ChannelMult = [1, 2, 2, 2],
        NumResBlocks = 3, AttentionResolutions = [16, 8], HeadChannels = 32, Dropout = 0.1f,
        Widths = Enumerable.Range(2, 7).Select(k => k / 8.0).ToArray(),
    };

    /// <summary>A few-thousand-parameter model for tests and smoke runs.</summary>
    public static UNetConfig Tiny => new()
    {
        Name = "tiny", ImageChannels = 1, ImageSize = 8, ModelChannels = 32, ChannelMult = [1, 2],
        NumResBlocks = 1, AttentionResolutions = [4], HeadChannels = 16, Dropout = 0f, Widths = [0.5, 1.0],
    };

    public static IReadOnlyList<string> PresetNames => ["fmnist32", "cifar10", "cifar10-ddsm", "celeba64", "tiny"];

    public static UNetConfig Preset(string name) => name switch
    {
        "fmnist32" => Fmnist32,
        "cifar10" => Cifar10,
        "cifar10-ddsm" => Cifar10Ddsm,
        "celeba64" => Celeba64,
        "tiny" => Tiny,
        _ => throw new ArgumentException($"unknown preset '{name}' ({string.Join(", ", PresetNames)})"),
    };

    /// <summary>Active channels of a layer whose full width is <paramref name="cMax"/>.</summary>
    public int Channels(int cMax, double width) => (int)Math.Round(cMax * width);

    /// <summary>Throws ArgumentException naming every allowed width that cannot be built.</summary>
    public void Validate()
    {
        var errors = new List<string>();
        if (ImageChannels <= 0 || ImageSize <= 0 || ModelChannels <= 0 || NumResBlocks <= 0 || ChannelMult.Length == 0)
            errors.Add("image channels, size, model channels, res blocks and channel mult must be positive");
        if (ImageSize % (1 << (ChannelMult.Length - 1)) != 0)
            errors.Add($"image size {ImageSize} is not divisible by 2^{ChannelMult.Length - 1} (levels)");
        if (Widths.Length == 0) errors.Add("no allowed widths");
        if (Schedule is not ("linear" or "cosine")) errors.Add($"unknown noise schedule '{Schedule}' (linear, cosine)");
        if (DiffusionSteps < 2) errors.Add($"diffusion steps must be ≥ 2, got {DiffusionSteps}");
        if (AttentionHeads < 0 || (AttentionHeads == 0 && HeadChannels <= 0))
            errors.Add("attention heads must be ≥ 0 and head channels > 0");
        foreach (var w in Widths)
        {
            if (!(w > 0 && w <= 1)) { errors.Add($"width {w} outside (0, 1]"); continue; }
            var mults = ChannelMult.Append(1);
            foreach (var m in mults.Distinct())
            {
                int c = Channels(ModelChannels * m, w);
                if (Math.Abs(c - ModelChannels * m * w) > 1e-9)
                    errors.Add($"width {w}: {ModelChannels * m}·{w} is not a whole channel count");
                else if (c % Groups != 0) errors.Add($"width {w}: {c} channels do not divide into {Groups} groups");
            }
            // Every level with attention, and the middle block (attention at the lowest resolution).
            for (int level = 0; level <= ChannelMult.Length; level++)
            {
                if (AttentionHeads < 0 || (AttentionHeads == 0 && HeadChannels <= 0)) break;
                bool middle = level == ChannelMult.Length;
                int res = ImageSize >> Math.Min(level, ChannelMult.Length - 1);
                if (!middle && !AttentionResolutions.Contains(res)) continue;
                int c = Channels(ModelChannels * ChannelMult[middle ? ^1 : level], w);
                string where = middle ? "in the middle block" : $"at {res}×{res}";
                string heads = AttentionHeads > 0 ? $"{AttentionHeads} heads" : $"heads of {HeadChannels}";
                if (c % (AttentionHeads > 0 ? AttentionHeads : HeadChannels) != 0)
                    errors.Add($"width {w}: {c} attention channels {where} do not divide into {heads}");
            }
        }
        if (errors.Count > 0)
            throw new ArgumentException($"UNet config '{Name}': " + string.Join("; ", errors.Distinct()));
    }

    /// <summary>The allowed width nearest to <paramref name="width"/>, or an error listing them.</summary>
    public double CheckWidth(double width)
    {
        foreach (var w in Widths) if (Math.Abs(w - width) < 1e-9) return w;
        throw new ArgumentException(
            $"width {width} is not one of the allowed widths {string.Join(", ", Widths)} of '{Name}'");
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
    public string ToJson() => JsonSerializer.Serialize(this, Json);
    public static UNetConfig FromJson(string json) =>
        JsonSerializer.Deserialize<UNetConfig>(json, Json) ?? throw new FormatException("UNet config JSON is empty");

    /// <summary>
    /// A config as saved with a model. One saved before the schedule was part of the config takes it from
    /// the train options saved beside it (their "Schedule" and "DiffusionSteps"; absent there too: the
    /// defaults, linear and 1000, which is what those runs trained on).
    /// </summary>
    public static UNetConfig FromJson(string json, string? legacyTrainOptions)
    {
        var cfg = FromJson(json);
        using var doc = JsonDocument.Parse(json);
        if (doc.RootElement.TryGetProperty(nameof(Schedule), out _) || legacyTrainOptions is null) return cfg;
        using var old = JsonDocument.Parse(legacyTrainOptions);
        var o = old.RootElement;
        return cfg with
        {
            Schedule = o.TryGetProperty(nameof(Schedule), out var s) &&
                s.ValueKind == JsonValueKind.String ? s.GetString()! : cfg.Schedule,
            DiffusionSteps = o.TryGetProperty(nameof(DiffusionSteps), out var t) &&
                t.TryGetInt32(out var n) ? n : cfg.DiffusionSteps,
        };
    }

    public bool SameArchitecture(UNetConfig o) =>
        ImageChannels == o.ImageChannels && ImageSize == o.ImageSize && ModelChannels == o.ModelChannels &&
        ChannelMult.SequenceEqual(o.ChannelMult) && NumResBlocks == o.NumResBlocks &&
        AttentionResolutions.SequenceEqual(o.AttentionResolutions) && HeadChannels == o.HeadChannels &&
        AttentionHeads == o.AttentionHeads &&
        ScaleShiftNorm == o.ScaleShiftNorm && Groups == o.Groups && NumClasses == o.NumClasses;
}
