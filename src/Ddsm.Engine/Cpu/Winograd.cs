using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// 3×3, stride-1, pad-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin &amp; Gray 2016), on both
/// SIMD paths. The output is cut into 2×2 tiles; each tile's 4×4 input patch d and each filter g are transformed,
/// V = Bᵀ d B and U = G g Gᵀ, and at each of the 16 transform positions ξ the channels are summed by a GEMM,
/// M_ξ (Cout × tiles) = U_ξ (Cout × Cin) · V_ξ (Cin × tiles); each tile's output is then Y = Aᵀ M A. That is 16
/// multiplies per tile and channel pair where the direct conv does 36 (2.25× fewer FLOPs); the transforms are
/// additions and halvings, O(channels × tiles), run vectorised over 8 tiles (16 on the AVX-512 path,
/// Winograd.Avx512.cs) or, for the weight gradient, over 8 channels.
/// <para>The GEMMs are the direct conv's microkernels (16×16 AVX-512, 6×16 AVX2) over V panels of 16 tiles,
/// written in the packed-B layout by the input transform (which reads x in place, masked at the image's edges,
/// where 8 or 16 tiles are a run of one tile row, or on the AVX-512 path 2 or 4 whole tile rows of a 16- or 8-wide
/// image), against U packed once per call. Work goes to threads
/// by groups of images (one image, or as many whole small images as fill 16 tiles), and within a group by
/// bands of at most 64 tiles so that V and M of a band stay in L2.</para>
/// <para>Accuracy: the transforms add and subtract up to 9 terms per value before the channel sum, so rounding
/// grows a few times over the direct conv's; WinogradTests hold it to the op tests' float64 tolerances
/// (1e-4 + 1e-3·|y| forward, 1e-3 + 1e-3·|g| gradients).</para>
/// </summary>
internal static unsafe partial class Winograd
{
    /// <summary>Off only to time the direct conv against it, and to test both.</summary>
    internal static bool On { get; set; } = true;

    /// <summary>Transform positions (4×4) and tiles per GEMM panel (the microkernels' NR).</summary>
    private const int Xi = 16, Lanes = Sgemm.NR;

    /// <summary>
    /// Padding between the 16 ξ blocks of U, V and M: a block length that is a multiple of 4 KiB would put the 16
    /// rows a transform reads or writes together in one L1 set (8 ways), evicting each other's lines.
    /// </summary>
    private const int Skew = 16;

    /// <summary>Tiles per band: V (16 × Cin × 64 floats) of a 128-channel band is 512 KiB.</summary>
    private const int BandTiles = 64;

    /// <summary>
    /// Zeros from ZeroRow[−8] to ZeroRow[55]: the patch rows above and below an image, read with the same loads as a
    /// row of x (from column −1 to 33).
    /// </summary>
    private static readonly float* ZeroRow = (float*)NativeMemory.AllocZeroed(64 * sizeof(float)) + 8;

    /// <summary>Below 16 channels on either side the GEMMs are too thin to pay for the transforms.</summary>
    private const int MinChannels = 16;

    /// <summary>What a conv computes: its output, its data gradient (itself a conv), or its weight gradient.</summary>
    public enum Kind { Forward, Data, Weight }

    /// <summary>
    /// Whether the Winograd path computes this conv (<paramref name="d"/>: the conv as run, so a data gradient's
    /// desc has Cin and Cout swapped): 3×3, stride 1, pad 1, even H and W, at least 16 channels in and out, a SIMD
    /// path, and enough image groups to keep <paramref name="threads"/> threads busy. By size, where it measured
    /// faster than the direct conv (`paths compare=winograd`, single thread, N8): at 8×8 and below always (the
    /// direct forms are at their weakest there); above, the forward conv and the data gradient from Cin·Cout = 32²
    /// (C16 at 32²: 0.99–1.47× of the direct time, C32: 0.63–0.98×), the weight gradient from 96²: the direct
    /// weight gradient runs near peak there, and the Winograd one, with its larger buffers, varied most with the
    /// machine's state (C64: 0.78–1.24×, C128: 0.56–0.80×).
    /// </summary>
    public static bool Fits(in ConvDesc d, SgemmPath path, int threads, Kind kind = Kind.Forward)
    {
        if (!(On && path >= SgemmPath.Avx2 && Avx2.IsSupported && d.K == 3 && d.Stride == 1 && d.Pad == 1 &&
              d.H % 2 == 0 && d.W % 2 == 0 && d.Cin >= MinChannels && d.Cout >= MinChannels &&
              Groups(d.N, d.H, d.W) >= threads))
            return false;
        long pixels = (long)d.H * d.W, channels = (long)d.Cin * d.Cout;
        if (pixels <= 64) return true;
        return channels >= (kind == Kind.Weight ? 96 * 96 : 32 * 32);
    }

    /// <summary>Images per group: one, or as many as fill a 16-tile panel.</summary>
    private static int ImagesPerGroup(int h, int w)
    {
        int tp = h / 2 * (w / 2);
        return tp >= Lanes ? 1 : (Lanes + tp - 1) / tp;
    }

    private static int Groups(int n, int h, int w)
    {
        int g = ImagesPerGroup(h, w);
        return (n + g - 1) / g;
    }

    /// <summary>
    /// y (N, Cout, H, W) = conv3×3(x (N, Cin, H, W), w) + bias + beta·y (beta 0 or 1). The filter of output
    /// channel o and input channel i, tap q = kh·3 + kw, is w[o·so + i·si + q], or w[o·so + i·si + 8 − q] when
    /// <paramref name="flip"/> (a data gradient's flipped, transposed weight, read in place).
    /// </summary>
    public static void Forward(int n, int cin, int h, int wd, int cout, float* x, float* w, long so, long si,
        bool flip, float* bias, float beta, float* y, ParallelOptions par)
    {
        var path = Sgemm.Path;
        int mPadded = Sgemm.RoundUp(cout, Sgemm.PanelHeight(path));
        long packLen = (long)mPadded * cin + Skew;
        float* up = Scratch.TakeAligned(Scratch.Use.ConvWeight, Xi * packLen);
        TransformWeights(path, cin, cout, w, so, si, flip, up, par);
        var up0 = (nint)up;
        int g = ImagesPerGroup(h, wd);
        Parallel.For(0, (n + g - 1) / g, par, grp =>
        {
            int n0 = grp * g;
            Group(path, n0, Math.Min(g, n - n0), cin, h, wd, cout, x, (float*)up0, packLen, mPadded, bias, beta, y);
        });
    }

    /// <summary>
    /// U_ξ = (G g Gᵀ)_ξ for every (o, i), written straight into the microkernel's packed-A layout (per K block of
    /// <see cref="Sgemm.KcStep"/>: panels of the path's height mr, each kc steps of mr values), one pack of
    /// mPadded × Cin per ξ; rows past Cout are zero. Eight output channels of a panel at a time: their filters
    /// gathered tap by tap, transformed as vectors, stored as the panel's (masked where a 6-row panel ends).
    /// </summary>
    private static void TransformWeights(SgemmPath path, int cin, int cout, float* w, long so, long si, bool flip,
        float* up, ParallelOptions par)
    {
        int mr = Sgemm.PanelHeight(path), mPadded = Sgemm.RoundUp(cout, mr), kcStep = Sgemm.KcStep(cin);
        long packLen = (long)mPadded * cin + Skew;
        var up0 = (nint)up; var w0 = (nint)w;
        Parallel.For(0, mPadded / mr, par, job =>
        {
            int o0 = job * mr;
            var g = stackalloc Vector256<float>[9];
            var u = stackalloc Vector256<float>[Xi];
            var lanes = Vector256<int>.Indices;
            var idx = lanes * (int)so;
            for (int pc = 0; pc < cin; pc += kcStep)
            {
                int kc = Math.Min(kcStep, cin - pc);
                for (int i = pc; i < pc + kc; i++)
                for (int h8 = 0; h8 < mr; h8 += 8)
                {
                    // Lane l: output channel o0 + h8 + l, gathered from l·so; lanes past Cout gather nothing (zero
                    // rows). Both halves of a 16-row panel step in turn: one whole cache line per ξ.
                    int width = Math.Min(8, mr - h8);
                    var valid = Vector256.LessThan(lanes, Vector256.Create(Math.Min(width, cout - o0 - h8))).AsSingle();
                    var store = Vector256.LessThan(lanes, Vector256.Create(width)).AsSingle();
                    float* src = (float*)w0 + (o0 + h8) * so + i * si;
                    for (int q = 0; q < 9; q++)
                        g[q] = Avx2.GatherMaskVector256(Vector256<float>.Zero, src + (flip ? 8 - q : q), idx, valid, 4);
                    FilterTransform(g, u);
                    // Step i of K block pc, panel o0: pc·mPadded + o0·kc + (i − pc)·mr, lanes from h8.
                    float* at = (float*)up0 + (long)pc * mPadded + (long)o0 * kc + (long)(i - pc) * mr + h8;
                    for (int xi = 0; xi < Xi; xi++) Put(at + xi * packLen, u[xi], store, width);
                }
            }
        });
    }

    /// <summary>u (4×4) = G g Gᵀ with G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void FilterTransform(Vector256<float>* g, Vector256<float>* u)
    {
        var half = Vector256.Create(0.5f);
        // r = G g (4×3), then u = r Gᵀ.
        var r = stackalloc Vector256<float>[12];
        for (int j = 0; j < 3; j++)
        {
            Vector256<float> g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
            r[j] = g0;
            r[3 + j] = half * (g0 + g1 + g2);
            r[6 + j] = half * (g0 - g1 + g2);
            r[9 + j] = g2;
        }
        for (int i = 0; i < 4; i++)
        {
            Vector256<float> r0 = r[i * 3], r1 = r[i * 3 + 1], r2 = r[i * 3 + 2];
            u[i * 4] = r0;
            u[i * 4 + 1] = half * (r0 + r1 + r2);
            u[i * 4 + 2] = half * (r0 - r1 + r2);
            u[i * 4 + 3] = r2;
        }
    }

    /// <summary>
    /// One group of images [n0, n0 + gn), band by band: V, the 16 GEMMs, Y. Row runs read x in place; gathered
    /// patches (small images) read a zero-bordered copy of the group, made first.
    /// </summary>
    private static void Group(SgemmPath path, int n0, int gn, int cin, int h, int wd, int cout, float* x,
        float* up, long packLen, int mPadded, float* bias, float beta, float* y)
    {
        int tw2 = wd / 2, tp = h / 2 * tw2, tiles = gn * tp;
        int bs = wd + 2, cs = (h + 2) * bs;
        long isz = (long)cin * cs;
        bool rowRuns = tw2 % 8 == 0, runs16 = path == SgemmPath.Avx512 && tw2 % Lanes == 0;
        // Row runs read x in place (masked loads at the image's edges); gathered patches read a bordered copy.
        bool inPlace = rowRuns && InPlaceOn;
        // On the AVX-512 path 16-tile panels of 2 or 4 whole tile rows (W = 16, 8) read x in place too.
        bool panels512 = path == SgemmPath.Avx512 && InPlaceOn && Panels512On &&
                         (wd == 16 && h % 4 == 0 || wd == 8 && h % 8 == 0);
        inPlace |= panels512;
        float* xg = x + (long)n0 * cin * h * wd, xb = null;
        if (!inPlace)
        {
            xb = Scratch.TakeAligned(Scratch.Use.ConvBordered, gn * isz + Lanes);
            for (int i = 0; i < gn; i++)
            for (int ci = 0; ci < cin; ci++)
                ConvDirect.BorderPlane(xg + ((long)i * cin + ci) * h * wd, xb + i * isz + ci * cs, h, wd);
        }
        int tb = Math.Min(BandTiles, Sgemm.RoundUp(tiles, Lanes));
        float* v = Scratch.TakeAligned(Scratch.Use.WinogradV, Xi * ((long)tb * cin + Skew));
        float* m = Scratch.TakeAligned(Scratch.Use.WinogradM, Xi * ((long)tb * cout + Skew));
        int* offs = stackalloc int[BandTiles];
        float* edge = stackalloc float[Sgemm.MR * Lanes];
        int kcStep = Sgemm.KcStep(cin);
        for (int b0 = 0; b0 < tiles; b0 += tb)
        {
            int nt = Math.Min(tb, tiles - b0), panels = (nt + Lanes - 1) / Lanes, ld = panels * Lanes;
            long vStride = (long)ld * cin + Skew, mStride = (long)ld * cout + Skew;
            if (inPlace && runs16) InputRuns512(xg, b0, panels, cin, h, wd, tp, tw2, v, vStride);
            else if (panels512) InputPanels512(xg, b0, panels, cin, h, wd, tp, tw2, v, vStride);
            else if (inPlace) InputRuns(xg, b0, tiles, panels, cin, h, wd, tp, tw2, v, vStride);
            else
            {
                // Patch origin of each tile in xb (bordered row 2·th is input row 2·th − 1); lanes past the group
                // read its first patch and are never stored.
                for (int l = 0; l < ld; l++)
                {
                    int t = b0 + l;
                    if (t >= tiles) { offs[l] = 0; continue; }
                    int i = t / tp, r = t % tp;
                    offs[l] = (int)(i * isz) + 2 * (r / tw2) * bs + 2 * (r % tw2);
                }
                InputTransform(xb, offs, panels, cin, cs, bs, rowRuns, v, vStride);
            }
            for (int xi = 0; xi < Xi; xi++)
            for (int pnl = 0; pnl < panels; pnl++)
            for (int pc = 0; pc < cin; pc += kcStep)
            {
                int kc = Math.Min(kcStep, cin - pc);
                float* a = up + xi * packLen + (long)pc * mPadded;
                float* b = v + xi * vStride + ((long)pnl * cin + pc) * Lanes;
                float* c = m + xi * mStride + pnl * Lanes;
                float bt = pc == 0 ? 0f : 1f;
                if (path == SgemmPath.Avx512)
                    ConvDirect.Tiles(kc, a, new Sgemm.PackedRows(b), cout, c, ld, bt, Lanes, prefetchC: false);
                else ConvDirect.Tiles6(kc, a, new Sgemm.PackedRows256(b), cout, c, ld, bt, edge);
            }
            if (runs16 || panels512) OutputRuns512(m, ld, mStride, b0, tiles, n0, tp, tw2, h, wd, cout, bias, beta, y);
            else OutputTransform(m, ld, mStride, b0, tiles, n0, tp, tw2, h, wd, cout, bias, beta, y, rowRuns);
        }
    }

    /// <summary>
    /// V_ξ[ci][tile] = (Bᵀ d B)_ξ for the band's tiles, Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0],
    /// [0, 1, 0, −1]], in the packed-B layout: ξ, then 16-tile panel, then ci, then 16 tiles. Eight tiles at a time:
    /// when they are 8 consecutive tiles of one tile row (<paramref name="rowRuns"/>), each patch row is two
    /// deinterleaved runs of 16 floats; otherwise (small images) it is gathered.
    /// </summary>
    private static void InputTransform(float* xb, int* offs, int panels, int cin, int cs, int bs, bool rowRuns,
        float* v, long xiStride)
    {
        var d = stackalloc Vector256<float>[16];
        for (int pnl = 0; pnl < panels; pnl++)
        for (int ci = 0; ci < cin; ci++)
        for (int half = 0; half < 2; half++)
        {
            // Both halves of a panel row in turn: one whole cache line per ξ.
            int* o = offs + pnl * Lanes + half * 8;
            float* b = xb + (long)ci * cs;
            if (rowRuns)
            {
                float* p = b + o[0];
                for (int r = 0; r < 4; r++, p += bs)
                {
                    (d[r * 4], d[r * 4 + 1]) = Deinterleave(p);
                    (d[r * 4 + 2], d[r * 4 + 3]) = Deinterleave(p + 2);
                }
            }
            else
            {
                var idx = Avx.LoadVector256(o);
                for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++)
                    d[r * 4 + c] = Avx2.GatherVector256(b + r * bs + c, idx, 4);
            }
            DataTransform(d);
            float* dst = v + ((long)pnl * cin + ci) * Lanes + half * 8;
            for (int xi = 0; xi < Xi; xi++) Avx.Store(dst + xi * xiStride, d[xi]);
        }
    }

    /// <summary>
    /// AVX-512 panels of whole tile rows at W = 16 and 8 (off only to time and test the 8-tile row runs and gathered
    /// patches they replaced).
    /// </summary>
    internal static bool Panels512On { get; set; } = true;

    /// <summary>Row runs read x in place (off only to time and test the bordered copy they replaced).</summary>
    internal static bool InPlaceOn { get; set; } = true;

    /// <summary>
    /// <see cref="InputTransform"/> for row runs (tw2 a multiple of 8), reading x in place: patch row r of the run of
    /// 8 tiles from tile (th, tw0) is x row 2·th − 1 + r (zeros above and below the image), columns 2·tw0 − 1 to
    /// 2·tw0 + 16, of which the first and last are masked off at the image's left and right edges.
    /// </summary>
    private static void InputRuns(float* x, int b0, int tiles, int panels, int cin, int h, int wd, int tp, int tw2,
        float* v, long xiStride)
    {
        var d = stackalloc Vector256<float>[16];
        var all = Vector256<float>.AllBitsSet;
        var noFirst = Vector256.GreaterThan(Vector256<int>.Indices, Vector256<int>.Zero).AsSingle();
        var noLast = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(7)).AsSingle();
        for (int pnl = 0; pnl < panels; pnl++)
        for (int half = 0; half < 2; half++)
        {
            int t = b0 + pnl * Lanes + half * 8;
            float* dst = v + (long)pnl * cin * Lanes + half * 8;
            if (t >= tiles)
            {
                // Lanes past the group: never stored, but the GEMM reads them.
                for (int ci = 0; ci < cin; ci++)
                for (int xi = 0; xi < Xi; xi++) Avx.Store(dst + ci * Lanes + xi * xiStride, Vector256<float>.Zero);
                continue;
            }
            int i = t / tp, r0 = t % tp, th = r0 / tw2, c0 = 2 * (r0 % tw2);
            var left = c0 == 0 ? noFirst : all;
            var right = c0 + 16 == wd ? noLast : all;
            for (int ci = 0; ci < cin; ci++)
            {
                float* plane = x + ((long)i * cin + ci) * h * wd;
                for (int r = 0; r < 4; r++)
                {
                    int ih = 2 * th - 1 + r;
                    if ((uint)ih >= (uint)h)
                    {
                        d[r * 4] = d[r * 4 + 1] = d[r * 4 + 2] = d[r * 4 + 3] = Vector256<float>.Zero;
                        continue;
                    }
                    // p[0] is column c0 − 1.
                    float* p = plane + (long)ih * wd + c0 - 1;
                    (d[r * 4], d[r * 4 + 1]) = Deinterleave(Avx.MaskLoad(p, left), Avx.LoadVector256(p + 8));
                    (d[r * 4 + 2], d[r * 4 + 3]) = Deinterleave(Avx.LoadVector256(p + 2), Avx.MaskLoad(p + 10, right));
                }
                DataTransform(d);
                for (int xi = 0; xi < Xi; xi++) Avx.Store(dst + ci * Lanes + xi * xiStride, d[xi]);
            }
        }
    }

    /// <summary>d (4×4 patches, row-major) becomes V = Bᵀ d B in place, lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DataTransform(Vector256<float>* d)
    {
        for (int c = 0; c < 4; c++)
        {
            // Columns first: t = Bᵀ d.
            Vector256<float> d0 = d[c], d1 = d[4 + c], d2 = d[8 + c], d3 = d[12 + c];
            d[c] = d0 - d2;
            d[4 + c] = d1 + d2;
            d[8 + c] = d2 - d1;
            d[12 + c] = d1 - d3;
        }
        for (int r = 0; r < 4; r++)
        {
            Vector256<float> t0 = d[r * 4], t1 = d[r * 4 + 1], t2 = d[r * 4 + 2], t3 = d[r * 4 + 3];
            d[r * 4] = t0 - t2;
            d[r * 4 + 1] = t1 + t2;
            d[r * 4 + 2] = t2 - t1;
            d[r * 4 + 3] = t1 - t3;
        }
    }

    /// <summary>(p[0], p[2], …, p[14]) and (p[1], p[3], …, p[15]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Even, Vector256<float> Odd) Deinterleave(float* p) =>
        Deinterleave(Avx.LoadVector256(p), Avx.LoadVector256(p + 8));

    /// <summary>The even and odd elements of the 16 floats a, b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Even, Vector256<float> Odd) Deinterleave(Vector256<float> a, Vector256<float> b)
    {
        // Shuffle picks within 128-bit lanes ([a0 a2 b0 b2 | a4 a6 b4 b6]); the 64-bit permute restores the order.
        var even = Avx2.Permute4x64(Avx.Shuffle(a, b, 0x88).AsDouble(), 0xD8).AsSingle();
        var odd = Avx2.Permute4x64(Avx.Shuffle(a, b, 0xDD).AsDouble(), 0xD8).AsSingle();
        return (even, odd);
    }

    /// <summary>
    /// y = Aᵀ M A (+ bias, + beta·y) for the band's tiles, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]. M is ξ, then
    /// Cout rows of <paramref name="ld"/> tiles. Eight tiles of one tile row store two runs of 16 floats; other
    /// tiles are stored one 2×2 block at a time.
    /// </summary>
    private static void OutputTransform(float* m, int ld, long xiStride, int b0, int tiles, int n0, int tp, int tw2,
        int h, int wd, int cout, float* bias, float beta, float* y, bool rowRuns)
    {
        long img = (long)cout * h * wd;
        var s = stackalloc Vector256<float>[8];
        float* tmp = stackalloc float[32];
        for (int co = 0; co < cout; co++)
        {
            var bv = Vector256.Create(bias is null ? 0f : bias[co]);
            for (int l0 = 0; l0 < ld && b0 + l0 < tiles; l0 += 8)
            {
                float* src = m + (long)co * ld + l0;
                for (int c = 0; c < 4; c++)
                {
                    // Rows first: s = Aᵀ M.
                    var m0 = Avx.LoadVector256(src + c * xiStride);
                    var m1 = Avx.LoadVector256(src + (4 + c) * xiStride);
                    var m2 = Avx.LoadVector256(src + (8 + c) * xiStride);
                    var m3 = Avx.LoadVector256(src + (12 + c) * xiStride);
                    s[c] = m0 + m1 + m2;
                    s[4 + c] = m1 - m2 - m3;
                }
                var y00 = s[0] + s[1] + s[2] + bv;
                var y01 = s[1] - s[2] - s[3] + bv;
                var y10 = s[4] + s[5] + s[6] + bv;
                var y11 = s[5] - s[6] - s[7] + bv;
                int t0 = b0 + l0;
                if (rowRuns)
                {
                    // Tiles t0 … t0 + 7: one tile row of one image (tw2 and t0 are multiples of 8).
                    int i = t0 / tp, r = t0 % tp, th = r / tw2, tw = r % tw2;
                    float* o = y + (n0 + i) * img + (long)co * h * wd + (long)2 * th * wd + 2 * tw;
                    StoreRun(o, y00, y01, beta);
                    StoreRun(o + wd, y10, y11, beta);
                    continue;
                }
                Avx.Store(tmp, y00); Avx.Store(tmp + 8, y01); Avx.Store(tmp + 16, y10); Avx.Store(tmp + 24, y11);
                for (int l = 0; l < 8 && t0 + l < tiles; l++)
                {
                    int t = t0 + l, i = t / tp, r = t % tp, th = r / tw2, tw = r % tw2;
                    float* o = y + (n0 + i) * img + (long)co * h * wd + (long)2 * th * wd + 2 * tw;
                    if (beta == 0f)
                    {
                        o[0] = tmp[l]; o[1] = tmp[8 + l]; o[wd] = tmp[16 + l]; o[wd + 1] = tmp[24 + l];
                    }
                    else
                    {
                        o[0] += tmp[l]; o[1] += tmp[8 + l]; o[wd] += tmp[16 + l]; o[wd + 1] += tmp[24 + l];
                    }
                }
            }
        }
    }

    /// <summary>16 floats at o: the lanes of <paramref name="left"/> and <paramref name="right"/> interleaved.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRun(float* o, Vector256<float> left, Vector256<float> right, float beta)
    {
        var lo = Avx.UnpackLow(left, right);    // l0 r0 l1 r1 | l4 r4 l5 r5
        var hi = Avx.UnpackHigh(left, right);   // l2 r2 l3 r3 | l6 r6 l7 r7
        var first = Avx.Permute2x128(lo, hi, 0x20);
        var second = Avx.Permute2x128(lo, hi, 0x31);
        if (beta != 0f)
        {
            first += Avx.LoadVector256(o);
            second += Avx.LoadVector256(o + 8);
        }
        Avx.Store(o, first);
        Avx.Store(o + 8, second);
    }

    // ---- weight gradient -------------------------------------------------------------------------------------

    /// <summary>Tiles per weight-gradient band: the K of its GEMMs (whole images, at least one).</summary>
    private const int GradBandTiles = 256;

    /// <summary>
    /// dw[:Cout, :Cin] += ∂L/∂w of the conv <see cref="Forward"/> computes (weight rows of stride
    /// <paramref name="ldw"/>, the taps of (o, i) at o·ldw + i·9). With Y = Aᵀ (U ⊙ V) A per tile: dM = A dY Aᵀ,
    /// dU_ξ (Cout × Cin) = Σ_tiles dM_ξ · V_ξᵀ (16 GEMMs whose K is the tiles), dw = Gᵀ dU G. The images are cut
    /// into min(N, threads) contiguous chunks, each summed into its own dU, and the chunks are added in order:
    /// the result does not depend on scheduling.
    /// </summary>
    public static void WeightGrad(int n, int cin, int h, int wd, int cout, float* x, float* dy, float* dw, long ldw,
        int threads, ParallelOptions par)
    {
        int chunks = Math.Max(1, Math.Min(n, threads));
        long uLen = (long)cout * cin + Skew, partLen = Xi * uLen;
        float* parts = Scratch.TakeAligned(Scratch.Use.WeightGradPartials, chunks * partLen);
        var p0 = (nint)parts;
        Parallel.For(0, chunks, par, t =>
        {
            int lo = (int)((long)n * t / chunks), hi = (int)((long)n * (t + 1) / chunks);
            WeightGradChunk(lo, hi, cin, h, wd, cout, x, dy, (float*)p0 + t * partLen, uLen);
        });
        // The partials live in one scratch array, so each fits an int-length span.
        var sum = new Span<float>(parts, (int)partLen);
        for (int t = 1; t < chunks; t++)
        {
            var part = new ReadOnlySpan<float>(parts + t * partLen, (int)partLen);
            System.Numerics.Tensors.TensorPrimitives.Add(sum, part, sum);
        }
        Parallel.For(0, cout, par, co => InverseFilterTransform((float*)p0, co, cin, uLen, dw + co * ldw));
    }

    /// <summary>dU of images [lo, hi): band by band, V and dM of whole images, then the 16 GEMMs.</summary>
    private static void WeightGradChunk(int lo, int hi, int cin, int h, int wd, int cout, float* x, float* dy,
        float* du, long uLen)
    {
        int tw2 = wd / 2, tp = h / 2 * tw2, bs = wd + 2, cs = (h + 2) * bs, hw = h * wd;
        int perBand = Math.Max(1, GradBandTiles / tp), bandTiles = perBand * tp;
        float* xb = Scratch.TakeAligned(Scratch.Use.ConvBordered, (long)cin * cs + Lanes);
        long vXi = (long)bandTiles * cin + Skew, mXi = (long)bandTiles * cout + Skew;
        float* v = Scratch.TakeAligned(Scratch.Use.WinogradV, Xi * vXi);
        float* dm = Scratch.TakeAligned(Scratch.Use.WinogradDm, Xi * mXi);
        for (int b0 = lo; b0 < hi; b0 += perBand)
        {
            int nb = Math.Min(perBand, hi - b0);
            for (int i = 0; i < nb; i++)
            {
                long img = b0 + i;
                for (int ci = 0; ci < cin; ci++)
                    ConvDirect.BorderPlane(x + (img * cin + ci) * h * wd, xb + ci * cs, h, wd);
                InputTransformByChannel(xb, cin, cs, bs, tw2, tp, v + (long)i * tp * cin, vXi);
                GradTransformByChannel(dy + img * cout * hw, cout, hw, wd, tw2, tp, dm + (long)i * tp * cout, mXi);
            }
            float beta = b0 == lo ? 0f : 1f;
            for (int xi = 0; xi < Xi; xi++)
                Sgemm.Run(true, false, cout, cin, nb * tp, 1f, dm + xi * mXi, cout, v + xi * vXi, cin, beta,
                    du + xi * uLen, cin);
        }
    }

    /// <summary>Lanes [0, count) of 8, as a float mask.</summary>
    private static Vector256<float> First(int count) =>
        Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle();

    /// <summary>The first <paramref name="count"/> lanes of v at p (<paramref name="mask"/>: those lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* p, Vector256<float> v, Vector256<float> mask, int count)
    {
        if (count == 8) Avx.Store(p, v);
        else Avx.MaskStore(p, mask, v);
    }

    /// <summary>
    /// V_ξ[t][ci] for one image's tiles, eight channels at a time (gathered from the bordered copy xb), rows of
    /// Cin values, ξ blocks <paramref name="xiStride"/> apart: the weight gradient's B (tiles × Cin).
    /// </summary>
    private static void InputTransformByChannel(float* xb, int cin, int cs, int bs, int tw2, int tp, float* v,
        long xiStride)
    {
        var d = stackalloc Vector256<float>[Xi];
        var idx = Vector256<int>.Indices * cs;
        for (int t = 0; t < tp; t++)
        {
            float* origin = xb + 2 * (t / tw2) * bs + 2 * (t % tw2);
            for (int c8 = 0; c8 < cin; c8 += 8)
            {
                int count = Math.Min(8, cin - c8);
                var mask = First(count);
                float* b = origin + (long)c8 * cs;
                for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++)
                    d[r * 4 + c] = Avx2.GatherMaskVector256(Vector256<float>.Zero, b + r * bs + c, idx, mask, 4);
                DataTransform(d);
                float* dst = v + (long)t * cin + c8;
                for (int xi = 0; xi < Xi; xi++) Put(dst + xi * xiStride, d[xi], mask, count);
            }
        }
    }

    /// <summary>
    /// dM_ξ[t][co] = (A dY Aᵀ)_ξ for one image's tiles, A = [[1, 0], [1, 1], [1, −1], [0, −1]], eight output
    /// channels at a time: the weight gradient's A (tiles × Cout), ξ blocks <paramref name="xiStride"/> apart.
    /// </summary>
    private static void GradTransformByChannel(float* dy, int cout, int hw, int wd, int tw2, int tp, float* dm,
        long xiStride)
    {
        var e = stackalloc Vector256<float>[8];
        var idx = Vector256<int>.Indices * hw;
        for (int t = 0; t < tp; t++)
        {
            float* origin = dy + 2 * (t / tw2) * wd + 2 * (t % tw2);
            for (int c8 = 0; c8 < cout; c8 += 8)
            {
                int count = Math.Min(8, cout - c8);
                var mask = First(count);
                float* b = origin + (long)c8 * hw;
                var y00 = Avx2.GatherMaskVector256(Vector256<float>.Zero, b, idx, mask, 4);
                var y01 = Avx2.GatherMaskVector256(Vector256<float>.Zero, b + 1, idx, mask, 4);
                var y10 = Avx2.GatherMaskVector256(Vector256<float>.Zero, b + wd, idx, mask, 4);
                var y11 = Avx2.GatherMaskVector256(Vector256<float>.Zero, b + wd + 1, idx, mask, 4);
                // e = A dY (4×2), then dM = e Aᵀ (4×4).
                e[0] = y00; e[1] = y01;
                e[2] = y00 + y10; e[3] = y01 + y11;
                e[4] = y00 - y10; e[5] = y01 - y11;
                e[6] = -y10; e[7] = -y11;
                float* dst = dm + (long)t * cout + c8;
                for (int i = 0; i < 4; i++)
                {
                    Vector256<float> e0 = e[2 * i], e1 = e[2 * i + 1];
                    float* row = dst + i * 4 * xiStride;
                    Put(row, e0, mask, count);
                    Put(row + xiStride, e0 + e1, mask, count);
                    Put(row + 2 * xiStride, e0 - e1, mask, count);
                    Put(row + 3 * xiStride, -e1, mask, count);
                }
            }
        }
    }

    /// <summary>
    /// dw[co, i, :] += Gᵀ dU[:, co, i] G (3×3 from 4×4) for every input channel i, eight at a time;
    /// dU_ξ is Cout × Cin at ξ·uLen (uLen: Cout·Cin + <see cref="Skew"/>).
    /// </summary>
    private static void InverseFilterTransform(float* du, int co, int cin, long uLen, float* dwRow)
    {
        var half = Vector256.Create(0.5f);
        var hk = stackalloc Vector256<float>[12];
        float* tmp = stackalloc float[9 * 8];
        for (int c8 = 0; c8 < cin; c8 += 8)
        {
            int count = Math.Min(8, cin - c8);
            var mask = First(count);
            float* src = du + (long)co * cin + c8;
            for (int j = 0; j < 4; j++)
            {
                // h = Gᵀ dU (3×4), column j.
                var u0 = Avx.MaskLoad(src + (0 * 4 + j) * uLen, mask);
                var u1 = Avx.MaskLoad(src + (1 * 4 + j) * uLen, mask);
                var u2 = Avx.MaskLoad(src + (2 * 4 + j) * uLen, mask);
                var u3 = Avx.MaskLoad(src + (3 * 4 + j) * uLen, mask);
                hk[j] = u0 + half * (u1 + u2);
                hk[4 + j] = half * (u1 - u2);
                hk[8 + j] = half * (u1 + u2) + u3;
            }
            for (int k = 0; k < 3; k++)
            {
                Vector256<float> h0 = hk[k * 4], h1 = hk[k * 4 + 1], h2 = hk[k * 4 + 2], h3 = hk[k * 4 + 3];
                Avx.Store(tmp + (k * 3) * 8, h0 + half * (h1 + h2));
                Avx.Store(tmp + (k * 3 + 1) * 8, half * (h1 - h2));
                Avx.Store(tmp + (k * 3 + 2) * 8, half * (h1 + h2) + h3);
            }
            for (int l = 0; l < count; l++)
            {
                float* g = dwRow + (long)(c8 + l) * 9;
                for (int q = 0; q < 9; q++) g[q] += tmp[q * 8 + l];
            }
        }
    }
}
