// groupnorm.cu — fused GroupNorm + affine + FiLM scale-shift + optional SiLU, forward and backward.
//   y = act((xhat·γ[c] + β[c])·(1 + scale[n,c]) + shift[n,c]),  xhat = (x − mean[n,g])·rstd[n,g]
// Layout: x, y, dy, dx (N, C, S) with C the ACTIVE channels (slimmable: γ, β are stored for CMax and
// only their prefix [0, C) is read or written); scale/shift (N, C) or null; mean/rstd (N, G).
// Shape: one block of 256 threads per (group, sample), because the statistics are a reduction over
// that group's C/G·S elements; statistics are two-pass (mean, then Σ(x−mean)²) for accuracy.
// Backward ACCUMULATES. dγ/dβ sum over samples too, which crosses blocks: each block writes its
// per-(n, c) partials and groupnorm_param_grad adds them over n in a fixed order (no atomics, so the
// result is deterministic).
#include "common.cuh"

#define GN_THREADS 256

// grid (G, N), block GN_THREADS.
extern "C" __global__ void __launch_bounds__(GN_THREADS) groupnorm_fwd(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
    const float* __restrict__ scale, const float* __restrict__ shift, float* __restrict__ y,
    float* __restrict__ mean, float* __restrict__ rstd, int C, int S, int G, float eps, int silu)
{
    __shared__ float scratch[32];
    const int g = blockIdx.x, n = blockIdx.y, cpg = C / G, c0 = g * cpg;
    const i64 base = ((i64)n * C + c0) * S;
    const int cnt = cpg * S;
    float v[1] = {0.f};
    for (int e = threadIdx.x; e < cnt; e += blockDim.x) v[0] += x[base + e];
    block_sum<1>(v, scratch);
    const float mu = v[0] / cnt;
    v[0] = 0.f;
    for (int e = threadIdx.x; e < cnt; e += blockDim.x) { float d = x[base + e] - mu; v[0] += d * d; }
    block_sum<1>(v, scratch);
    const float r = 1.f / sqrtf(v[0] / cnt + eps);
    if (threadIdx.x == 0) { mean[n * G + g] = mu; rstd[n * G + g] = r; }
    for (int e = threadIdx.x; e < cnt; e += blockDim.x)
    {
        const int c = c0 + e / S;
        float o = (x[base + e] - mu) * r * gamma[c] + beta[c];
        if (scale) o *= 1.f + scale[(i64)n * C + c];
        if (shift) o += shift[(i64)n * C + c];
        if (silu) o = o / (1.f + expf(-o));
        y[base + e] = o;
    }
}

// grid (G, N), block GN_THREADS. partG/partB (N, C): per-sample Σ for dγ/dβ (written, not accumulated;
// null when neither dγ nor dβ is wanted). dx, dscale, dshift accumulate; null = not needed.
extern "C" __global__ void __launch_bounds__(GN_THREADS) groupnorm_bwd(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
    const float* __restrict__ scale, const float* __restrict__ shift,
    const float* __restrict__ mean, const float* __restrict__ rstd, const float* __restrict__ dy,
    float* __restrict__ dx, float* __restrict__ dscale, float* __restrict__ dshift,
    float* __restrict__ partG, float* __restrict__ partB, int C, int S, int G, int silu)
{
    __shared__ float scratch[32 * 4];
    const int g = blockIdx.x, n = blockIdx.y, cpg = C / G, c0 = g * cpg;
    const float mu = mean[n * G + g], r = rstd[n * G + g];
    float sumDx = 0.f, sumDxX = 0.f;   // Σ dxhat, Σ dxhat·xhat over the group (uniform over threads)
    for (int ci = 0; ci < cpg; ci++)
    {
        const int c = c0 + ci;
        const i64 row = ((i64)n * C + c) * S;
        const float ga = gamma[c], be = beta[c];
        const float sc = scale ? 1.f + scale[(i64)n * C + c] : 1.f;
        const float sh = shift ? shift[(i64)n * C + c] : 0.f;
        float v[4] = {0.f, 0.f, 0.f, 0.f};   // Σ gu, Σ gu·ypre, Σ gpre, Σ gpre·xhat
        for (int s = threadIdx.x; s < S; s += blockDim.x)
        {
            const float xh = (x[row + s] - mu) * r, yp = xh * ga + be;
            float gu = dy[row + s];
            if (silu)
            {
                const float u = yp * sc + sh, sg = 1.f / (1.f + expf(-u));
                gu *= sg * (1.f + u * (1.f - sg));
            }
            const float gp = gu * sc;
            v[0] += gu; v[1] += gu * yp; v[2] += gp; v[3] += gp * xh;
        }
        block_sum<4>(v, scratch);
        if (threadIdx.x == 0)
        {
            if (dshift) dshift[(i64)n * C + c] += v[0];
            if (dscale) dscale[(i64)n * C + c] += v[1];
            if (partB) { partB[(i64)n * C + c] = v[2]; partG[(i64)n * C + c] = v[3]; }
        }
        sumDx += ga * v[2];
        sumDxX += ga * v[3];
    }
    if (!dx) return;
    const float inv = 1.f / (cpg * S), m1 = sumDx * inv, m2 = sumDxX * inv;
    const i64 base = ((i64)n * C + c0) * S;
    for (int e = threadIdx.x; e < cpg * S; e += blockDim.x)
    {
        const int c = c0 + e / S;
        const float ga = gamma[c];
        const float sc = scale ? 1.f + scale[(i64)n * C + c] : 1.f;
        const float xh = (x[base + e] - mu) * r;
        float gu = dy[base + e];
        if (silu)
        {
            const float sh = shift ? shift[(i64)n * C + c] : 0.f;
            const float u = (xh * ga + beta[c]) * sc + sh, sg = 1.f / (1.f + expf(-u));
            gu *= sg * (1.f + u * (1.f - sg));
        }
        const float dxh = gu * sc * ga;
        dx[base + e] += r * (dxh - m1 - xh * m2);
    }
}

// dgamma[c] += Σ_n partG[n, c], dbeta[c] += Σ_n partB[n, c] in n order; either output may be null.
extern "C" __global__ void groupnorm_param_grad(const float* __restrict__ partG, const float* __restrict__ partB,
                                                float* __restrict__ dgamma, float* __restrict__ dbeta, int N, int C)
{
    for (i64 c = global_tid(); c < C; c += grid_stride())
    {
        float sg = 0.f, sb = 0.f;
        for (int n = 0; n < N; n++) { sg += partG[(i64)n * C + c]; sb += partB[(i64)n * C + c]; }
        if (dgamma) dgamma[c] += sg;
        if (dbeta) dbeta[c] += sb;
    }
}
