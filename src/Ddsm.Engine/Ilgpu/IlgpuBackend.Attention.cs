using ILGPU;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Fused self-attention → kernels/Attention.cs: flash-style forward that keeps lse; backward in three
// kernels (row dot D, dK/dV per key tile, dQ per query tile), so no atomics and the same bits every run.
public sealed partial class IlgpuBackend
{
    private AttentionArgs Attention(in AttentionDesc d, out string spec)
    {
        if (d.HeadDim <= 0 || d.HeadDim > AttentionKernels.MaxHeadDim)
            throw new NotSupportedException(
                $"{Name} attention: head dim {d.HeadDim} is not supported (1..{AttentionKernels.MaxHeadDim})");
        if (d.N > 65535 || d.Heads > 65535)
            throw new NotSupportedException($"{Name} attention: N {d.N} × heads {d.Heads} too large for one launch");
        spec = AttentionKernels.Specialisation(d.HeadDim);
        return new AttentionArgs { N = d.N, H = d.Heads, Dim = d.HeadDim, T = d.T, Scale = 1f / MathF.Sqrt(d.HeadDim) };
    }

    /// <summary>One group of 128 threads per 32-token tile of each (sample, head).</summary>
    private static Index3D AttentionGrid(in AttentionDesc d) => new(Ceil(d.T, AttentionKernels.Keys), d.Heads, d.N);

    public override void AttentionForward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse)
    {
        var a = Attention(d, out var spec);
        a.Qkv = Own(qkv).View; a.Out = Own(output).View; a.Lse = Own(lse).View;
        Launch(K<AttentionArgs>("attn_fwd_" + spec), AttentionGrid(d), AttentionKernels.Threads, a,
            AttentionKernels.ForwardSharedFloats(d.HeadDim));
    }

    public override void AttentionBackward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse,
        DeviceBuffer dout, DeviceBuffer dqkv)
    {
        var a = Attention(d, out var spec);
        long rows = (long)d.N * d.Heads * d.T;
        if (rows == 0) return;
        var rowDot = Allocate(rows);   // (N·H, T): D = Σ_j dout·out per token
        try
        {
            a.Qkv = Own(qkv).View; a.Out = Own(output).View; a.Lse = Own(lse).View; a.RowDot = Own(rowDot).View;
            a.Dout = Own(dout).View; a.Dqkv = Own(dqkv).View;
            Launch(K<AttentionArgs>("attn_bwd_dot"), new Index3D(GridFor(rows, FlexThreads), 1, 1), FlexThreads, a);
            Launch(K<AttentionArgs>("attn_bwd_kv_" + spec), AttentionGrid(d), AttentionKernels.Threads, a,
                AttentionKernels.KeyValueSharedFloats(d.HeadDim));
            Launch(K<AttentionArgs>("attn_bwd_q_" + spec), AttentionGrid(d), AttentionKernels.Threads, a,
                AttentionKernels.QuerySharedFloats(d.HeadDim));
        }
        finally { Free(rowDot); }   // stream order: reused only by later work
    }
}
