using Ddsm.Engine.Nn;

namespace Ddsm.Model;

/// <summary>
/// Per-forward settings every block sees. The dropout seed is <see cref="DropoutSeed"/>, or when
/// <see cref="DropoutSeedAt"/> is given the value the device reads there (a captured training pass's).
/// </summary>
public sealed record ForwardContext(double Width, bool Training, ulong DropoutSeed, UNetConfig Config,
    StepScalar? DropoutSeedAt = null)
{
    public int Ch(int cMax) => Config.Channels(cMax, Width);
}

/// <summary>A block of the UNet's input/middle/output sequences (ADM's TimestepEmbedSequential).</summary>
public abstract class UNetLayer(Backend be) : Module(be)
{
    /// <param name="embAct">SiLU(time embedding) (N, E·w), shared by every ResBlock.</param>
    public abstract Tensor Forward(Tensor x, Tensor embAct, ForwardContext ctx);
}

/// <summary>
/// ADM ResBlock: GN+SiLU → conv → (+ time embedding, or scale-shift norm) → GN+SiLU → dropout →
/// zero-initialised conv, plus a skip (1×1 conv when the channel count changes).
/// ADM's layer numbering is kept so parameter names match PyTorch state dicts.
/// </summary>
public sealed class ResBlock : UNetLayer
{
    private readonly SlimGroupNorm _inNorm, _outNorm;
    private readonly SlimConv2d _inConv, _outConv;
    private readonly SlimConv2d? _skip;
    private readonly SlimLinear _emb;
    private readonly bool _scaleShift;
    private readonly int _outMax, _id;
    private readonly float _dropout;

    public ResBlock(Backend be, Rng rng, UNetConfig cfg, int inMax, int outMax, int id) : base(be)
    {
        (_outMax, _scaleShift, _dropout, _id) = (outMax, cfg.ScaleShiftNorm, cfg.Dropout, id);
        var inLayers = Child("in_layers", new ModuleList(be));
        _inNorm = inLayers.Add(new SlimGroupNorm(be, inMax, cfg.Groups));
        inLayers.Skip();
        _inConv = inLayers.Add(new SlimConv2d(be, rng, inMax, outMax, 3));
        var embLayers = Child("emb_layers", new ModuleList(be));
        embLayers.Skip();
        _emb = embLayers.Add(new SlimLinear(be, rng, cfg.TimeEmbedChannels, _scaleShift ? 2 * outMax : outMax));
        var outLayers = Child("out_layers", new ModuleList(be));
        _outNorm = outLayers.Add(new SlimGroupNorm(be, outMax, cfg.Groups));
        outLayers.Skip(); outLayers.Skip();
        _outConv = outLayers.Add(new SlimConv2d(be, rng, outMax, outMax, 3, zeroInit: true));
        if (inMax != outMax) _skip = Child("skip_connection", new SlimConv2d(be, rng, inMax, outMax, 1));
    }

    public override Tensor Forward(Tensor x, Tensor embAct, ForwardContext ctx)
    {
        int cout = ctx.Ch(_outMax);
        var h = _inConv.Forward(_inNorm.Forward(x, silu: true), cout);
        if (_scaleShift)
        {
            // The full 2·outMax projection, then the active prefix of each half: slimming keeps
            // scale and shift aligned with the active channels.
            var e = _emb.Forward(embAct, 2 * _outMax);
            var scale = F.SliceChannels(e, 0, cout);
            var shift = F.SliceChannels(e, _outMax, cout);
            h = _outNorm.Forward(h, silu: true, scale, shift);
        }
        else
        {
            h = F.AddChannels(h, _emb.Forward(embAct, cout));
            h = _outNorm.Forward(h, silu: true);
        }
        if (ctx.Training && _dropout > 0)
        {
            ulong salt = (ulong)_id * 0x9E3779B97F4A7C15UL;
            h = ctx.DropoutSeedAt is { } at ? F.Dropout(h, _dropout, at, salt, true)
                : F.Dropout(h, _dropout, ctx.DropoutSeed ^ salt, true);
        }
        h = _outConv.Forward(h, cout);
        return F.Add(_skip is null ? x : _skip.Forward(x, cout), h);
    }
}

/// <summary>
/// Self-attention over H·W tokens (ADM's legacy qkv layout: per head, its q, k and v rows). Heads of
/// HeadChannels: heads = active channels / head channels, slimming drops whole heads. A fixed number
/// of heads (AttentionHeads, the DDSM release's one): every head keeps the prefix of its q, k and v.
/// </summary>
public sealed class AttentionBlock : UNetLayer
{
    private readonly SlimGroupNorm _norm;
    private readonly SlimConv2d _qkv, _proj;
    private readonly int _cMax, _headChannels, _fixedHeads;

    public AttentionBlock(Backend be, Rng rng, UNetConfig cfg, int cMax) : base(be)
    {
        (_cMax, _headChannels, _fixedHeads) = (cMax, cfg.HeadChannels, cfg.AttentionHeads);
        _norm = Child("norm", new SlimGroupNorm(be, cMax, cfg.Groups));
        _qkv = Child("qkv", new SlimConv2d(be, rng, cMax, 3 * cMax, 1, conv1d: true));
        _proj = Child("proj_out", new SlimConv2d(be, rng, cMax, cMax, 1, zeroInit: true, conv1d: true));
    }

    public override Tensor Forward(Tensor x, Tensor embAct, ForwardContext ctx)
    {
        int n = x.Shape[0], c = x.Shape[1], hh = x.Shape[2], ww = x.Shape[3];
        var xn = _norm.Forward(x, silu: false);
        bool cut = _fixedHeads > 0 && c < _cMax;   // heads narrower than stored: cut inside each head
        int headChannels = _fixedHeads > 0 ? c / _fixedHeads : _headChannels;
        var qkv = cut ? _qkv.ForwardBlocks(xn, 3 * _fixedHeads, headChannels, 1)    // (N, 3C, H, W)
                      : _qkv.Forward(xn, 3 * c);
        var a = F.Attention(qkv.Reshape(n, 3 * c, hh * ww), headChannels).Reshape(n, c, hh, ww);
        var h = cut ? _proj.ForwardBlocks(a, 1, c, _fixedHeads) : _proj.Forward(a, c);
        return F.Add(x, h);
    }
}

/// <summary>Stride-2 3×3 conv (ADM Downsample with conv_resample).</summary>
public sealed class Downsample : UNetLayer
{
    private readonly SlimConv2d _op;
    private readonly int _cMax;

    public Downsample(Backend be, Rng rng, int cMax) : base(be)
    {
        _cMax = cMax;
        _op = Child("op", new SlimConv2d(be, rng, cMax, cMax, 3, stride: 2));
    }

    public override Tensor Forward(Tensor x, Tensor embAct, ForwardContext ctx) => _op.Forward(x, ctx.Ch(_cMax));
}

/// <summary>Nearest ×2 then a 3×3 conv (ADM Upsample with conv_resample).</summary>
public sealed class Upsample : UNetLayer
{
    private readonly SlimConv2d _conv;
    private readonly int _cMax;

    public Upsample(Backend be, Rng rng, int cMax) : base(be)
    {
        _cMax = cMax;
        _conv = Child("conv", new SlimConv2d(be, rng, cMax, cMax, 3));
    }

    public override Tensor Forward(Tensor x, Tensor embAct, ForwardContext ctx) =>
        _conv.Forward(F.Upsample2x(x), ctx.Ch(_cMax));
}

/// <summary>The input conv as a layer of input_blocks.0 (keeps the image channels on its input side).</summary>
public sealed class InputConv : UNetLayer
{
    private readonly SlimConv2d _conv;
    private readonly int _cMax;

    public InputConv(Backend be, Rng rng, int imageChannels, int cMax) : base(be)
    {
        _cMax = cMax;
        _conv = Child("conv", new SlimConv2d(be, rng, imageChannels, cMax, 3));
    }

    public override Tensor Forward(Tensor x, Tensor embAct, ForwardContext ctx) => _conv.Forward(x, ctx.Ch(_cMax));
}

/// <summary>A sequence of layers applied in order (ADM's TimestepEmbedSequential), children named 0, 1, ….</summary>
public sealed class LayerSequence(Backend be) : UNetLayer(be)
{
    private readonly List<UNetLayer> _layers = new();

    public T Add<T>(T layer) where T : UNetLayer
    {
        Child(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        _layers.Add(layer);
        return layer;
    }

    public override Tensor Forward(Tensor x, Tensor embAct, ForwardContext ctx)
    {
        foreach (var l in _layers) x = l.Forward(x, embAct, ctx);
        return x;
    }
}
