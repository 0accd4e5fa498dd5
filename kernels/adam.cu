// adam.cu — one fused Adam(W) step over a parameter: reads p, g, m, v once and writes p, m, v once
// (the naive chain of element-wise ops would move ~3× the bytes). EMA of weights is axpby.
// Formula (contract): g = grad·gradScale; m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²;
// p −= lr·(m/bc1 / (√(v/bc2) + eps) + wd·p). Same float operation order as the CPU oracle.
#include "common.cuh"

// param, grad, m, v: (n)
extern "C" __global__ void adam_step(float* __restrict__ p, const float* __restrict__ grad, float* __restrict__ m,
                                     float* __restrict__ v, i64 n, float lr, float b1, float b2, float eps, float wd,
                                     float ibc1, float ibc2, float gs)
{
    for (i64 i = global_tid(); i < n; i += grid_stride())
    {
        float g = grad[i] * gs;
        float mi = b1 * m[i] + (1.f - b1) * g;
        float vi = b2 * v[i] + (1.f - b2) * g * g;
        m[i] = mi; v[i] = vi;
        float pi = p[i];
        p[i] = pi - lr * (mi * ibc1 / (sqrtf(vi * ibc2) + eps) + wd * pi);
    }
}
