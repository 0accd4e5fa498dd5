using System.Numerics.Tensors;

namespace Ddsm.Engine.Cpu;

/// <summary>
/// Slimmable convolution as GEMMs, one image at a time. The weight (CoutMax, CinMax, K, K) is read in
/// place as a (Cout × Cin·K·K) matrix with row stride CinMax·K·K: the active prefix is the first
/// Cin·K·K floats of each of the first Cout rows, so slimming costs no copy.
/// Forward: y_n = W · im2col(x_n), with the weight packed once per call and the im2col fused into the
/// GEMM's B packing (no column matrix). Backward data: col = Wᵀ · dy_n, then col2im adds into dx_n.
/// (At stride 1 backward data instead runs as a forward conv with flipped, transposed weights.) On the SIMD paths a
/// 1×1 conv over whole 16-pixel panels is a direct conv too, its image one row of H·W pixels.
/// Backward weight: dW += dy_n · im2col(x_n)ᵀ summed per chunk of images, chunks reduced in order (3×3 stride 1
/// on the SIMD paths where it is faster: <see cref="ConvWeightGrad"/>, no column matrix).
/// Most 3×3 stride-1 pad-1 convs (all three directions) run as Winograd F(2×2, 3×3) instead (<see cref="Winograd"/>,
/// where <see cref="Winograd.Fits"/> measured it faster).
/// Images go to threads when there are enough of them (column and packing buffers are each thread's
/// <see cref="Scratch"/>); a small batch instead splits each GEMM across threads.
/// </summary>
public sealed partial class CpuBackend
{
    /// <summary>1×1, stride 1, no padding: the image (Cin, H·W) already is the column matrix.</summary>
    private static bool IsPointwise(in ConvDesc d) => d.K == 1 && d.Stride == 1 && d.Pad == 0;

    /// <summary>
    /// What every conv kernel derives from its descriptor: the GEMM depth Cin·K·K, the weight's row stride
    /// CinMax·K·K, the output pixels, one image's floats in x and in y, and whether the conv is a plain GEMM.
    /// </summary>
    private readonly record struct ConvSizes(int Kk, int Ldw, int Hw, long XImg, long YImg, bool Pointwise)
    {
        public static ConvSizes Of(in ConvDesc d) =>
            new(d.Cin * d.K * d.K, d.CinMax * d.K * d.K, d.Ho * d.Wo, (long)d.Cin * d.H * d.W,
                (long)d.Cout * d.Ho * d.Wo, IsPointwise(d));
    }

    /// <summary>
    /// Runs body(image, gemmThreads) over the batch: images across threads, or threads inside each GEMM.
    /// </summary>
    private void ForEachImage(int n, Action<int, int> body)
    {
        if (n >= Threads && Threads > 1) Parallel.For(0, n, Par, i => body(i, 1));
        else for (int i = 0; i < n; i++) body(i, Threads);
    }

    public override void Conv2dForward(in ConvDesc d, DeviceBuffer x, DeviceBuffer w, DeviceBuffer? bias,
                                       DeviceBuffer y)
    {
        using var timer = Profiler.Kernel("conv_fwd");
        var dd = d;
        CheckConvBuffers("conv2d forward", d, x, w, y);
        var xa = A(x); var wa = A(w); var ya = A(y); var ba = bias is null ? null : A(bias);
        var (kk, ldw, hw, xImg, yImg, pointwise) = ConvSizes.Of(d);
        if (Winograd.Fits(d, Sgemm.Path, Threads))
        {
            unsafe
            {
                fixed (float* px = xa, pw = wa, pb = ba, py = ya)
                    Winograd.Forward(d.N, d.Cin, d.H, d.W, d.Cout, px, pw, ldw, 9, false, pb, 0f, py, Par);
            }
            return;
        }
        // A pointwise conv reads its B rows in place like any direct conv, as one row of H·W pixels.
        if (pointwise && PointwiseDirect(d)) (dd, pointwise) = (Flat(d), false);
        // The weight prefix is packed once for all images (read-only while the images run).
        Sgemm.PackedA packedW = default;
        if (!pointwise)
            unsafe
            {
                fixed (float* pw = wa) packedW = Sgemm.PackWholeA(false, pw, ldw, d.Cout, kk);
            }
        ForEachImage(d.N, (n, threads) =>
        {
            // y_n (Cout, Ho·Wo) = W[:Cout, :Cin·K·K] · col (Cin·K·K, Ho·Wo)
            if (pointwise)
                Sgemm.RunParallel(false, false, dd.Cout, hw, kk, 1f, wa, 0, ldw, xa, n * xImg, hw, 0f, ya, n * yImg, hw,
                                  threads);
            else
                ForwardIm2ColGemm(dd, packedW, xa, n * xImg, ya, n * yImg, 0f, threads);
            if (ba is not null)
                for (int co = 0; co < dd.Cout; co++)
                {
                    var row = ya.AsSpan((int)(n * yImg + (long)co * hw), hw);
                    TensorPrimitives.Add(row, ba[co], row);
                }
        });
    }

    /// <summary>
    /// Stride-1 convs read B in place (ConvDirect: any width on the AVX-512 path, whole 16-pixel panels per output
    /// row on the AVX2 path), and so do 3×3 stride-2 ones with output rows of 8 or 16·k (both paths, from a copy of x
    /// split by column parity); off only to time packing.
    /// </summary>
    internal static bool ConvDirectOn { get; set; } = true;

    /// <summary>3×3 weight gradients skip the column matrix where ConvWeightGrad.LanesFor finds it faster; off only
    /// to time the GEMM form against it.</summary>
    internal static bool WeightGradDirectOn { get; set; } = true;

    /// <summary>
    /// Whether a pointwise conv runs as a direct one (<see cref="Flat"/>): on the SIMD paths, when its pixels are
    /// whole 16-pixel panels. The GEMM form packed the weight per image and every B panel, which at 48–128
    /// channels ran at a third to a half of the 3×3 convs' speed.
    /// </summary>
    private static bool PointwiseDirect(in ConvDesc d) =>
        ConvDirectOn && Sgemm.Path >= SgemmPath.Avx2 && d.H * d.W % Sgemm.NR == 0;

    /// <summary>A pointwise conv's image as one row of H·W pixels (its column matrix is the image itself).</summary>
    private static ConvDesc Flat(in ConvDesc d) => d with { H = 1, W = d.H * d.W };

    /// <summary>
    /// y (Cout, Ho·Wo) = W · im2col(x) with the im2col fused into the GEMM's B packing (no column
    /// matrix is written); on several threads the output pixels are cut into NR-aligned strips.
    /// </summary>
    private static unsafe void ForwardIm2ColGemm(ConvDesc d, Sgemm.PackedA packedW, float[] xa, long xOff, float[] ya,
                                                 long yOff, float beta, int threads)
    {
        int hw = d.Ho * d.Wo, kk = d.Cin * d.K * d.K;
        int units = (hw + Sgemm.NR - 1) / Sgemm.NR;
        int parts = 2L * d.Cout * hw * kk < 2_000_000 ? 1 : Math.Min(threads, units);
        void Strip(int part)
        {
            int lo = (int)((long)units * part / parts) * Sgemm.NR,
                hi = Math.Min(hw, (int)((long)units * (part + 1) / parts) * Sgemm.NR);
            if (lo >= hi) return;
            fixed (float* px = xa, py = ya)
            {
                if (packedW.Path >= SgemmPath.Avx2 && ConvDirectOn && ConvDirect.FitsStride2(d))
                {
                    ConvDirect.RunStride2(d, packedW, px + xOff, lo, hi, beta, py + yOff);
                    return;
                }
                if (packedW.Path == SgemmPath.Avx512 && d.Stride == 1 && ConvDirectOn)
                {
                    ConvDirect.Run(d, packedW, px + xOff, lo, hi, beta, py + yOff);
                    return;
                }
                if (packedW.Path == SgemmPath.Avx2 && ConvDirectOn && ConvDirect.FitsBordered(d))
                {
                    ConvDirect.RunBordered(d, packedW, px + xOff, lo, hi, beta, py + yOff);
                    return;
                }
                var pack = new Im2Col.PackB(px + xOff, d, lo);
                Sgemm.RunPacked(packedW, d.Cout, hi - lo, kk, 1f, ref pack, beta, py + yOff + lo, hw);
            }
        }
        if (parts <= 1) Strip(0);
        else Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads }, Strip);
    }

    /// <summary>
    /// At stride 1 the data gradient is itself a convolution: dx = conv(dy, W′, pad K−1−P) with
    /// W′[ci, co, kh, kw] = W[co, ci, K−1−kh, K−1−kw] (weights transposed and flipped). That runs on
    /// the fused forward path (no column matrix written and read back, unlike GEMM + col2im) and
    /// accumulates into dx through beta = 1.
    /// </summary>
    private unsafe void BackwardDataAsConv(ConvDesc d, float[] ga, float[] wa, float[] dxa)
    {
        int k = d.K, k2 = k * k, ldw = d.CinMax * k2, kkT = d.Cout * k2;
        var t = new ConvDesc(d.N, d.Cout, d.Ho, d.Wo, d.Cin, k, 1, k - 1 - d.Pad, d.Cout, d.Cin);
        if (Winograd.Fits(t, Sgemm.Path, Threads, Winograd.Kind.Data))
        {
            // The flipped, transposed weight read in place: W′[ci, co, q] = W[co, ci, 8 − q].
            fixed (float* pg = ga, pw = wa, pdx = dxa)
                Winograd.Forward(t.N, t.Cin, t.H, t.W, t.Cout, pg, pw, 9, ldw, true, null, 1f, pdx, Par);
            return;
        }
        var wt = Scratch.Take(Scratch.Use.ConvFlippedWeight, (long)d.Cin * kkT);
        for (int ci = 0; ci < d.Cin; ci++)
        for (int co = 0; co < d.Cout; co++)
        for (int q = 0; q < k2; q++)
            wt[(ci * d.Cout + co) * k2 + q] = wa[co * ldw + ci * k2 + (k2 - 1 - q)];   // (kh, kw) → (K−1−kh, K−1−kw)
        Sgemm.PackedA packed;
        fixed (float* pw = wt) packed = Sgemm.PackWholeA(false, pw, kkT, d.Cin, kkT);
        long xImg = (long)d.Cin * d.H * d.W, yImg = (long)d.Cout * d.Ho * d.Wo;
        ForEachImage(d.N, (n, threads) => ForwardIm2ColGemm(t, packed, ga, n * yImg, dxa, n * xImg, 1f, threads));
    }

    /// <summary>Buffers too short for the descriptor would be silent memory corruption in the unsafe GEMM.</summary>
    private static void CheckConvBuffers(string op, in ConvDesc d, DeviceBuffer x, DeviceBuffer w, DeviceBuffer y)
    {
        long xn = (long)d.N * d.Cin * d.H * d.W, wn = (long)d.CoutMax * d.CinMax * d.K * d.K,
             yn = (long)d.N * d.Cout * d.Ho * d.Wo;
        if (d.Cin > d.CinMax || d.Cout > d.CoutMax || d.Ho < 1 || d.Wo < 1 || x.Length < xn || w.Length < wn ||
            y.Length < yn)
            throw new ArgumentException($"{op}: buffers (x {x.Length}, w {w.Length}, y {y.Length}) do not fit {d}");
    }

    public override void Conv2dBackwardData(in ConvDesc d, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer dx)
    {
        using var timer = Profiler.Kernel("conv_bwd_data");
        var dd = d;
        CheckConvBuffers("conv2d backward data", d, dx, w, dy);
        var ga = A(dy); var wa = A(w); var dxa = A(dx);
        var (kk, ldw, hw, xImg, yImg, pointwise) = ConvSizes.Of(d);
        if (pointwise && PointwiseDirect(d))
        {
            BackwardDataAsConv(Flat(d), ga, wa, dxa);
            return;
        }
        if (!pointwise && d.Stride == 1 && d.Pad <= d.K - 1)
        {
            BackwardDataAsConv(d, ga, wa, dxa);
            return;
        }
        ForEachImage(d.N, (n, threads) =>
        {
            // colGrad (Cin·K·K, Ho·Wo) = W[:Cout, :Cin·K·K]ᵀ · dy_n (Cout, Ho·Wo)
            if (pointwise)
            {
                // The column matrix is dx_n itself, so accumulate straight into it (beta = 1).
                Sgemm.RunParallel(true, false, kk, hw, dd.Cout, 1f, wa, 0, ldw, ga, n * yImg, hw, 1f, dxa, n * xImg, hw,
                                  threads);
                return;
            }
            var col = Scratch.Take(Scratch.Use.ConvColumns, (long)kk * hw);
            Sgemm.RunParallel(true, false, kk, hw, dd.Cout, 1f, wa, 0, ldw, ga, n * yImg, hw, 0f, col, 0, hw, threads);
            Im2Col.BackwardAdd(dd, col.AsSpan(0, kk * hw), dxa.AsSpan((int)(n * xImg), (int)xImg));
        });
    }

    public override void Conv2dBackwardWeight(in ConvDesc d, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dw,
                                              DeviceBuffer? dbias)
    {
        using var timer = Profiler.Kernel("conv_bwd_weight");
        var dd = d;
        CheckConvBuffers("conv2d backward weight", d, x, dw, dy);
        var xa = A(x); var ga = A(dy); var dwa = A(dw);
        var (kk, ldw, hw, xImg, yImg, pointwise) = ConvSizes.Of(d);
        if (Winograd.Fits(d, Sgemm.Path, Threads, Winograd.Kind.Weight))
        {
            unsafe
            {
                fixed (float* px = xa, pg = ga, pdw = dwa)
                    Winograd.WeightGrad(d.N, d.Cin, d.H, d.W, d.Cout, px, pg, pdw, ldw, Threads, Par);
            }
            if (dbias is not null) BiasGradient(d, ga, A(dbias), hw, yImg);
            return;
        }
        int lanes = WeightGradDirectOn ? ConvWeightGrad.LanesFor(d, Sgemm.Path) : 0;
        if (lanes > 0)
        {
            ConvWeightGrad.Run(d, xa, ga, dwa, Threads, lanes);
            if (dbias is not null) BiasGradient(d, ga, A(dbias), hw, yImg);
            return;
        }

        // dW_part (Cout, Cin·K·K) (+)= dy_n (Cout, Ho·Wo) · col_nᵀ (Ho·Wo, Cin·K·K)
        void Accumulate(int n, float[] dst, long dstOff, int ldDst, float beta, int threads)
        {
            float[] col; long colOff;
            if (pointwise) { col = xa; colOff = n * xImg; }
            else
            {
                col = Scratch.Take(Scratch.Use.ConvColumns, (long)kk * hw); colOff = 0;
                Im2Col.Forward(dd, xa.AsSpan((int)(n * xImg), (int)xImg), col);
            }
            Sgemm.RunParallel(false, true, dd.Cout, kk, hw, 1f, ga, n * yImg, hw, col, colOff, hw, beta, dst, dstOff,
                              ldDst, threads);
        }

        // Images are cut into a fixed number of contiguous chunks, each summed into its own partial,
        // and the partials are added in chunk order: the result does not depend on thread scheduling.
        int chunks = Math.Min(d.N, Threads);
        if (chunks <= 1)
        {
            for (int n = 0; n < d.N; n++) Accumulate(n, dwa, 0, ldw, 1f, Threads);
        }
        else
        {
            // The calling thread's partials (chunk t at t·partLen): the chunk tasks use other scratch.
            int partLen = d.Cout * kk;
            var parts = Scratch.Take(Scratch.Use.WeightGradPartials, (long)chunks * partLen);
            Parallel.For(0, chunks, Par, t =>
            {
                int lo = (int)((long)dd.N * t / chunks), hi = (int)((long)dd.N * (t + 1) / chunks);
                for (int n = lo; n < hi; n++) Accumulate(n, parts, (long)t * partLen, kk, n == lo ? 0f : 1f, 1);
            });
            Parallel.For(0, dd.Cout, Par, co =>
            {
                var dst = dwa.AsSpan(co * ldw, kk);
                for (int t = 0; t < chunks; t++)
                    TensorPrimitives.Add(dst, parts.AsSpan(t * partLen + co * kk, kk), dst);
            });
        }

        if (dbias is not null) BiasGradient(d, ga, A(dbias), hw, yImg);
    }

    /// <summary>dbias[co] += Σ_n Σ_hw dy[n, co]: images summed in order, so deterministic too.</summary>
    private void BiasGradient(ConvDesc d, float[] ga, float[] dba, int hw, long yImg) =>
        Parallel.For(0, d.Cout, Par, co =>
        {
            double s = 0;
            for (int n = 0; n < d.N; n++)
                s += TensorPrimitives.Sum(ga.AsSpan((int)(n * yImg + (long)co * hw), hw));
            dba[co] += (float)s;
        });
}
