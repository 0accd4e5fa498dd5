// conv.cu — slimmable 2-D convolution as implicit GEMM (im2col is index arithmetic in the tile
// loader; nothing is materialised). Weight w is stored (CoutMax, CinMax, K, K); the active layer uses
// the prefix w[:Cout, :Cin], i.e. row co starts at co·wstride with wstride = CinMax·K·K and its
// first Cin·K·K entries are the active ones. Gradients land in the same prefix.
//   forward       y (N,Cout,Ho,Wo) = W[Cout × Cin·KK] · im2col(x)[Cin·KK × N·Ho·Wo] + bias
//   backward-data dx (N,Cin,H,W)  += Wᵀ[Cin × Cout·KK] · col(dy)[Cout·KK × N·H·W]   (gather form:
//                 each dx element pulls the dy taps that hit it, so no atomics and no col2im)
//   backward-wt   dw[:Cout,:Cin]  += dy[Cout × N·Ho·Wo] · im2col(x)ᵀ[N·Ho·Wo × Cin·KK]
// The weight gradient's K dimension (N·Ho·Wo) is long and its M×N small, so it is split over
// blockIdx.z into a partial buffer (splits, Cout, Cin·KK) that conv_wgrad_reduce sums in a fixed
// order: deterministic, unlike atomics. Each GEMM has an exact FP32 and a TF32 tensor-core entry point.
#include "tile_gemm.cuh"

struct ConvGeom
{
    int Cin, H, W, Cout, K, S, P, Ho, Wo;
    i64 wstride;   // CinMax·K·K
};

// ---- forward: M = Cout, N = Nimg·Ho·Wo, K = Cin·K·K ----------------------------------------------
struct ConvFwdProb
{
    const float* x; const float* w; ConvGeom g;
    int M, N;
    bool a_kcontig, b_ncontig;
    __device__ __forceinline__ float a(int m, int k) const { return w[m * g.wstride + k]; }
    __device__ __forceinline__ float b(int k, int n) const
    {
        const int KK = g.K * g.K, ci = k / KK, r = k - ci * KK, kh = r / g.K, kw = r - kh * g.K;
        const int HoWo = g.Ho * g.Wo, img = n / HoWo, s = n - img * HoWo, ho = s / g.Wo, wo = s - ho * g.Wo;
        const int h = ho * g.S - g.P + kh, ww = wo * g.S - g.P + kw;
        if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) return 0.f;
        return x[((i64)img * g.Cin + ci) * g.H * g.W + (i64)h * g.W + ww];
    }
};

template <bool TF32>
__device__ __forceinline__ void conv_fwd_body(const float* x, const float* w, const float* bias, float* y, int nimg, ConvGeom g)
{
    ConvFwdProb p;
    p.x = x; p.w = w; p.g = g;
    p.M = g.Cout; p.N = nimg * g.Ho * g.Wo; p.a_kcontig = true; p.b_ncontig = true;
    const int m0 = blockIdx.y * TG_BM, n0 = blockIdx.x * TG_BN;
    float acc[32];
#pragma unroll
    for (int i = 0; i < 32; i++) acc[i] = 0.f;
    tile_gemm<ConvFwdProb, TF32>(p, m0, n0, 0, g.Cin * g.K * g.K, acc);
    const int HoWo = g.Ho * g.Wo;
#pragma unroll
    for (int i = 0; i < 32; i++)
    {
        int mi, ni;
        acc_coord<TF32>(i, mi, ni);
        const int co = m0 + mi, n = n0 + ni;
        if (co < p.M && n < p.N)
        {
            const int img = n / HoWo, s = n - img * HoWo;
            y[((i64)img * g.Cout + co) * HoWo + s] = acc[i] + (bias ? bias[co] : 0.f);
        }
    }
}

// y (N,Cout,Ho,Wo) = conv(x (N,Cin,H,W), w (CoutMax,CinMax,K,K) prefix) + bias (CoutMax) prefix or null.
// Grid (ceil(N·Ho·Wo/64), ceil(Cout/64)), 128 threads.
extern "C" __global__ void __launch_bounds__(TG_THREADS) conv_fwd_f32(const float* __restrict__ x, const float* __restrict__ w,
    const float* __restrict__ bias, float* __restrict__ y, int nimg, ConvGeom g)
{ conv_fwd_body<false>(x, w, bias, y, nimg, g); }

extern "C" __global__ void __launch_bounds__(TG_THREADS) conv_fwd_tf32(const float* __restrict__ x, const float* __restrict__ w,
    const float* __restrict__ bias, float* __restrict__ y, int nimg, ConvGeom g)
{ conv_fwd_body<true>(x, w, bias, y, nimg, g); }

// ---- backward data: M = Cin, N = Nimg·H·W, K = Cout·K·K ------------------------------------------
struct ConvBwdDataProb
{
    const float* dy; const float* w; ConvGeom g;
    int M, N;
    bool a_kcontig, b_ncontig;
    __device__ __forceinline__ float a(int m, int k) const
    {
        const int KK = g.K * g.K, co = k / KK, r = k - co * KK;
        return w[co * g.wstride + (i64)m * KK + r];
    }
    __device__ __forceinline__ float b(int k, int n) const
    {
        const int KK = g.K * g.K, co = k / KK, r = k - co * KK, kh = r / g.K, kw = r - kh * g.K;
        const int HW = g.H * g.W, img = n / HW, s = n - img * HW, h = s / g.W, ww = s - h * g.W;
        const int hh = h + g.P - kh, wq = ww + g.P - kw;     // = ho·S, wo·S when a tap lands here
        if (hh < 0 || wq < 0 || hh % g.S != 0 || wq % g.S != 0) return 0.f;
        const int ho = hh / g.S, wo = wq / g.S;
        if (ho >= g.Ho || wo >= g.Wo) return 0.f;
        return dy[((i64)img * g.Cout + co) * g.Ho * g.Wo + (i64)ho * g.Wo + wo];
    }
};

template <bool TF32>
__device__ __forceinline__ void conv_bwd_data_body(const float* dy, const float* w, float* dx, int nimg, ConvGeom g)
{
    ConvBwdDataProb p;
    p.dy = dy; p.w = w; p.g = g;
    p.M = g.Cin; p.N = nimg * g.H * g.W; p.a_kcontig = true; p.b_ncontig = true;
    const int m0 = blockIdx.y * TG_BM, n0 = blockIdx.x * TG_BN;
    float acc[32];
#pragma unroll
    for (int i = 0; i < 32; i++) acc[i] = 0.f;
    tile_gemm<ConvBwdDataProb, TF32>(p, m0, n0, 0, g.Cout * g.K * g.K, acc);
    const int HW = g.H * g.W;
#pragma unroll
    for (int i = 0; i < 32; i++)
    {
        int mi, ni;
        acc_coord<TF32>(i, mi, ni);
        const int ci = m0 + mi, n = n0 + ni;
        if (ci < p.M && n < p.N)
        {
            const int img = n / HW, s = n - img * HW;
            dx[((i64)img * g.Cin + ci) * HW + s] += acc[i];
        }
    }
}

// dx (N,Cin,H,W) += convᵀ(dy (N,Cout,Ho,Wo), w prefix). Grid (ceil(N·H·W/64), ceil(Cin/64)), 128 threads.
extern "C" __global__ void __launch_bounds__(TG_THREADS) conv_bwd_data_f32(const float* __restrict__ dy, const float* __restrict__ w,
    float* __restrict__ dx, int nimg, ConvGeom g)
{ conv_bwd_data_body<false>(dy, w, dx, nimg, g); }

extern "C" __global__ void __launch_bounds__(TG_THREADS) conv_bwd_data_tf32(const float* __restrict__ dy, const float* __restrict__ w,
    float* __restrict__ dx, int nimg, ConvGeom g)
{ conv_bwd_data_body<true>(dy, w, dx, nimg, g); }

// ---- backward weight: M = Cout, N = Cin·K·K, K = Nimg·Ho·Wo (split over blockIdx.z) ---------------
struct ConvBwdWeightProb
{
    const float* x; const float* dy; ConvGeom g;
    int M, N;
    bool a_kcontig, b_ncontig;
    __device__ __forceinline__ float a(int m, int k) const
    {
        const int HoWo = g.Ho * g.Wo, img = k / HoWo, s = k - img * HoWo;
        return dy[((i64)img * g.Cout + m) * HoWo + s];
    }
    __device__ __forceinline__ float b(int k, int n) const
    {
        const int KK = g.K * g.K, ci = n / KK, r = n - ci * KK, kh = r / g.K, kw = r - kh * g.K;
        const int HoWo = g.Ho * g.Wo, img = k / HoWo, s = k - img * HoWo, ho = s / g.Wo, wo = s - ho * g.Wo;
        const int h = ho * g.S - g.P + kh, ww = wo * g.S - g.P + kw;
        if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) return 0.f;
        return x[((i64)img * g.Cin + ci) * g.H * g.W + (i64)h * g.W + ww];
    }
};

template <bool TF32>
__device__ __forceinline__ void conv_bwd_weight_body(const float* x, const float* dy, float* partial, int nimg, ConvGeom g, int kChunk)
{
    ConvBwdWeightProb p;
    p.x = x; p.dy = dy; p.g = g;
    p.M = g.Cout; p.N = g.Cin * g.K * g.K; p.a_kcontig = true; p.b_ncontig = false;
    const int Ktot = nimg * g.Ho * g.Wo;
    const int kb = blockIdx.z * kChunk, ke = min(Ktot, kb + kChunk);
    const int m0 = blockIdx.y * TG_BM, n0 = blockIdx.x * TG_BN;
    float acc[32];
#pragma unroll
    for (int i = 0; i < 32; i++) acc[i] = 0.f;
    tile_gemm<ConvBwdWeightProb, TF32>(p, m0, n0, kb, ke, acc);
    float* out = partial + (i64)blockIdx.z * p.M * p.N;
#pragma unroll
    for (int i = 0; i < 32; i++)
    {
        int mi, ni;
        acc_coord<TF32>(i, mi, ni);
        const int m = m0 + mi, n = n0 + ni;
        if (m < p.M && n < p.N) out[(i64)m * p.N + n] = acc[i];
    }
}

// partial (splits, Cout, Cin·K·K) = per-split Σ dy ⋆ x. Grid (ceil(Cin·KK/64), ceil(Cout/64), splits).
extern "C" __global__ void __launch_bounds__(TG_THREADS) conv_bwd_weight_f32(const float* __restrict__ x, const float* __restrict__ dy,
    float* __restrict__ partial, int nimg, ConvGeom g, int kChunk)
{ conv_bwd_weight_body<false>(x, dy, partial, nimg, g, kChunk); }

extern "C" __global__ void __launch_bounds__(TG_THREADS) conv_bwd_weight_tf32(const float* __restrict__ x, const float* __restrict__ dy,
    float* __restrict__ partial, int nimg, ConvGeom g, int kChunk)
{ conv_bwd_weight_body<true>(x, dy, partial, nimg, g, kChunk); }

// dw[co·wstride + j] += Σ_z partial[z, co, j] in z order; partial (splits, cout, cols), cols = Cin·KK.
extern "C" __global__ void conv_wgrad_reduce(const float* __restrict__ partial, float* __restrict__ dw,
                                             int splits, int cout, int cols, i64 wstride)
{
    const i64 n = (i64)cout * cols;
    for (i64 i = global_tid(); i < n; i += grid_stride())
    {
        float s = 0.f;
        for (int z = 0; z < splits; z++) s += partial[(i64)z * n + i];
        const int co = (int)(i / cols), j = (int)(i - (i64)co * cols);
        dw[co * wstride + j] += s;
    }
}

// dbias[co] += Σ_{img, s} dy[img, co, s]; dy (N, Cout, S). One block per co, fixed order (deterministic).
extern "C" __global__ void conv_bias_grad(const float* __restrict__ dy, float* __restrict__ dbias, int nimg, int cout, int S)
{
    __shared__ float scratch[32];
    const int co = blockIdx.x;
    float acc[1] = {0.f};
    for (int img = 0; img < nimg; img++)
    {
        const float* row = dy + ((i64)img * cout + co) * S;
        for (int s = threadIdx.x; s < S; s += blockDim.x) acc[0] += row[s];
    }
    block_sum<1>(acc, scratch);
    if (threadIdx.x == 0) dbias[co] += acc[0];
}
