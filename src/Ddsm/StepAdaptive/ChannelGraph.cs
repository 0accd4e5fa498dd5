namespace Ddsm.StepAdaptive;

/// <summary>Which axis of a parameter a channel space indexes.</summary>
public enum SpaceAxis
{
    /// <summary>Dim 0: output rows of a conv/linear weight, a bias, a GroupNorm γ or β.</summary>
    Rows,
    /// <summary>Dim 1: input columns of a conv/linear weight.</summary>
    Columns,
}

/// <summary>
/// One place a channel space appears: element i of the space occupies indices
/// [Offset + i·Unit, Offset + (i+1)·Unit) along <see cref="Axis"/> of parameter <see cref="Param"/>.
/// Unit is 1 for channels; for attention heads it is 3·d on the qkv rows and d on proj_out's columns.
/// </summary>
public sealed record SpaceUse(string Param, SpaceAxis Axis, int Offset, int Unit);

/// <summary>
/// A GroupNorm that reads a space: its input is the channel concatenation of <see cref="Parts"/>
/// (sizes at full width), this space being part <see cref="PartIndex"/>. At width w every part runs
/// its prefix round(C_i·w), and the concatenated active channels split into <see cref="Groups"/>
/// equal contiguous groups.
/// </summary>
public sealed record NormRead(string Layer, int[] Parts, int PartIndex, int Groups);

/// <summary>
/// A set of channel positions that every layer touching it indexes identically, so one permutation
/// applied to all <see cref="Uses"/> leaves the network's function unchanged (subject to the
/// GroupNorms in <see cref="Norms"/> and the slimming prefix: see <see cref="PermutationTree"/>).
/// <see cref="Size"/> counts elements: channels, or whole heads for an attention head space.
/// </summary>
public sealed class ChannelSpace(string name, int size, int channelsPerElement)
{
    public string Name { get; } = name;
    public int Size { get; } = size;
    /// <summary>1 for channel spaces, the head width for attention head spaces (slimming drops whole heads).</summary>
    public int ChannelsPerElement { get; } = channelsPerElement;
    public List<SpaceUse> Uses { get; } = new();
    public List<NormRead> Norms { get; } = new();
}

/// <summary>
/// The channel spaces of <see cref="SlimUNet"/>, derived by replaying its constructor on the config
/// (the same loop over levels, res blocks, attention, down/upsampling and skip stack), with ADM
/// parameter names. Spaces:
/// <list type="bullet">
/// <item>time_embed.0:out (time_embed.0 rows = time_embed.2 columns) and time_embed.2:out (time_embed.2 rows =
/// every emb_layers.1's columns);</item>
/// <item>residual streams: started by input_blocks.0's conv, each Downsample/Upsample conv output and each
/// ResBlock with a 1×1 skip; a ResBlock with identity skip and every attention block write into (and read) the
/// stream they sit on; streams are read again wherever input_blocks outputs are concatenated into output_blocks;</item>
/// <item>each ResBlock's private hidden space (in_layers.2 rows, emb_layers.1 rows — both halves for scale-shift —,
/// out_layers.0 γ/β, out_layers.3 columns);</item>
/// <item>each attention block's head space, whole heads as elements (qkv rows in blocks of 3d in ADM's legacy
/// [q,k,v]-per-head layout, proj_out columns in blocks of d).</item>
/// </list>
/// The image channels (input conv columns, out conv rows) and the sinusoidal timestep features
/// (time_embed.0 columns) are fixed and belong to no space.
/// </summary>
public sealed class ChannelGraph
{
    public UNetConfig Config { get; }
    public IReadOnlyList<ChannelSpace> Spaces => _spaces;
    private readonly List<ChannelSpace> _spaces = new();

    private ChannelGraph(UNetConfig cfg) => Config = cfg;

    public static ChannelGraph Build(UNetConfig cfg)
    {
        cfg.Validate();
        // A fixed head count cuts inside every head (q, k, v each keep their prefix): the permutable
        // units are not the whole heads modelled here.
        if (cfg.AttentionHeads > 0)
            throw new NotSupportedException($"channel graph: '{cfg.Name}' has a fixed number of attention heads " +
                                            $"({cfg.AttentionHeads}); importance pruning supports heads of " +
                                            "HeadChannels only (use --prune prefix)");
        var g = new ChannelGraph(cfg);
        int ch = cfg.ModelChannels, emb = cfg.TimeEmbedChannels;
        var t0 = g.New("time_embed.0:out", emb);
        g.Rows(t0, "time_embed.0.weight", "time_embed.0.bias");
        g.Cols(t0, 0, "time_embed.2.weight");
        var t1 = g.New("time_embed.2:out", emb);
        g.Rows(t1, "time_embed.2.weight", "time_embed.2.bias");

        var cur = g.New("input_blocks.0:out", ch);
        g.Rows(cur, "input_blocks.0.0.conv.weight", "input_blocks.0.0.conv.bias");
        var skips = new Stack<ChannelSpace>();
        skips.Push(cur);
        int res = cfg.ImageSize, idx = 1;
        for (int level = 0; level < cfg.ChannelMult.Length; level++)
        {
            for (int r = 0; r < cfg.NumResBlocks; r++, idx++)
            {
                cur = g.ResBlock($"input_blocks.{idx}.0", [cur], ch * cfg.ChannelMult[level], t1);
                if (cfg.AttentionResolutions.Contains(res)) g.Attention($"input_blocks.{idx}.1", cur);
                skips.Push(cur);
            }
            if (level != cfg.ChannelMult.Length - 1)
            {
                cur = g.Resample($"input_blocks.{idx}.0.op", cur);
                skips.Push(cur);
                res /= 2;
                idx++;
            }
        }

        cur = g.ResBlock("middle_block.0", [cur], cur.Size, t1);
        g.Attention("middle_block.1", cur);
        cur = g.ResBlock("middle_block.2", [cur], cur.Size, t1);

        idx = 0;
        for (int level = cfg.ChannelMult.Length - 1; level >= 0; level--)
        {
            for (int i = 0; i <= cfg.NumResBlocks; i++, idx++)
            {
                int j = 0;
                cur = g.ResBlock($"output_blocks.{idx}.{j++}", [cur, skips.Pop()], ch * cfg.ChannelMult[level], t1);
                if (cfg.AttentionResolutions.Contains(res)) g.Attention($"output_blocks.{idx}.{j++}", cur);
                if (level > 0 && i == cfg.NumResBlocks)
                {
                    cur = g.Resample($"output_blocks.{idx}.{j}.conv", cur);
                    res *= 2;
                }
            }
        }
        g.Norm("out.0", [cur]);
        g.Cols(cur, 0, "out.2.weight");
        return g;
    }

    private ChannelSpace New(string name, int size, int perElement = 1)
    {
        var s = new ChannelSpace(name, size, perElement);
        _spaces.Add(s);
        return s;
    }

    private void Rows(ChannelSpace s, params string[] ps) => RowsAt(s, 0, 1, ps);

    private void RowsAt(ChannelSpace s, int offset, int unit, params string[] ps)
    {
        foreach (var p in ps) s.Uses.Add(new SpaceUse(p, SpaceAxis.Rows, offset, unit));
    }

    private void Cols(ChannelSpace s, int offset, string p, int unit = 1) =>
        s.Uses.Add(new SpaceUse(p, SpaceAxis.Columns, offset, unit));

    /// <summary>Columns of a weight whose input is the concatenation of <paramref name="parts"/>.</summary>
    private static void ColsConcat(ChannelSpace[] parts, string p)
    {
        int off = 0;
        foreach (var s in parts) { s.Uses.Add(new SpaceUse(p, SpaceAxis.Columns, off, 1)); off += s.Size; }
    }

    /// <summary>
    /// γ/β rows of a GroupNorm over the concatenation of <paramref name="parts"/>, and its group constraint on each
    /// part.
    /// </summary>
    private void Norm(string layer, ChannelSpace[] parts)
    {
        int off = 0;
        var sizes = parts.Select(s => s.Size).ToArray();
        for (int i = 0; i < parts.Length; i++)
        {
            RowsAt(parts[i], off, 1, layer + ".weight", layer + ".bias");
            parts[i].Norms.Add(new NormRead(layer, sizes, i, Config.Groups));
            off += sizes[i];
        }
    }

    private ChannelSpace ResBlock(string p, ChannelSpace[] parts, int outMax, ChannelSpace timeEmb)
    {
        int inMax = parts.Sum(s => s.Size);
        Norm(p + ".in_layers.0", parts);
        ColsConcat(parts, p + ".in_layers.2.weight");
        var h = New(p + ":hidden", outMax);
        Rows(h, p + ".in_layers.2.weight", p + ".in_layers.2.bias");
        // Scale-shift: rows [0, outMax) scale and [outMax, 2·outMax) shift, both indexed by h's channels.
        Rows(h, p + ".emb_layers.1.weight", p + ".emb_layers.1.bias");
        if (Config.ScaleShiftNorm) RowsAt(h, outMax, 1, p + ".emb_layers.1.weight", p + ".emb_layers.1.bias");
        Cols(timeEmb, 0, p + ".emb_layers.1.weight");
        Norm(p + ".out_layers.0", [h]);
        Cols(h, 0, p + ".out_layers.3.weight");
        ChannelSpace output;
        if (inMax == outMax)
        {
            // Identity skip: x + h, so the block writes into the stream it reads.
            if (parts.Length != 1)
                throw new NotSupportedException($"channel graph: {p} adds a concatenation of {parts.Length} spaces " +
                                                $"to its output (identity skip over a concat)");
            output = parts[0];
        }
        else
        {
            output = New(p + ":out", outMax);
            ColsConcat(parts, p + ".skip_connection.weight");
            Rows(output, p + ".skip_connection.weight", p + ".skip_connection.bias");
        }
        Rows(output, p + ".out_layers.3.weight", p + ".out_layers.3.bias");
        return output;
    }

    private void Attention(string p, ChannelSpace stream)
    {
        Norm(p + ".norm", [stream]);
        Cols(stream, 0, p + ".qkv.weight");
        Rows(stream, p + ".proj_out.weight", p + ".proj_out.bias");
        int d = Config.HeadChannels;
        var heads = New(p + ":heads", stream.Size / d, d);
        RowsAt(heads, 0, 3 * d, p + ".qkv.weight", p + ".qkv.bias");
        Cols(heads, 0, p + ".proj_out.weight", d);
    }

    /// <summary>A Downsample/Upsample conv: reads one stream, starts a new one.</summary>
    private ChannelSpace Resample(string conv, ChannelSpace input)
    {
        Cols(input, 0, conv + ".weight");
        var s = New(conv + ":out", input.Size);
        Rows(s, conv + ".weight", conv + ".bias");
        return s;
    }

    /// <summary>
    /// Checks the graph against a model's parameters: every use names a parameter and fits its axis,
    /// and every row/column of every parameter is claimed by exactly one space, except the fixed
    /// image/timestep-feature axes. Throws InvalidOperationException listing what is wrong.
    /// </summary>
    public void CheckAgainst(SlimUNet model)
    {
        var shapes = model.NamedParameters().ToDictionary(p => p.Name, p => p.Param.Shape);
        var errors = new List<string>();
        var claimed = new Dictionary<(string, SpaceAxis), int[]>();
        foreach (var s in _spaces)
            foreach (var u in s.Uses)
            {
                if (!shapes.TryGetValue(u.Param, out var shape))
                {
                    errors.Add($"{s.Name}: no parameter {u.Param}");
                    continue;
                }
                int axis = u.Axis == SpaceAxis.Rows ? 0 : 1;
                if (axis >= shape.Length) { errors.Add($"{s.Name}: {u.Param} has no axis {axis}"); continue; }
                int n = shape[axis], end = u.Offset + s.Size * u.Unit;
                if (end > n) { errors.Add($"{s.Name}: {u.Param} axis {axis} has {n}, use needs {end}"); continue; }
                if (!claimed.TryGetValue((u.Param, u.Axis), out var c)) claimed[(u.Param, u.Axis)] = c = new int[n];
                for (int i = u.Offset; i < end; i++) c[i]++;
            }
        var fixedAxes = new HashSet<(string, SpaceAxis)>
        {
            ("time_embed.0.weight", SpaceAxis.Columns), ("input_blocks.0.0.conv.weight", SpaceAxis.Columns),
            ("out.2.weight", SpaceAxis.Rows), ("out.2.bias", SpaceAxis.Rows),
        };
        foreach (var (name, shape) in shapes)
            foreach (var axis in shape.Length == 1 ? [SpaceAxis.Rows] : new[] { SpaceAxis.Rows, SpaceAxis.Columns })
            {
                if (fixedAxes.Contains((name, axis))) continue;
                if (!claimed.TryGetValue((name, axis), out var c))
                {
                    errors.Add($"{name} {axis}: in no space");
                    continue;
                }
                int bad = c.Count(v => v != 1);
                if (bad > 0) errors.Add($"{name} {axis}: {bad} indices claimed {c.First(v => v != 1)} times");
            }
        if (errors.Count > 0)
            throw new InvalidOperationException($"channel graph of '{Config.Name}' does not match the model: " +
                                                string.Join("; ", errors.Take(20)));
    }
}
