namespace Ddsm.Interop;

/// <summary>
/// The DDSM release's CIFAR-10 UNet (EnVision-Research/DDSM, slimmable_model.py) mapped onto ours. The
/// networks compute the same function once these differences are bridged:
/// <list type="bullet">
/// <item>names: head → input_blocks.0.0.conv, downblocks/middleblocks/upblocks → input_blocks/middle_block/
///   output_blocks (a ResBlock's own attn becomes the next layer of its sequence), block1.0/.2 → in_layers.0/.2,
///   temb_proj.1 → emb_layers.1, block2.0/.3 → out_layers.0/.3, shortcut → skip_connection, tail → out;</item>
/// <item>attention: separate proj_q/k/v (C, C, 1, 1) → one qkv (3C, C, 1) of one head, proj → proj_out;
///   the preset must have one head (AttentionHeads = 1) so each of q, k, v keeps its own prefix;</item>
/// <item>time embedding: the release looks t up in a (T, ch) table of interleaved [sin, cos] features, we
///   compute [cos, sin] halves: the table is checked to be exactly that and dropped, and the columns of
///   the first linear layer are reordered to match;</item>
/// <item>slimming: the release rounds a slimmed layer to make_divisible(C·w, 8) channels (16 for linears),
///   we to round(C·w): the preset's widths must give the same counts.</item>
/// </list>
/// </summary>
public static class DdsmReleaseLayout
{
    public const string TimeTable = "time_embedding.timembedding.0.weight";

    public static Dictionary<string, HostTensor> ToOurs(IReadOnlyDictionary<string, HostTensor> src, UNetConfig cfg,
        string path)
    {
        CheckConfig(cfg);
        src = StripPrefix(src, "module.");
        var m = new Mapper(src, path);
        int ch = cfg.ModelChannels;
        m.CheckTimeTable(ch);
        m.Map("time_embedding.timembedding.1", "time_embed.0", Interleaved);
        m.Map("time_embedding.timembedding.3", "time_embed.2");
        m.Map("head", "input_blocks.0.0.conv");
        int down = 0, input = 1, res = cfg.ImageSize;
        for (int level = 0; level < cfg.ChannelMult.Length; level++)
        {
            bool attn = cfg.AttentionResolutions.Contains(res);
            for (int r = 0; r < cfg.NumResBlocks; r++)
                ResBlock(m, $"downblocks.{down++}", $"input_blocks.{input++}", attn);
            if (level == cfg.ChannelMult.Length - 1) continue;
            m.Map($"downblocks.{down++}.main", $"input_blocks.{input++}.0.op");
            res /= 2;
        }
        ResBlock(m, "middleblocks.0", "middle_block", attn: true);
        ResBlock(m, "middleblocks.1", "middle_block", attn: false, resIndex: 2);
        int up = 0, output = 0;
        for (int level = cfg.ChannelMult.Length - 1; level >= 0; level--)
        {
            bool attn = cfg.AttentionResolutions.Contains(res);
            for (int i = 0; i <= cfg.NumResBlocks; i++)
                ResBlock(m, $"upblocks.{up++}", $"output_blocks.{output++}", attn);
            if (level == 0) continue;
            m.Map($"upblocks.{up++}.main", $"output_blocks.{output - 1}.{(attn ? 2 : 1)}.conv");
            res *= 2;
        }
        m.Map("tail.0", "out.0");
        m.Map("tail.2", "out.2");
        m.CheckAllUsed();
        return m.Result;
    }

    /// <summary>The release's ResBlock (with its optional attn): our ResBlock at .resIndex, attention next.</summary>
    private static void ResBlock(Mapper m, string from, string to, bool attn, int resIndex = 0)
    {
        string r = $"{to}.{resIndex}";
        m.Map(from + ".block1.0", r + ".in_layers.0");
        m.Map(from + ".block1.2", r + ".in_layers.2");
        m.Map(from + ".temb_proj.1", r + ".emb_layers.1");
        m.Map(from + ".block2.0", r + ".out_layers.0");
        m.Map(from + ".block2.3", r + ".out_layers.3");
        if (m.Has(from + ".shortcut.weight")) m.Map(from + ".shortcut", r + ".skip_connection");
        if (!attn) return;
        string a = $"{to}.{resIndex + 1}";
        m.Map(from + ".attn.group_norm", a + ".norm");
        m.MapQkv(from + ".attn", a + ".qkv");
        m.Map(from + ".attn.proj", a + ".proj_out", Conv1d);
    }

    private static void CheckConfig(UNetConfig cfg)
    {
        var problems = new List<string>();
        if (cfg.ScaleShiftNorm) problems.Add("ScaleShiftNorm off (the release adds the time embedding)");
        if (cfg.AttentionHeads != 1) problems.Add("one attention head over the active channels (AttentionHeads = 1)");
        if (cfg.NumClasses != 0) problems.Add("no classes (the release is unconditional)");
        if (problems.Count > 0)
            throw new ArgumentException($"layout ddsm-release: preset '{cfg.Name}' must have " +
                                        $"{string.Join(", ", problems)}; use cifar10-ddsm");
        // Convs round to multiples of 8, the linears (time embedding, each ResBlock's projection) of 16.
        var layers = cfg.ChannelMult.Append(1).Distinct().Select(k => (C: cfg.ModelChannels * k, Factor: 8))
            .Concat(cfg.ChannelMult.Distinct().Select(k => (C: cfg.ModelChannels * k, Factor: 16)))
            .Append((C: cfg.TimeEmbedChannels, Factor: 16));
        foreach (var w in cfg.Widths)
            foreach (var (c, factor) in layers)
            {
                int ours = cfg.Channels(c, w), theirs = MakeDivisible(c * w, factor);
                if (ours != theirs)
                    throw new ArgumentException($"layout ddsm-release: preset '{cfg.Name}' at width {w} runs {ours} " +
                                                $"of {c} channels where the release runs {theirs} " +
                                                $"(multiples of {factor})");
            }
    }

    /// <summary>The release's channel rounding (TF-slim's make_divisible): nearest multiple, ≤ 10 % down.</summary>
    internal static int MakeDivisible(double v, int factor)
    {
        int n = Math.Max(1, (int)(v + factor / 2.0) / factor * factor);
        return n < 0.9 * v ? n + factor : n;
    }

    /// <summary>Linear weight columns: interleaved [sin₀, cos₀, sin₁, …] → halves [cos…, sin…].</summary>
    private static HostTensor Interleaved(HostTensor w, string name)
    {
        if (!name.EndsWith(".weight", StringComparison.Ordinal)) return w;
        int rows = w.Shape[0], cols = w.Shape[1], half = cols / 2;
        var v = new float[w.Values.Length];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < half; j++)
            {
                v[r * cols + j] = w.Values[r * cols + 2 * j + 1];
                v[r * cols + half + j] = w.Values[r * cols + 2 * j];
            }
        return w with { Values = v };
    }

    /// <summary>A 1×1 conv2d weight (C, C, 1, 1) as ADM's conv1d (C, C, 1).</summary>
    private static HostTensor Conv1d(HostTensor w, string name) =>
        w.Shape.Length == 4 ? w with { Shape = [w.Shape[0], w.Shape[1], 1] } : w;

    private static IReadOnlyDictionary<string, HostTensor> StripPrefix(IReadOnlyDictionary<string, HostTensor> src,
        string prefix) =>
        src.Count > 0 && src.Keys.All(k => k.StartsWith(prefix, StringComparison.Ordinal))
            ? src.ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value) : src;

    /// <summary>Builds our state dict from the release's, remembering which of its tensors were used.</summary>
    private sealed class Mapper(IReadOnlyDictionary<string, HostTensor> src, string path)
    {
        private readonly HashSet<string> _used = new();
        public Dictionary<string, HostTensor> Result { get; } = new();

        public bool Has(string name) => src.ContainsKey(name);

        private HostTensor Take(string name)
        {
            if (!src.TryGetValue(name, out var t))
                throw new IO.DataFormatException(path, $"layout ddsm-release: tensor '{name}' missing " +
                                                       "(is this the release's UNet at this preset's size?)");
            _used.Add(name);
            return t;
        }

        public void Map(string from, string to, Func<HostTensor, string, HostTensor>? f = null)
        {
            foreach (var p in new[] { ".weight", ".bias" })
            {
                var t = Take(from + p);
                Result[to + p] = f is null ? t : f(t, p);
            }
        }

        /// <summary>proj_q, proj_k, proj_v (C, C, 1, 1) → qkv (3C, C, 1): one head is [q; k; v] in ADM's.</summary>
        public void MapQkv(string from, string to)
        {
            foreach (var p in new[] { ".weight", ".bias" })
            {
                var parts = new[] { "proj_q", "proj_k", "proj_v" }.Select(q => Take($"{from}.{q}{p}")).ToArray();
                if (parts.Any(x => !x.Shape.SequenceEqual(parts[0].Shape)))
                    throw new IO.DataFormatException(path, $"layout ddsm-release: {from}.proj_q/k/v{p} differ");
                var s = parts[0].Shape;
                int[] shape = p == ".bias" ? [3 * s[0]] : [3 * s[0], s.Length > 1 ? s[1] : 1, 1];
                Result[to + p] = new HostTensor(shape, parts.SelectMany(x => x.Values).ToArray());
            }
        }

        /// <summary>The (T, ch) table must be the release's interleaved sinusoid: we compute ours instead.</summary>
        public void CheckTimeTable(int ch)
        {
            var t = Take(TimeTable);
            if (t.Shape.Length != 2 || t.Shape[1] != ch)
                throw new IO.DataFormatException(path, $"layout ddsm-release: {TimeTable} is {t.ShapeText}, " +
                                                       $"want (T, {ch})");
            double worst = 0;
            for (int step = 0; step < t.Shape[0]; step++)
                for (int j = 0; j < ch / 2; j++)
                {
                    double a = step * Math.Exp(-(2.0 * j / ch) * Math.Log(10000));
                    worst = Math.Max(worst, Math.Abs(t.Values[step * ch + 2 * j] - Math.Sin(a)));
                    worst = Math.Max(worst, Math.Abs(t.Values[step * ch + 2 * j + 1] - Math.Cos(a)));
                }
            // float32 angles up to T rad: about 1e-4 from the exact sinusoid; anything else is another network.
            if (worst > 1e-3)
                throw new IO.DataFormatException(path, $"layout ddsm-release: {TimeTable} is not the release's " +
                                                       $"sinusoidal table (off by {worst:G3})");
        }

        public void CheckAllUsed()
        {
            var extra = src.Keys.Where(k => !_used.Contains(k)).Order(StringComparer.Ordinal).ToList();
            if (extra.Count > 0)
                throw new IO.DataFormatException(path, $"layout ddsm-release: {extra.Count} tensors this preset has " +
                                                       "no place for: " + string.Join(", ", extra.Take(8)) +
                                                       (extra.Count > 8 ? ", …" : ""));
        }
    }
}
