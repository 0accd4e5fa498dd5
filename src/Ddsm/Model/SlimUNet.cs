using Ddsm.Engine.Nn;

namespace Ddsm.Model;

/// <summary>
/// The slimmable ADM UNet (DDSM's supernet): one set of weights that runs at any allowed width.
/// <c>Forward(x, t, width)</c> runs every layer on the prefix of its channels; the input conv keeps
/// the image channels on its input and the output conv on its output. Parameter names follow ADM
/// (time_embed.0.weight, input_blocks.1.0.in_layers.2.weight, …).
/// </summary>
public sealed class SlimUNet : Module, IDenoiser
{
    public UNetConfig Config { get; }
    private readonly SlimLinear _t0, _t2;
    private readonly List<LayerSequence> _input = new(), _output = new();
    private readonly LayerSequence _middle;
    private readonly SlimGroupNorm _outNorm;
    private readonly SlimConv2d _outConv;
    private readonly LabelEmbedding? _labelEmb;

    public SlimUNet(Backend be, UNetConfig cfg, ulong seed) : base(be)
    {
        cfg.Validate();
        Config = cfg;
        var rng = new Rng(seed);
        int ch = cfg.ModelChannels, emb = cfg.TimeEmbedChannels;
        var te = Child("time_embed", new ModuleList(be));
        _t0 = te.Add(new SlimLinear(be, rng, ch, emb));
        te.Skip();
        _t2 = te.Add(new SlimLinear(be, rng, emb, emb));

        var inputs = Child("input_blocks", new ModuleList(be));
        var first = new LayerSequence(be);
        first.Add(new InputConv(be, rng, cfg.ImageChannels, ch));
        _input.Add(inputs.Add(first));
        var skipCh = new Stack<int>();
        skipCh.Push(ch);
        int cur = ch, res = cfg.ImageSize, id = 0;
        for (int level = 0; level < cfg.ChannelMult.Length; level++)
        {
            for (int r = 0; r < cfg.NumResBlocks; r++)
            {
                var seq = new LayerSequence(be);
                int outCh = ch * cfg.ChannelMult[level];
                seq.Add(new ResBlock(be, rng, cfg, cur, outCh, id++));
                cur = outCh;
                if (cfg.AttentionResolutions.Contains(res)) seq.Add(new AttentionBlock(be, rng, cfg, cur));
                _input.Add(inputs.Add(seq));
                skipCh.Push(cur);
            }
            if (level != cfg.ChannelMult.Length - 1)
            {
                var seq = new LayerSequence(be);
                seq.Add(new Downsample(be, rng, cur));
                _input.Add(inputs.Add(seq));
                skipCh.Push(cur);
                res /= 2;
            }
        }

        _middle = Child("middle_block", new LayerSequence(be));
        _middle.Add(new ResBlock(be, rng, cfg, cur, cur, id++));
        _middle.Add(new AttentionBlock(be, rng, cfg, cur));
        _middle.Add(new ResBlock(be, rng, cfg, cur, cur, id++));

        var outputs = Child("output_blocks", new ModuleList(be));
        for (int level = cfg.ChannelMult.Length - 1; level >= 0; level--)
        {
            for (int i = 0; i <= cfg.NumResBlocks; i++)
            {
                var seq = new LayerSequence(be);
                int outCh = ch * cfg.ChannelMult[level];
                seq.Add(new ResBlock(be, rng, cfg, cur + skipCh.Pop(), outCh, id++));
                cur = outCh;
                if (cfg.AttentionResolutions.Contains(res)) seq.Add(new AttentionBlock(be, rng, cfg, cur));
                if (level > 0 && i == cfg.NumResBlocks)
                {
                    seq.Add(new Upsample(be, rng, cur));
                    res *= 2;
                }
                _output.Add(outputs.Add(seq));
            }
        }

        var outList = Child("out", new ModuleList(be));
        _outNorm = outList.Add(new SlimGroupNorm(be, cur, cfg.Groups));
        outList.Skip();
        _outConv = outList.Add(new SlimConv2d(be, rng, cur, cfg.ImageChannels, 3, zeroInit: true));
        // Built last so a conditional model shares every other initial weight with the
        // unconditional one of the same seed (and unconditional parameter counts are unchanged).
        if (cfg.NumClasses > 0) _labelEmb = Child("label_emb", new LabelEmbedding(be, rng, cfg.NumClasses, emb));
    }

    /// <summary>The label that selects the unconditional (null-class) prediction: NumClasses.</summary>
    public int NullClass => Config.NumClasses;

    /// <summary>ε̂ (N, C, H, W) for x_t (N, C, H, W) at timesteps t (N) and one width (unconditional).</summary>
    public Tensor Forward(Tensor x, Tensor t, double width, bool training = false, ulong dropoutSeed = 0)
        => Forward(x, t, width, (int[]?)null, training, dropoutSeed);

    /// <summary>
    /// ε̂ with class labels (N) in [0, NumClasses], NumClasses being the null class; null labels =
    /// unconditional (the null class for a conditional model). ADM: emb = time_embed(t) + label_emb(y).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor t, double width, int[]? labels, bool training = false, ulong dropoutSeed = 0)
    {
        return Forward(x, t, width, LabelsOneHot(labels, x.Shape[0]), training, dropoutSeed);
    }

    /// <summary>
    /// The device form of <paramref name="labels"/> for a batch of <paramref name="n"/>: null for an
    /// unconditional model, the null class (built on the device) when labels is null, else their one-hot
    /// (uploaded; kept while the same labels come again outside autograd).
    /// </summary>
    public Tensor? LabelsOneHot(int[]? labels, int n)
    {
        if (_labelEmb is null)
            return labels is null ? null
                : throw new ArgumentException(
                    $"unet '{Config.Name}': labels given to an unconditional model (NumClasses = 0)");
        if (labels is not null && labels.Length != n)
            throw new ArgumentException($"unet '{Config.Name}': {labels.Length} labels for batch {n}");
        return labels is null ? _labelEmb.NullOneHot(n) : _labelEmb.OneHot(labels);
    }

    /// <summary>
    /// ε̂ with the labels already on the device as a one-hot (N, NumClasses + 1) matrix
    /// (<see cref="LabelEmbedding.OneHot"/>), or null for an unconditional model: the form a step loop uses,
    /// so that no call uploads labels.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor t, double width, Tensor? oneHotLabels, bool training = false,
        ulong dropoutSeed = 0, StepScalar? dropoutSeedAt = null)
    {
        var cfg = Config;
        width = cfg.CheckWidth(width);
        if (x.Rank != 4 || x.Shape[1] != cfg.ImageChannels || x.Shape[2] != cfg.ImageSize ||
            x.Shape[3] != cfg.ImageSize)
            throw new ArgumentException($"unet '{cfg.Name}': input {ShapeUtil.Str(x.Shape)} is not (N, " +
                                        $"{cfg.ImageChannels}, {cfg.ImageSize}, {cfg.ImageSize})");
        if (t.Rank != 1 || t.Shape[0] != x.Shape[0])
            throw new ArgumentException(
                $"unet '{cfg.Name}': timesteps {ShapeUtil.Str(t.Shape)} do not match batch {x.Shape[0]}");
        var ctx = new ForwardContext(width, training, dropoutSeed, cfg, dropoutSeedAt);
        int e = ctx.Ch(cfg.TimeEmbedChannels);
        var emb = _t2.Forward(F.SiLU(_t0.Forward(F.TimestepEmbedding(t, cfg.ModelChannels), e)), e);
        if (_labelEmb is not null)
        {
            if (oneHotLabels is null || oneHotLabels.Rank != 2 || oneHotLabels.Shape[0] != x.Shape[0] ||
                oneHotLabels.Shape[1] != cfg.NumClasses + 1)
                throw new ArgumentException($"unet '{cfg.Name}': labels must be one-hot (N, {cfg.NumClasses + 1}) " +
                    $"for batch {x.Shape[0]}, got " +
                    (oneHotLabels is null ? "none" : ShapeUtil.Str(oneHotLabels.Shape)));
            emb = F.Add(emb, _labelEmb.Forward(oneHotLabels, e));
        }
        else if (oneHotLabels is not null)
            throw new ArgumentException($"unet '{cfg.Name}': labels given to an unconditional model (NumClasses = 0)");
        var embAct = F.SiLU(emb);

        var hs = new Stack<Tensor>();
        var h = x;
        foreach (var block in _input)
        {
            h = block.Forward(h, embAct, ctx);
            hs.Push(h);
        }
        h = _middle.Forward(h, embAct, ctx);
        foreach (var block in _output)
            h = block.Forward(F.ConcatChannels(h, hs.Pop()), embAct, ctx);
        return _outConv.Forward(_outNorm.Forward(h, silu: true), cfg.ImageChannels);
    }

    Backend IDenoiser.Backend => Backend;
    public ImageShape Image => Config.Image;

    /// <summary>IDenoiser: one forward at the width (the same at every t).</summary>
    public long FlopsPerImage(double t, double width) => UNetFlops.Forward(Config, width).Total;

    /// <summary>IDenoiser: the whole batch at one timestep (filled on the device), no dropout.</summary>
    public Tensor PredictEps(Tensor x, Timestep t, double width)
    {
        using var tt = t.Fill(x.Backend, x.Shape[0]);
        return Forward(x, tt, width);
    }
}
