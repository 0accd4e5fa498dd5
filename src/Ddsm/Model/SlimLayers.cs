using Ddsm.Engine.Nn;

namespace Ddsm.Model;

/// <summary>
/// Slimmable conv: stores the full weight (outMax, inMax, k, k) and runs the prefix of its
/// channels (input width from the tensor, output width given), without copies.
/// A 1-D (k = 1, PyTorch conv1d) weight is stored (outMax, inMax, 1) as ADM's attention has it.
/// </summary>
public sealed class SlimConv2d : Module
{
    private readonly Tensor _w, _b;
    private readonly bool _conv1d;
    public int InMax { get; }
    public int OutMax { get; }
    public int Kernel { get; }
    public int Stride { get; }

    public SlimConv2d(Backend be, Rng rng, int inMax, int outMax, int kernel, int stride = 1, bool zeroInit = false,
                      bool conv1d = false)
        : base(be)
    {
        (InMax, OutMax, Kernel, Stride, _conv1d) = (inMax, outMax, kernel, stride, conv1d);
        int[] shape = conv1d ? [outMax, inMax, 1] : [outMax, inMax, kernel, kernel];
        _w = Param("weight", shape, zeroInit ? Init.Zeros : Init.DefaultWeight(rng));
        _b = Param("bias", [outMax], zeroInit ? Init.Zeros : Init.DefaultBias(rng, inMax * kernel * kernel));
    }

    public Tensor Forward(Tensor x, int outChannels)
    {
        var w = _conv1d ? _w.Reshape(OutMax, InMax, 1, 1) : _w;
        return F.Conv2d(x, w, _b, outChannels, Stride, Kernel / 2);
    }

    /// <summary>
    /// Forward when the channels are equal blocks that shrink together: attention with a fixed number
    /// of heads, whose q, k and v of every head each keep the prefix of their own channels. The output
    /// rows are <paramref name="outBlocks"/> blocks cut to <paramref name="outPerBlock"/> rows each, the
    /// input columns <paramref name="inBlocks"/> blocks cut to (active input)/<paramref name="inBlocks"/>.
    /// The cut weight is a copy (gradients flow back into the prefixes); one block each way is the
    /// plain prefix, without a copy.
    /// </summary>
    public Tensor ForwardBlocks(Tensor x, int outBlocks, int outPerBlock, int inBlocks)
    {
        int k2 = Kernel * Kernel, cin = x.Shape[1], rows = outBlocks * outPerBlock;
        if (OutMax % outBlocks != 0 || InMax % inBlocks != 0 || cin % inBlocks != 0 || outPerBlock > OutMax / outBlocks)
            throw new ArgumentException($"{_w.Name}: ({OutMax}, {InMax}) does not cut into {outBlocks}×{outPerBlock}" +
                                        $" rows and {inBlocks} column blocks of {cin}");
        Tensor w = _w.Reshape(OutMax, InMax * k2), b = _b;
        int wRows = OutMax, wCols = InMax;
        if (outBlocks > 1)
        {
            // (blocks, rows per block, in·k²) → the first outPerBlock rows of every block.
            w = F.SliceChannels(w.Reshape(outBlocks, OutMax / outBlocks, InMax * k2), 0, outPerBlock);
            b = F.SliceChannels(_b.Reshape(outBlocks, OutMax / outBlocks), 0, outPerBlock).Reshape(rows);
            wRows = rows;
        }
        if (inBlocks > 1 && cin < InMax)
        {
            // (rows·blocks, columns per block, k²) → the first cin/blocks columns of every block.
            w = F.SliceChannels(w.Reshape(wRows * inBlocks, InMax / inBlocks, k2), 0, cin / inBlocks);
            wCols = cin;
        }
        return F.Conv2d(x, w.Reshape(wRows, wCols, Kernel, Kernel), b, rows, Stride, Kernel / 2);
    }
}

/// <summary>Slimmable linear (PyTorch layout (outMax, inMax)).</summary>
public sealed class SlimLinear : Module
{
    private readonly Tensor _w, _b;
    public int InMax { get; }
    public int OutMax { get; }

    public SlimLinear(Backend be, Rng rng, int inMax, int outMax) : base(be)
    {
        (InMax, OutMax) = (inMax, outMax);
        _w = Param("weight", [outMax, inMax], Init.DefaultWeight(rng));
        _b = Param("bias", [outMax], Init.DefaultBias(rng, inMax));
    }

    public Tensor Forward(Tensor x, int outFeatures) => F.Linear(x, _w, _b, outFeatures);
}

/// <summary>GroupNorm over the active channels with a sliced affine; optional fused scale-shift and SiLU.</summary>
public sealed class SlimGroupNorm : Module
{
    private readonly Tensor _g, _b;
    private readonly int _groups;

    public SlimGroupNorm(Backend be, int channelsMax, int groups) : base(be)
    {
        _groups = groups;
        _g = Param("weight", [channelsMax], Init.Ones);
        _b = Param("bias", [channelsMax], Init.Zeros);
    }

    public Tensor Forward(Tensor x, bool silu, Tensor? scale = null, Tensor? shift = null)
        => F.GroupNorm(x, _g, _b, _groups, 1e-5f, scale, shift, silu);
}
