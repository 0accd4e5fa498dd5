// Slimmable 2-D convolution as implicit GEMM (im2col is index arithmetic in the tile loader; nothing is
// materialised). The weight is stored (CoutMax, CinMax, K, K); the active layer uses the prefix
// w[:Cout, :Cin], i.e. row co starts at co·WStride with WStride = CinMax·K·K and its first Cin·K·K
// entries are the active ones. Gradients land in the same prefix.
//   forward       y (N,Cout,Ho,Wo) = W[Cout × Cin·KK] · im2col(x)[Cin·KK × N·Ho·Wo] + bias
//   backward-data dx (N,Cin,H,W)  += Wᵀ[Cin × Cout·KK] · col(dy)[Cout·KK × N·H·W]   (gather form:
//                 each dx element pulls the dy taps that hit it: no atomics, no col2im)
//   backward-wt   dw[:Cout,:Cin]  += dy[Cout × N·Ho·Wo] · im2col(x)ᵀ[N·Ho·Wo × Cin·KK]
// The weight gradient's K dimension (N·Ho·Wo) is long and its M×N small, so it is split over Grid.IdxZ
// into a partial buffer (splits, Cout, Cin·KK) that WeightGradReduce sums in a fixed order:
// deterministic, unlike atomics. Each GEMM has an exact FP32 and a TF32 tensor-core specialisation.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>Shape of a slimmable convolution (active counts; WStride = CinMax·K·K).</summary>
public struct ConvGeom
{
    public int N, Cin, H, W, Cout, K, S, P, Ho, Wo;
    public long WStride;

    /// <summary>
    /// Element (row, col) of im2col(x), never materialised: row = ci·K·K + kh·K + kw, col = img·Ho·Wo +
    /// ho·Wo + wo; zero where the tap falls in the padding. x is (N, Cin, H, W).
    /// </summary>
    public readonly float Im2Col(ArrayView<float> x, int row, int col)
    {
        int kk = K * K, ci = row / kk, r = row - ci * kk, kh = r / K, kw = r - kh * K;
        int howo = Ho * Wo, img = col / howo, s = col - img * howo, ho = s / Wo, wo = s - ho * Wo;
        int h = ho * S - P + kh, w = wo * S - P + kw;
        if (h < 0 || h >= H || w < 0 || w >= W) return 0f;
        return x[((long)img * Cin + ci) * H * W + (long)h * W + w];
    }
}

/// <summary>Arguments of the convolution kernels; which views are read or written depends on the kernel.</summary>
public struct ConvArgs
{
    public ConvGeom G;
    /// <summary>Forward: x, w, bias (empty = none), y. Backward-data: dy in X, w, dx in Y.
    /// Backward-weight: x, dy in W, partials in Y.</summary>
    public ArrayView<float> X, Wt, Bias, Y;
    /// <summary>Backward-weight: terms of N·Ho·Wo per split (multiple of 16).</summary>
    public int KChunk;
}

internal struct ConvForwardProblem(ConvArgs a) : ITileProblem
{
    private readonly ConvArgs _a = a;
    public readonly int M => _a.G.Cout;
    public readonly int N => _a.G.N * _a.G.Ho * _a.G.Wo;
    public readonly bool AKContiguous => true;
    public readonly bool BNContiguous => true;
    public readonly float A(int m, int k) => _a.Wt[m * _a.G.WStride + k];
    public readonly float B(int k, int n) => _a.G.Im2Col(_a.X, k, n);

    public readonly void Store(int co, int n, float v)
    {
        var g = _a.G;
        int howo = g.Ho * g.Wo, img = n / howo, s = n - img * howo;
        _a.Y[((long)img * g.Cout + co) * howo + s] = v + (_a.Bias.Length > 0 ? _a.Bias[co] : 0f);
    }
}

internal struct ConvBackwardDataProblem(ConvArgs a) : ITileProblem
{
    private readonly ConvArgs _a = a;
    public readonly int M => _a.G.Cin;
    public readonly int N => _a.G.N * _a.G.H * _a.G.W;
    public readonly bool AKContiguous => true;
    public readonly bool BNContiguous => true;

    public readonly float A(int ci, int k)
    {
        int kk = _a.G.K * _a.G.K, co = k / kk, r = k - co * kk;
        return _a.Wt[co * _a.G.WStride + (long)ci * kk + r];
    }

    public readonly float B(int k, int n)
    {
        var g = _a.G;
        int kk = g.K * g.K, co = k / kk, r = k - co * kk, kh = r / g.K, kw = r - kh * g.K;
        int hw = g.H * g.W, img = n / hw, s = n - img * hw, h = s / g.W, w = s - h * g.W;
        int hh = h + g.P - kh, wq = w + g.P - kw;     // = ho·S, wo·S when a tap lands here
        if (hh < 0 || wq < 0 || hh % g.S != 0 || wq % g.S != 0) return 0f;
        int ho = hh / g.S, wo = wq / g.S;
        if (ho >= g.Ho || wo >= g.Wo) return 0f;
        return _a.X[((long)img * g.Cout + co) * g.Ho * g.Wo + (long)ho * g.Wo + wo];
    }

    public readonly void Store(int ci, int n, float v)
    {
        var g = _a.G;
        int hw = g.H * g.W, img = n / hw, s = n - img * hw;
        _a.Y[((long)img * g.Cin + ci) * hw + s] += v;
    }
}

internal struct ConvBackwardWeightProblem(ConvArgs a, long split) : ITileProblem
{
    private readonly ConvArgs _a = a;
    private readonly long _out = split * a.G.Cout * (a.G.Cin * a.G.K * a.G.K);
    public readonly int M => _a.G.Cout;
    public readonly int N => _a.G.Cin * _a.G.K * _a.G.K;
    public readonly bool AKContiguous => true;
    public readonly bool BNContiguous => false;

    public readonly float A(int co, int k)
    {
        var g = _a.G;
        int howo = g.Ho * g.Wo, img = k / howo, s = k - img * howo;
        return _a.Wt[((long)img * g.Cout + co) * howo + s];
    }

    public readonly float B(int k, int n) => _a.G.Im2Col(_a.X, n, k);   // im2col(x)ᵀ

    public readonly void Store(int co, int n, float v) => _a.Y[_out + (long)co * N + n] = v;
}

/// <summary>Arguments of the small conv reductions: partials (splits, Cout, Cols) or dy (N, Cout, S).</summary>
public struct ConvReduceArgs
{
    public ArrayView<float> Src, Dst;
    public int Splits, Cout, Cols, N, S;
    public long WStride;
}

public static class ConvKernels
{
    internal static KernelEntry[] Catalog =>
    [
        .. Modes<ExactFp32>(), .. Modes<TensorTf32>(),
        KernelEntry.Of<ConvReduceArgs>(WeightGradReduce, "conv_wgrad_reduce", "conv", hot: false,
            "dw prefix += Σ of the split-K partials in split order"),
        KernelEntry.Of<ConvReduceArgs>(BiasGrad, "conv_bias_grad", "conv", hot: false, "dbias += Σ dy per channel"),
    ];

    private static KernelEntry[] Modes<TMode>() where TMode : struct, IMathMode =>
    [
        KernelEntry.Of<ConvArgs>(Forward<TMode>, KernelCatalog.Tagged<TMode>("conv_fwd"), "conv", hot: true,
            "y = conv(x, w prefix) + bias, implicit GEMM"),
        KernelEntry.Of<ConvArgs>(BackwardData<TMode>, KernelCatalog.Tagged<TMode>("conv_bwd_data"), "conv", hot: true,
            "dx += convᵀ(dy, w prefix), gather form"),
        KernelEntry.Of<ConvArgs>(BackwardWeight<TMode>, KernelCatalog.Tagged<TMode>("conv_bwd_weight"), "conv",
            hot: true, "split-K partials of dw = dy ⋆ x"),
    ];

    /// <summary>y (N,Cout,Ho,Wo) = conv(x, w prefix) + bias prefix (empty view: none).
    /// Grid (ceil(N·Ho·Wo/64), ceil(Cout/64)), 128 threads.</summary>
    public static void Forward<TMode>(ConvArgs a) where TMode : struct, IMathMode
    {
        var p = new ConvForwardProblem(a);
        TileGemm.Run<ConvForwardProblem, TMode>(ref p, Grid.IdxY * TileGemm.Bm, Grid.IdxX * TileGemm.Bn, 0,
                                                a.G.Cin * a.G.K * a.G.K);
    }

    /// <summary>dx (N,Cin,H,W) += convᵀ(dy, w prefix). Grid (ceil(N·H·W/64), ceil(Cin/64)), 128 threads.</summary>
    public static void BackwardData<TMode>(ConvArgs a) where TMode : struct, IMathMode
    {
        var p = new ConvBackwardDataProblem(a);
        TileGemm.Run<ConvBackwardDataProblem, TMode>(ref p, Grid.IdxY * TileGemm.Bm, Grid.IdxX * TileGemm.Bn, 0,
                                                     a.G.Cout * a.G.K * a.G.K);
    }

    /// <summary>partial[z] (Cout, Cin·K·K) = Σ over split z of dy ⋆ x.
    /// Grid (ceil(Cin·KK/64), ceil(Cout/64), splits), 128 threads.</summary>
    public static void BackwardWeight<TMode>(ConvArgs a) where TMode : struct, IMathMode
    {
        var p = new ConvBackwardWeightProblem(a, Grid.IdxZ);
        int total = a.G.N * a.G.Ho * a.G.Wo, kb = Grid.IdxZ * a.KChunk;
        int ke = kb + a.KChunk < total ? kb + a.KChunk : total;
        TileGemm.Run<ConvBackwardWeightProblem, TMode>(ref p, Grid.IdxY * TileGemm.Bm, Grid.IdxX * TileGemm.Bn, kb, ke);
    }

    /// <summary>dw[co·WStride + j] += Σ_z partial[z, co, j] in z order. Grid-stride over Cout·Cols.</summary>
    public static void WeightGradReduce(ConvReduceArgs a)
    {
        long n = (long)a.Cout * a.Cols;
        for (long i = Dev.GlobalId; i < n; i += Dev.GridStride)
        {
            float s = 0f;
            for (int z = 0; z < a.Splits; z++) s += a.Src[z * n + i];
            int co = (int)(i / a.Cols), j = (int)(i - (long)co * a.Cols);
            a.Dst[co * a.WStride + j] += s;
        }
    }

    /// <summary>dbias[co] += Σ_{img, s} dy[img, co, s]; one group per co, fixed order (deterministic).</summary>
    public static void BiasGrad(ConvReduceArgs a)
    {
        var scratch = SharedMemory.Allocate<float>(32);
        int co = Grid.IdxX;
        float acc = 0f;
        for (int img = 0; img < a.N; img++)
        {
            long row = ((long)img * a.Cout + co) * a.S;
            for (int s = Group.IdxX; s < a.S; s += Group.DimX) acc += a.Src[row + s];
        }
        acc = Dev.BlockSum(acc, scratch);
        if (Group.IdxX == 0) a.Dst[co] += acc;
    }
}
