// reduce.cu — full reductions to one float (sum, sum of squares, squared error).
// Deterministic two-pass scheme: pass 1 runs a grid whose size depends only on n (the host picks it),
// each block strides over fixed elements, sums in double and writes one partial; pass 2 is a single
// block adding the partials in a fixed tree. Same n, same bits, whatever the scheduling.
// Why double: the sums feed losses and logged norms; float partials over ~10⁶ terms lose digits that
// the CPU oracle (double chunks) keeps, and these kernels are memory-bound anyway.
#include "common.cuh"

// kind: 0 Σx, 1 Σx², 2 Σ(a−b)². partials (gridDim.x) doubles.
extern "C" __global__ void reduce_pass1(int kind, const float* __restrict__ a, const float* __restrict__ b, i64 n,
                                        double* __restrict__ partials)
{
    __shared__ double scratch[32];
    double s = 0.0;
    for (i64 i = global_tid(); i < n; i += grid_stride())
    {
        float v = a[i];
        if (kind == 2) v -= b[i];
        s += kind == 0 ? (double)v : (double)v * v;
    }
    s = block_sum_d(s, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// result[0] = Σ partials (count), one block.
extern "C" __global__ void reduce_pass2(const double* __restrict__ partials, int count, float* __restrict__ result)
{
    __shared__ double scratch[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
    s = block_sum_d(s, scratch);
    if (threadIdx.x == 0) result[0] = (float)s;
}
