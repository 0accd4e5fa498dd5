namespace Ddsm.Engine;

public static partial class F
{
    /// <summary>
    /// Multi-head self-attention (ADM's QKVAttentionLegacy): qkv (N, 3C, T) holds, per head h,
    /// q, k, v as consecutive blocks of <paramref name="headChannels"/> channels starting at channel
    /// 3·d·h; out (N, C, T) has head h in channels [h·d, (h+1)·d). softmax(qᵀk/√d) over keys.
    /// Because heads are whole channel blocks, a slimmed qkv projection (a channel prefix) simply
    /// gives fewer heads. FLOPs reported: 4·N·heads·T²·d.
    /// </summary>
    public static Tensor Attention(Tensor qkv, int headChannels)
    {
        const string name = "attention";
        Check.Rank(name, qkv, 3, "qkv (N, 3C, T)");
        int n = qkv.Shape[0], c3 = qkv.Shape[1], t = qkv.Shape[2];
        Check.That(headChannels > 0 && c3 > 0 && c3 % (3 * headChannels) == 0, name,
            $"qkv {ShapeUtil.Str(qkv.Shape)}: 3C={c3} is not a positive multiple of 3·headChannels={3 * headChannels}");
        Check.That(n > 0 && t > 0, name, $"empty qkv {ShapeUtil.Str(qkv.Shape)}");
        int heads = c3 / (3 * headChannels), c = c3 / 3;

        var be = qkv.Backend;
        var desc = new AttentionDesc(n, heads, headChannels, t);
        var y = Tensor.Empty(be, n, c, t);          // (N, C, T)
        var lse = Tensor.Empty(be, n * heads, t);   // (N·heads, T)
        using (Profiler.Op(name, desc.ForwardFlops, be))
            be.AttentionForward(desc, qkv.Buffer, y.Buffer, lse.Buffer);
        if (!Tape.Needs(qkv))
        {
            lse.Dispose();
            return y;
        }
        Tape.Record(name, y, [qkv], gy => be.AttentionBackward(desc, qkv.Buffer, y.Buffer, lse.Buffer, gy.Buffer,
            qkv.EnsureGrad().Buffer));
        return y;
    }
}
