// elementwise.cu — the memory-bound kernels of the contract's element-wise family: axpby,
// binary/unary maps, per-channel broadcast, strided block copies, 2× resampling, the timestep
// embedding and dropout. No backward kernels: the C# op layer composes them from these.
// Layout: flat float32 buffers indexed by a 64-bit element index; images NCHW.
// Shape: grid-stride loops over one element per thread-iteration (the host caps the grid), because
// each op reads/writes every element once and has no reuse to tile for. axpby, binary, unary and
// broadcast may run in place (output = an input), so their pointers are not __restrict__.
// Op codes match the C# enums: BinaryOp {Add 0, Sub 1, Mul 2}, UnaryOp {SiLU 0, Square 1, Exp 2,
// SiLUGrad 3}.
#include "common.cuh"

__device__ __forceinline__ float binop(int op, float a, float b)
{
    return op == 0 ? a + b : (op == 1 ? a - b : a * b);
}

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

__device__ __forceinline__ float unop(int op, float x)
{
    switch (op)
    {
    case 0: return x / (1.f + expf(-x));
    case 1: return x * x;
    case 2: return expf(x);
    default: { float s = sigmoid(x); return s * (1.f + x * (1.f - s)); }   // SiLU's derivative
    }
}

// y (n) = alpha·x + beta·y; beta == 0 never reads y (it may hold NaN garbage).
extern "C" __global__ void axpby(const float* x, float* y, i64 n, float alpha, float beta)
{
    for (i64 i = global_tid(); i < n; i += grid_stride())
        y[i] = beta == 0.f ? alpha * x[i] : alpha * x[i] + beta * y[i];
}

// z (n) = a op b
extern "C" __global__ void binary_fwd(int op, const float* a, const float* b, float* z, i64 n)
{
    for (i64 i = global_tid(); i < n; i += grid_stride()) z[i] = binop(op, a[i], b[i]);
}

// y (n) = f(x)
extern "C" __global__ void unary_fwd(int op, const float* x, float* y, i64 n)
{
    for (i64 i = global_tid(); i < n; i += grid_stride()) y[i] = unop(op, x[i]);
}

// z (outer, mid, inner) = a op b[bo, m], bo = o when perOuter else 0; b is (outer|1, mid).
extern "C" __global__ void broadcast_fwd(int op, const float* a, const float* b, float* z,
                                         int outer, int mid, int inner, int perOuter)
{
    i64 n = (i64)outer * mid * inner;
    for (i64 i = global_tid(); i < n; i += grid_stride())
    {
        i64 row = i / inner;                       // o·mid + m
        int m = (int)(row % mid);
        i64 bi = perOuter ? row : m;
        z[i] = binop(op, a[i], b[bi]);
    }
}

// dst[dstOff + r·dstStride + j] (+)= src[srcOff + r·srcStride + j], r < rows, j < len.
// blockIdx.y walks rows (grid-strided), x-threads walk j: each row is a coalesced run.
extern "C" __global__ void copy_blocks(const float* __restrict__ src, i64 srcOff, i64 srcStride,
                                       float* __restrict__ dst, i64 dstOff, i64 dstStride, int rows, i64 len, int accumulate)
{
    for (int r = blockIdx.y; r < rows; r += gridDim.y)
    {
        const float* s = src + srcOff + (i64)r * srcStride;
        float* d = dst + dstOff + (i64)r * dstStride;
        for (i64 j = global_tid(); j < len; j += grid_stride())
            d[j] = accumulate ? d[j] + s[j] : s[j];
    }
}

// y (nc, 2h, 2w) = nearest ×2 of x (nc, h, w); one thread per output element.
extern "C" __global__ void upsample2x_fwd(const float* __restrict__ x, float* __restrict__ y, int nc, int h, int w)
{
    const int w2 = 2 * w, h2 = 2 * h;
    i64 n = (i64)nc * h2 * w2;
    for (i64 i = global_tid(); i < n; i += grid_stride())
    {
        int xo = (int)(i % w2); i64 t = i / w2;
        int yo = (int)(t % h2); i64 p = t / h2;
        y[i] = x[(p * h + (yo >> 1)) * w + (xo >> 1)];
    }
}

// y (nc, h/2, w/2) = 2×2 mean of x (nc, h, w)
extern "C" __global__ void avgpool2x_fwd(const float* __restrict__ x, float* __restrict__ y, int nc, int h, int w)
{
    const int ho = h / 2, wo = w / 2;
    i64 n = (i64)nc * ho * wo;
    for (i64 i = global_tid(); i < n; i += grid_stride())
    {
        int xo = (int)(i % wo); i64 t = i / wo;
        int yo = (int)(t % ho); i64 p = t / ho;
        i64 r0 = (p * h + 2 * yo) * w + 2 * xo, r1 = r0 + w;
        y[i] = 0.25f * (x[r0] + x[r0 + 1] + x[r1] + x[r1 + 1]);
    }
}

// out (n, dim) = [cos(t·f_j), sin(t·f_j)], f_j = exp(−ln(maxPeriod)·j/half); odd dim: last column 0.
// Double precision like the CPU oracle, so both round the same double to float.
extern "C" __global__ void timestep_embedding(const float* __restrict__ t, float* __restrict__ out, int n, int dim, float maxPeriod)
{
    const int half = dim / 2;
    i64 total = (i64)n * dim;
    for (i64 i = global_tid(); i < total; i += grid_stride())
    {
        int col = (int)(i % dim), b = (int)(i / dim);
        if (col >= 2 * half) { out[i] = 0.f; continue; }
        int j = col < half ? col : col - half;
        double f = exp(-log((double)maxPeriod) * j / half);
        double a = (double)t[b] * f;
        out[i] = (float)(col < half ? cos(a) : sin(a));
    }
}

// Rng.Hash(seed, index) of the C# side, bit for bit: a splitmix64 finaliser, top 32 bits.
__device__ __forceinline__ u32 ddsm_hash(u64 seed, u64 index)
{
    u64 z = seed ^ (index * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (u32)(z >> 32);
}

// mask (n) = hash(seed, i) >= threshold ? keepScale : 0; y (n) = x·mask. threshold = p·2³² (host).
extern "C" __global__ void dropout_fwd(const float* __restrict__ x, float* __restrict__ y, float* __restrict__ mask,
                                       i64 n, u32 threshold, float keepScale, u64 seed)
{
    for (i64 i = global_tid(); i < n; i += grid_stride())
    {
        float m = ddsm_hash(seed, (u64)i) >= threshold ? keepScale : 0.f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}
