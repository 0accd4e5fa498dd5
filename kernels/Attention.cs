// Fused multi-head self-attention, flash style (the T×T score matrix never reaches device memory), forward
// and backward, over ADM's "legacy" head-major qkv layout: qkv (N, 3C, T) with C = H·d; head h's q is
// channels [h·3d, h·3d+d), k the next d, v the next d (a slimmable channel prefix keeps whole heads).
// Tokens are the fastest axis, so one channel of 32 consecutive tokens is a coalesced 128-byte load.
// out (N, C, T); lse (N·H, T) the row log-sum-exp kept for backward; scale 1/√d.
//
// Shape: 128 threads = 4 warps per group and 32-token tiles; grid (ceil(T/32), H, N). Forward and dQ: a
// group owns 32 queries, each warp 8 of them. While scoring, lane = key: 8 dot products per lane, the 8
// q values of a channel read as a broadcast in two 16-byte loads (Vec4), k conflict-free thanks to a
// 33-float row pitch. While accumulating P·V, lane = channel (j = lane + 32·jj, jj < d/32 rounded up), so
// each lane keeps 8 × slots accumulators in registers; P is kept key-major (32 keys × 8 queries) so that
// the 8 probabilities of a key are again two broadcast 16-byte loads. dK/dV swap the roles (a group owns
// 32 keys, lane = query while scoring). Shared memory is cut with the vector-read regions first, so they
// stay 16-byte aligned for any d.
// Backward recomputes P from lse and splits dQ from dK/dV into two kernels, so neither needs atomics:
// deterministic. Online softmax keeps a running max per query (reduced over the warp for all 8 rows at
// once) and per-lane shares of the running sum, summed over the warp at the end; keys past T score NegBig.
//
// The register tiles (8 rows × slots accumulators, the 8 scores and per-row statistics of a lane) are
// scalar fields written out by kernels/gen (kernels/Generated/AttentionTiles.g.cs): ILGPU neither
// unrolls loops nor keeps arrays in registers. The tile type is the head-dim specialisation (AttnTile32,
// AttnTile64, AttnTile128: 1, 2, 4 slots), so every loop over slots is unrolled at compile time.
// Shared memory is dynamic and sized by d (above 48 KB for d = 128; the backend raises the limit).
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>
/// Four floats that move as one 16-byte access: ILGPU turns a struct load or store into ld/st.shared.v4
/// (and aligns the dynamic shared memory to 16 bytes), where 4 scalar accesses would cost 4 instructions.
/// </summary>
public struct Vec4
{
    public float X, Y, Z, W;
}

/// <summary>
/// One warp's register tile: 8 rows (queries or keys) × the channels j = lane + 32·jj of the lane's slots
/// jj, as scalar fields. The implementing type is the head-dim specialisation (d ≤ <see cref="MaxDim"/>).
/// </summary>
public interface IAttnTile
{
    /// <summary>Largest head dim the tile holds: 32 × channel slots.</summary>
    int MaxDim { get; }
    /// <summary>acc[i][·] *= f_i.</summary>
    void Scale(Rows8 f);
    /// <summary>
    /// acc[i][jj] += Σ_kk w[kk][i] · x[j·33 + kk] for the lane's channels j = lane + 32·jj; w is a warp's
    /// (32 tokens, 8 rows) block, two Vec4 per token.
    /// </summary>
    void Accumulate(ArrayView<Vec4> w, ArrayView<float> x, int lane, int d);
    /// <summary>y[j·33 + col + i] = acc[i][jj] · f_i for the lane's channels j &lt; d.</summary>
    void Stage(ArrayView<float> y, int col, int lane, int d, Rows8 f);
}

/// <summary>Arguments of the attention kernels (which views are read or written depends on the kernel).</summary>
public struct AttentionArgs
{
    /// <summary>qkv (N, 3·H·d, T); out and dout (N, H·d, T); lse and row dots D (N·H, T); dqkv like qkv.</summary>
    public ArrayView<float> Qkv, Out, Lse, RowDot, Dout, Dqkv;
    /// <summary>Batch, heads, head dim d, tokens.</summary>
    public int N, H, Dim, T;
    /// <summary>1/√d.</summary>
    public float Scale;

    /// <summary>Offset of head h's q rows in qkv (and dqkv); its k rows follow at + d·T, v at + 2·d·T.</summary>
    public readonly long QBase(int n, int h) => ((long)n * 3 * H + 3L * h) * Dim * T;
    /// <summary>Offset of head h's rows in out and dout.</summary>
    public readonly long OutBase(int n, int h) => ((long)n * H + h) * Dim * T;
    /// <summary>Offset of head h's row in lse and D.</summary>
    public readonly long RowBase(int n, int h) => ((long)n * H + h) * T;
}

public static partial class AttentionKernels
{
    /// <summary>Threads per group, warps, rows (queries or keys) per warp, tokens per tile, padded row pitch.</summary>
    public const int Threads = 128, Warps = 4, Rows = 8, Keys = 32, Pitch = 33;
    /// <summary>Largest head dim of any specialisation.</summary>
    public const int MaxHeadDim = 128;
    /// <summary>The 4 warps' (32 tokens × 8 rows) blocks of probabilities or score gradients.</summary>
    private const int WarpBlocks = Warps * Keys * Rows;

    /// <summary>The specialisation for head dim d (≤ <see cref="MaxHeadDim"/>): "d32", "d64" or "d128".</summary>
    public static string Specialisation(int d) => d <= 32 ? "d32" : d <= 64 ? "d64" : "d128";

    /// <summary>Dynamic shared floats of each kernel at head dim d (the layouts are at the kernels).</summary>
    public static int ForwardSharedFloats(int d) => d * (Keys + 2 * Pitch) + WarpBlocks;
    public static int KeyValueSharedFloats(int d) => d * (2 * Keys + 2 * Pitch) + 2 * WarpBlocks;
    public static int QuerySharedFloats(int d) => d * (2 * Keys + 2 * Pitch) + WarpBlocks;

    internal static KernelEntry[] Catalog =>
    [
        .. Specialised<AttnTile32>(), .. Specialised<AttnTile64>(), .. Specialised<AttnTile128>(),
        KernelEntry.Of<AttentionArgs>(RowDotKernel, "attn_bwd_dot", "attention", hot: false,
            "D = Σ_j dout·out per token (softmax backward's row term)"),
    ];

    private static KernelEntry[] Specialised<TTile>() where TTile : struct, IAttnTile
    {
        int d = default(TTile).MaxDim;
        return
        [
            KernelEntry.Of<AttentionArgs>(Forward<TTile>, $"attn_fwd_d{d}", "attention", hot: true,
                $"out, lse of fused multi-head attention, head dim ≤ {d}"),
            KernelEntry.Of<AttentionArgs>(KeyValueGrad<TTile>, $"attn_bwd_kv_d{d}", "attention", hot: true,
                $"dk, dv += per 32-key tile, head dim ≤ {d}"),
            KernelEntry.Of<AttentionArgs>(QueryGrad<TTile>, $"attn_bwd_q_d{d}", "attention", hot: true,
                $"dq += per 32-query tile, head dim ≤ {d}"),
        ];
    }

    /// <summary>out, lse from qkv, for the group's 32 queries, looping over every key tile.</summary>
    public static void Forward<TTile>(AttentionArgs a) where TTile : struct, IAttnTile
    {
        int d = a.Dim, T = a.T, n = Grid.IdxZ, h = Grid.IdxY, q0 = Grid.IdxX * Keys;
        int lane = Warp.LaneIdx, warp = Group.IdxX >> 5, col = warp * Rows;   // col: the warp's first row
        var sm = new SharedCut(SharedMemory.GetDynamic<float>());
        var p = sm.WarpBlock(warp);    // (32 keys, 8 queries) probabilities of this warp
        var qs = sm.Next(d * Keys);    // (d, 32) the group's queries
        var ks = sm.Next(d * Pitch);   // (d, 33) key tile, then the output staging
        var vs = sm.Next(d * Pitch);   // (d, 33) value tile
        long q = a.QBase(n, h), k = q + (long)d * T, v = k + (long)d * T;
        LoadTile(qs, Keys, a.Qkv, q, d, T, q0);
        var m = Rows8.Fill(Dev.NegBig);
        var l = Rows8.Fill(0f);
        var own = qs.Cast<Vec4>();
        var acc = default(TTile);
        for (int k0 = 0; k0 < T; k0 += Keys)
        {
            LoadTilePair(ks, a.Qkv, k, vs, a.Qkv, v, d, T, k0);
            var s = Rows8.Fill(0f);
            for (int j = 0; j < d; j++) s.Add(own, j * (Keys / 4) + 2 * warp, ks[j * Pitch + lane]);
            acc.Scale(SoftmaxRows(s.ScaledOrMasked(a.Scale, k0 + lane < T), ref m, ref l, p, lane));
            Warp.Barrier();    // every lane's p is written
            acc.Accumulate(p, vs, lane, d);
        }
        FinishRows(m, l.WarpSum(lane), out var lse, out var inv);
        if (lane == 0) lse.Store(a.Lse, a.RowBase(n, h) + q0 + col, T - q0 - col);
        Group.Barrier();       // ks is free: stage the output there, then write whole token rows
        acc.Stage(ks, col, lane, d, inv);
        Group.Barrier();
        StoreTile(a.Out, a.OutBase(n, h), ks, d, T, q0, add: false);
    }

    /// <summary>dk, dv += for the group's 32 keys, looping over every query tile.</summary>
    public static void KeyValueGrad<TTile>(AttentionArgs a) where TTile : struct, IAttnTile
    {
        int d = a.Dim, T = a.T, n = Grid.IdxZ, h = Grid.IdxY, k0 = Grid.IdxX * Keys;
        int lane = Warp.LaneIdx, warp = Group.IdxX >> 5, col = warp * Rows;   // col: the warp's first row
        var sm = new SharedCut(SharedMemory.GetDynamic<float>());
        var p = sm.WarpBlock(warp);    // (32 queries, 8 keys) probabilities of this warp
        var ds = sm.WarpBlock(warp);   // (32 queries, 8 keys) score gradients
        var ks = sm.Next(d * Keys);    // (d, 32) the group's keys
        var vs = sm.Next(d * Keys);    // (d, 32) and values
        var qs = sm.Next(d * Pitch);   // (d, 33) query tile, then dk staging
        var os = sm.Next(d * Pitch);   // (d, 33) dout tile, then dv staging
        long q = a.QBase(n, h), k = q + (long)d * T, v = k + (long)d * T, o = a.OutBase(n, h), row = a.RowBase(n, h);
        LoadTile(ks, Keys, a.Qkv, k, d, T, k0);
        LoadTile(vs, Keys, a.Qkv, v, d, T, k0);
        int keys = T - k0 - col;   // rows of this warp inside the sequence
        var dk = default(TTile);
        var dv = default(TTile);
        for (int q0 = 0; q0 < T; q0 += Keys)
        {
            LoadTilePair(qs, a.Qkv, q, os, a.Dout, o, d, T, q0);
            bool queryOk = q0 + lane < T;
            float lse = queryOk ? a.Lse[row + q0 + lane] : 0f, rowDot = queryOk ? a.RowDot[row + q0 + lane] : 0f;
            Scores(out var s, out var dp, ks, qs, vs, os, warp, lane, d);
            KeyGradRows(s, dp, keys, queryOk, lse, rowDot, a.Scale, p, ds, lane);
            Warp.Barrier();
            dv.Accumulate(p, os, lane, d);
            dk.Accumulate(ds, qs, lane, d);
        }
        Group.Barrier();
        dk.Stage(qs, col, lane, d, Rows8.Fill(a.Scale));
        dv.Stage(os, col, lane, d, Rows8.Fill(1f));
        Group.Barrier();
        StoreTile(a.Dqkv, k, qs, d, T, k0, add: true);
        StoreTile(a.Dqkv, v, os, d, T, k0, add: true);
    }

    /// <summary>dq += for the group's 32 queries, looping over every key tile.</summary>
    public static void QueryGrad<TTile>(AttentionArgs a) where TTile : struct, IAttnTile
    {
        int d = a.Dim, T = a.T, n = Grid.IdxZ, h = Grid.IdxY, q0 = Grid.IdxX * Keys;
        int lane = Warp.LaneIdx, warp = Group.IdxX >> 5, col = warp * Rows;   // col: the warp's first row
        var sm = new SharedCut(SharedMemory.GetDynamic<float>());
        var ds = sm.WarpBlock(warp);   // (32 keys, 8 queries) score gradients of this warp
        var qs = sm.Next(d * Keys);    // (d, 32) the group's queries
        var os = sm.Next(d * Keys);    // (d, 32) their dout
        var ks = sm.Next(d * Pitch);   // (d, 33) key tile, then dq staging
        var vs = sm.Next(d * Pitch);   // (d, 33) value tile
        long q = a.QBase(n, h), k = q + (long)d * T, v = k + (long)d * T, row = a.RowBase(n, h) + q0 + col;
        LoadTile(qs, Keys, a.Qkv, q, d, T, q0);
        LoadTile(os, Keys, a.Dout, a.OutBase(n, h), d, T, q0);
        int queries = T - q0 - col;   // rows of this warp inside the sequence
        var lse = Rows8.Fill(0f);
        var rowDot = Rows8.Fill(0f);
        lse.Load(a.Lse, row, queries);
        rowDot.Load(a.RowDot, row, queries);
        var dq = default(TTile);
        for (int k0 = 0; k0 < T; k0 += Keys)
        {
            LoadTilePair(ks, a.Qkv, k, vs, a.Qkv, v, d, T, k0);
            Scores(out var s, out var dp, qs, ks, os, vs, warp, lane, d);
            QueryGradRows(s, dp, queries, k0 + lane < T, lse, rowDot, a.Scale, ds, lane);
            Warp.Barrier();
            dq.Accumulate(ds, ks, lane, d);
        }
        Group.Barrier();
        dq.Stage(ks, col, lane, d, Rows8.Fill(a.Scale));
        Group.Barrier();
        StoreTile(a.Dqkv, q, ks, d, T, q0, add: true);
    }

    /// <summary>D (N·H, T) = Σ_j dout·out per token. Grid-stride over N·H·T, any group size.</summary>
    public static void RowDotKernel(AttentionArgs a)
    {
        long total = (long)a.N * a.H * a.T;
        for (long i = Dev.GlobalId; i < total; i += Dev.GridStride)
        {
            long nh = i / a.T, at = nh * a.Dim * a.T + (i - nh * a.T);   // (n, h·d + j, t) with nh = n·H + h
            float s = 0f;
            for (int j = 0; j < a.Dim; j++) s += a.Out[at + (long)j * a.T] * a.Dout[at + (long)j * a.T];
            a.RowDot[i] = s;
        }
    }

    /// <summary>
    /// One query's online-softmax step over a key tile, from the lane's masked, scaled score s and the
    /// tile's maximum over the warp: the running max m becomes m' = max(m, tileMax), the lane's share l of
    /// the running sum is rescaled and extended (the shares are summed over the warp once, at the end: m'
    /// is the same in every lane, so the rescaling commutes with that sum), and alpha = exp(m − m') is the
    /// factor that rescales the query's accumulators. Returns the probability exp(s − m'): 0 for a masked
    /// key, which scores NegBig.
    /// </summary>
    private static float OnlineSoftmax(float s, float tileMax, ref float m, ref float l, out float alpha)
    {
        float mNew = MathF.Max(m, tileMax);
        float e = MathF.Exp(s - mNew);
        alpha = MathF.Exp(m - mNew);
        l = l * alpha + e;
        m = mNew;
        return e;
    }

    /// <summary>
    /// One (query, key) pair of the backward pass: returns P = exp(s·scale − lse), recomputed, and its
    /// score gradient dS = P·(dP − D). Masked pairs (a token past T) get 0.
    /// </summary>
    private static float ScoreGrad(float s, float dp, bool ok, float lse, float rowDot, float scale, out float ds)
    {
        float e = ok ? MathF.Exp(s * scale - lse) : 0f;
        ds = e * (dp - rowDot);
        return e;
    }

    /// <summary>
    /// Scores of the warp's 8 own rows against the lane's token of the current tile over the d channels:
    /// s_i += own[j·32 + 8·warp + i]·tile[j·33 + lane] and dp_i likewise from the second pair (own rows are
    /// broadcast 16-byte reads, tile rows conflict-free).
    /// </summary>
    private static void Scores(out Rows8 s, out Rows8 dp, ArrayView<float> own, ArrayView<float> tile,
        ArrayView<float> own2, ArrayView<float> tile2, int warp, int lane, int d)
    {
        s = Rows8.Fill(0f);
        dp = Rows8.Fill(0f);
        ArrayView<Vec4> o = own.Cast<Vec4>(), o2 = own2.Cast<Vec4>();
        for (int j = 0; j < d; j++)
        {
            s.Add(o, j * (Keys / 4) + 2 * warp, tile[j * Pitch + lane]);
            dp.Add(o2, j * (Keys / 4) + 2 * warp, tile2[j * Pitch + lane]);
        }
    }

    /// <summary>
    /// The next pair of (d, 33) tiles at token t0, once every warp is done with the previous pair:
    /// x from src1 at at1, y from src2 at at2 (all threads).
    /// </summary>
    private static void LoadTilePair(ArrayView<float> x, ArrayView<float> src1, long at1, ArrayView<float> y,
        ArrayView<float> src2, long at2, int d, int T, int t0)
    {
        Group.Barrier();
        LoadTile(x, Pitch, src1, at1, d, T, t0);
        LoadTile(y, Pitch, src2, at2, d, T, t0);
        Group.Barrier();
    }

    /// <summary>sm[j·pitch + t] = src[at + j·T + t0 + t]: the (d, 32) tile at token t0, 0 past T.</summary>
    private static void LoadTile(ArrayView<float> sm, int pitch, ArrayView<float> src, long at, int d, int T, int t0)
    {
        for (int e = Group.IdxX; e < d * Keys; e += Threads)
        {
            int j = e >> 5, t = e & 31;
            sm[j * pitch + t] = t0 + t < T ? src[at + (long)j * T + t0 + t] : 0f;
        }
    }

    /// <summary>dst[at + j·T + t0 + t] = (or +=) sm[j·33 + t] for tokens t0 + t &lt; T (all threads).</summary>
    private static void StoreTile(ArrayView<float> dst, long at, ArrayView<float> sm, int d, int T, int t0, bool add)
    {
        for (int e = Group.IdxX; e < d * Keys; e += Threads)
        {
            int j = e >> 5, t = e & 31;
            if (t0 + t >= T) continue;
            long i = at + (long)j * T + t0 + t;
            dst[i] = add ? dst[i] + sm[j * Pitch + t] : sm[j * Pitch + t];
        }
    }

    /// <summary>
    /// The group's dynamic shared memory cut into consecutive regions, in the order the kernel asks for
    /// them (the host sizes match: *SharedFloats). Vector-read regions come first: every region is a
    /// multiple of 4 floats up to the last one read as Vec4, so they all stay 16-byte aligned.
    /// </summary>
    private struct SharedCut(ArrayView<float> sm)
    {
        private int _at;

        public ArrayView<float> Next(int floats)
        {
            var v = sm.SubView(_at, floats);
            _at += floats;
            return v;
        }

        /// <summary>The next 4 warps' (32 tokens, 8 rows) blocks: returns warp's own, two Vec4 per token.</summary>
        public ArrayView<Vec4> WarpBlock(int warp) =>
            Next(WarpBlocks).Cast<Vec4>().SubView(warp * 2 * Keys, 2 * Keys);
    }
}
