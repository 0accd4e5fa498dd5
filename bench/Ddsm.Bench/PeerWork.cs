using System.Text.Json.Nodes;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Bench;

/// <summary>One named piece of work of the peer benchmark, set up once and then called many times.</summary>
internal interface IPeerWork : IDisposable
{
    /// <summary>One call of the timed work (synchronous on the CPU backend).</summary>
    void Run();
    /// <summary>What set-up reports back: FLOPs per call, a checksum where the driver compares sides.</summary>
    JsonObject Info { get; }
}

/// <summary>
/// The work items, each the twin of the same-named one in bench/pytorch/peer_work.py (same shapes, same
/// amount of work). Kernel items time the op the model calls, with what the op costs around the kernel
/// (output allocation; for backward, the zeroed gradients our tape would create); model items run the
/// UNet of a preset as sampling and training do.
/// </summary>
internal static class PeerWork
{
    public static IPeerWork Create(CpuBackend be, JsonObject s)
    {
        string work = (string?)s["work"] ?? throw new ArgumentException("spec has no 'work'");
        return work switch
        {
            "conv_fwd" => new ConvWork(be, s, backward: false),
            "conv_bwd" => new ConvWork(be, s, backward: true),
            "gn_silu_fwd" => new GroupNormWork(be, s, backward: false),
            "gn_silu_bwd" => new GroupNormWork(be, s, backward: true),
            "attn_fwd" => new AttentionWork(be, s, backward: false),
            "attn_bwd" => new AttentionWork(be, s, backward: true),
            "sample_fwd" => new SampleWork(be, s),
            "train_step" => new TrainWork(be, s),
            _ => throw new ArgumentException($"unknown work '{work}'"),
        };
    }

    public static int Int(JsonObject s, string key) =>
        (int?)s[key] ?? throw new ArgumentException($"spec needs '{key}'");

    /// <summary>A tensor of N(0, 1) values outside any scope (lives until the work is disposed).</summary>
    public static Tensor Randn(CpuBackend be, Rng rng, params int[] shape)
    {
        var a = new float[ShapeUtil.Count(shape)];
        rng.FillNormal(a);
        using (TensorScope.Suspend()) return Tensor.FromArray(be, a, shape);
    }
}

/// <summary>Disposes the tensors a work item made.</summary>
internal abstract class TensorsWork : IPeerWork
{
    private readonly List<Tensor> _owned = new();
    protected Tensor Own(Tensor t) { _owned.Add(t); return t; }
    public abstract void Run();
    public JsonObject Info { get; } = new();
    public virtual void Dispose() { foreach (var t in _owned) t.Dispose(); }
}

/// <summary>conv_fwd / conv_bwd: 3×3, pad 1, stride 1, Cin = Cout = c, with bias, batch n, hw×hw.</summary>
internal sealed class ConvWork : TensorsWork
{
    private readonly CpuBackend _be;
    private readonly Tensor _x, _w, _b, _dy;
    private readonly ConvDesc _d;
    private readonly bool _backward;

    public ConvWork(CpuBackend be, JsonObject s, bool backward)
    {
        (_be, _backward) = (be, backward);
        int n = PeerWork.Int(s, "n"), c = PeerWork.Int(s, "c"), hw = PeerWork.Int(s, "hw");
        var rng = new Rng(1);
        _x = Own(PeerWork.Randn(be, rng, n, c, hw, hw));
        _w = Own(PeerWork.Randn(be, rng, c, c, 3, 3));
        _b = Own(PeerWork.Randn(be, rng, c));
        _dy = Own(PeerWork.Randn(be, rng, n, c, hw, hw));
        _d = new ConvDesc(n, c, hw, hw, c, 3, 1, 1, c, c);
        Info["flops"] = backward ? 2 * _d.ForwardFlops : _d.ForwardFlops;
    }

    public override void Run()
    {
        using var scope = new TensorScope();
        if (!_backward)
        {
            using (Tape.NoGrad()) F.Conv2d(_x, _w, _b, _d.Cout);
            return;
        }
        // What the tape does for conv2d.bwd: zeroed gradients, then the data and weight(+bias) kernels.
        var dx = Tensor.Zeros(_be, _x.Shape);
        var dw = Tensor.Zeros(_be, _w.Shape);
        var db = Tensor.Zeros(_be, _b.Shape);
        _be.Conv2dBackwardData(_d, _dy.Buffer, _w.Buffer, dx.Buffer);
        _be.Conv2dBackwardWeight(_d, _x.Buffer, _dy.Buffer, dw.Buffer, db.Buffer);
    }
}

/// <summary>gn_silu_fwd / gn_silu_bwd: GroupNorm(groups) + SiLU (fused here, two ops in PyTorch), batch n.</summary>
internal sealed class GroupNormWork : TensorsWork
{
    private readonly CpuBackend _be;
    private readonly Tensor _x, _g, _b, _dy, _mean, _rstd;
    private readonly GroupNormDesc _d;
    private readonly bool _backward;

    public GroupNormWork(CpuBackend be, JsonObject s, bool backward)
    {
        (_be, _backward) = (be, backward);
        int n = PeerWork.Int(s, "n"), c = PeerWork.Int(s, "c"), hw = PeerWork.Int(s, "hw");
        int groups = (int?)s["groups"] ?? 16;
        var rng = new Rng(2);
        _x = Own(PeerWork.Randn(be, rng, n, c, hw, hw));
        _g = Own(PeerWork.Randn(be, rng, c));
        _b = Own(PeerWork.Randn(be, rng, c));
        _dy = Own(PeerWork.Randn(be, rng, n, c, hw, hw));
        _d = new GroupNormDesc(n, c, hw * hw, groups, c, 1e-5f, SiLU: true);
        using (TensorScope.Suspend())
        {
            _mean = Own(Tensor.Empty(be, n, groups));
            _rstd = Own(Tensor.Empty(be, n, groups));
            using var y = Tensor.Empty(be, _x.Shape);
            be.GroupNormForward(_d, _x.Buffer, _g.Buffer, _b.Buffer, null, null, y.Buffer, _mean.Buffer, _rstd.Buffer);
        }
        Info["flops"] = 14L * n * c * hw * hw;
    }

    public override void Run()
    {
        using var scope = new TensorScope();
        if (!_backward)
        {
            using (Tape.NoGrad()) F.GroupNorm(_x, _g, _b, _d.G, _d.Eps, silu: true);
            return;
        }
        var dx = Tensor.Zeros(_be, _x.Shape);
        var dg = Tensor.Zeros(_be, _g.Shape);
        var db = Tensor.Zeros(_be, _b.Shape);
        _be.GroupNormBackward(_d, _x.Buffer, _g.Buffer, _b.Buffer, null, null, _mean.Buffer, _rstd.Buffer,
            _dy.Buffer, dx.Buffer, dg.Buffer, db.Buffer, null, null);
    }
}

/// <summary>attn_fwd / attn_bwd: ADM's legacy-layout attention over T = hw² tokens, qkv (n, 3c, T).</summary>
internal sealed class AttentionWork : TensorsWork
{
    private readonly CpuBackend _be;
    private readonly Tensor _qkv, _y, _lse, _dy;
    private readonly AttentionDesc _d;
    private readonly bool _backward;
    private readonly int _headChannels;

    public AttentionWork(CpuBackend be, JsonObject s, bool backward)
    {
        (_be, _backward) = (be, backward);
        int n = PeerWork.Int(s, "n"), c = PeerWork.Int(s, "c"), hw = PeerWork.Int(s, "hw");
        _headChannels = (int?)s["head_channels"] ?? 32;
        int t = hw * hw;
        var rng = new Rng(3);
        _qkv = Own(PeerWork.Randn(be, rng, n, 3 * c, t));
        _dy = Own(PeerWork.Randn(be, rng, n, c, t));
        _d = new AttentionDesc(n, c / _headChannels, _headChannels, t);
        using (TensorScope.Suspend())
        {
            _y = Own(Tensor.Empty(be, n, c, t));
            _lse = Own(Tensor.Empty(be, n * _d.Heads, t));
        }
        be.AttentionForward(_d, _qkv.Buffer, _y.Buffer, _lse.Buffer);
        // Backward: P recomputed, then dV, dP, dQ, dK: five T×T×d products against the forward's two.
        Info["flops"] = backward ? 5 * _d.ForwardFlops / 2 : _d.ForwardFlops;
    }

    public override void Run()
    {
        using var scope = new TensorScope();
        if (!_backward)
        {
            using (Tape.NoGrad()) F.Attention(_qkv, _headChannels);
            return;
        }
        var dqkv = Tensor.Zeros(_be, _qkv.Shape);
        _be.AttentionBackward(_d, _qkv.Buffer, _y.Buffer, _lse.Buffer, _dy.Buffer, dqkv.Buffer);
    }
}
