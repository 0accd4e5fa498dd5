using System.Runtime.InteropServices;

namespace Ddsm.Engine.Cuda;

// Fused self-attention → kernels/attention.cu (flash-style forward with lse; backward in three
// kernels: row dot D, dK/dV per key tile, dQ per query tile — no atomics).
public sealed partial class CudaBackend
{
    private const string At = "attention.cu";

    /// <summary>Mirror of struct AttnGeom in attention.cu.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct AttnGeom
    {
        public int H, D, T;
        public float Scale;
    }

    private static (AttnGeom g, string suffix) AttnSetup(in AttentionDesc d)
    {
        if (d.HeadDim <= 0 || d.HeadDim > 128)
            throw new NotSupportedException($"attention: head dim {d.HeadDim} not supported by the CUDA kernels (1..128)");
        var g = new AttnGeom { H = d.Heads, D = d.HeadDim, T = d.T, Scale = 1f / MathF.Sqrt(d.HeadDim) };
        return (g, d.HeadDim <= 64 ? "_d64" : "_d128");
    }

    public override void AttentionForward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse)
    {
        var (g, sfx) = AttnSetup(d);
        uint smem = (uint)((d.HeadDim * (32 + 2 * 33) + 4 * 8 * 32) * sizeof(float));
        Launch(At, "attn_fwd" + sfx, (Ceil(d.T, 32), (uint)d.Heads, (uint)d.N), 128,
            A().Ptr(Own(qkv)).Ptr(Own(output)).Ptr(Own(lse)).Struct(g), smem);
    }

    public override void AttentionBackward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse,
        DeviceBuffer dout, DeviceBuffer dqkv)
    {
        var (g, sfx) = AttnSetup(d);
        var D = Allocate((long)d.N * d.Heads * d.T);   // (N·H, T) row terms Σ dout·out
        try
        {
            Launch(At, "attn_bwd_dot", (Blocks((long)d.N * d.Heads * d.T), 1, 1), 256,
                A().Ptr(Own(output)).Ptr(Own(dout)).Ptr(D).I32(d.N).Struct(g));
            var grid = (Ceil(d.T, 32), (uint)d.Heads, (uint)d.N);
            uint smemKv = (uint)((d.HeadDim * (2 * 32 + 2 * 33) + 2 * 4 * 8 * 32) * sizeof(float));
            Launch(At, "attn_bwd_kv" + sfx, grid, 128,
                A().Ptr(Own(qkv)).Ptr(Own(lse)).Ptr(D).Ptr(Own(dout)).Ptr(Own(dqkv)).Struct(g), smemKv);
            uint smemQ = (uint)((d.HeadDim * (2 * 32 + 2 * 33) + 4 * 8 * 32) * sizeof(float));
            Launch(At, "attn_bwd_q" + sfx, grid, 128,
                A().Ptr(Own(qkv)).Ptr(Own(lse)).Ptr(D).Ptr(Own(dout)).Ptr(Own(dqkv)).Struct(g), smemQ);
        }
        finally { Free(D); }
    }
}
