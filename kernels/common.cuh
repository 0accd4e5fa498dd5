// common.cuh — helpers shared by every kernel file: integer types (NVRTC has no <stdint.h>),
// grid-stride indexing, deterministic warp/block reductions and the TF32 tensor-core primitive.
// Included by name: the C# side hands this text to NVRTC as a header; the CI check passes -I kernels.
#pragma once

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;

// Threads per block of the memory-bound kernels: enough warps to hide latency, small enough that a
// block reduction's shared scratch stays tiny.
#define EW_THREADS 256

// A large negative stand-in for -inf: exp(x - max) underflows to 0 without inf - inf = NaN hazards.
#define NEG_BIG (-1.0e30f)

__device__ __forceinline__ i64 global_tid() { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ i64 grid_stride() { return (i64)gridDim.x * blockDim.x; }

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum of NV values per thread, broadcast back to every thread. The tree (butterfly in each
// warp, then warp 0 over the warp partials) has a fixed shape, so the result is deterministic.
// scratch: __shared__ float[32 * NV]. Every thread of the block must call it.
template <int NV>
__device__ __forceinline__ void block_sum(float (&v)[NV], float* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int j = 0; j < NV; j++) v[j] = warp_sum(v[j]);
    __syncthreads();                       // scratch may still be read by a previous call
    if (lane == 0)
    {
#pragma unroll
        for (int j = 0; j < NV; j++) scratch[warp * NV + j] = v[j];
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < NV; j++)
    {
        float s = lane < nwarps ? scratch[lane * NV + j] : 0.f;
        v[j] = warp_sum(s);
    }
}

// The same over doubles (final passes of the deterministic reductions). scratch: double[32].
__device__ __forceinline__ double block_sum_d(double v, double* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    double s = lane < nwarps ? scratch[lane] : 0.0;
    return warp_sum_d(s);
}

#ifndef DDSM_EMU
// Round-to-nearest conversion to TF32 (the 19-bit format the tensor cores read), kept in a b32.
__device__ __forceinline__ u32 to_tf32(float x)
{
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// D = A·B + D on one warp: A 16×8 (row), B 8×8 (col), TF32 inputs, FP32 accumulators (sm_80+).
// Fragment ownership (PTX ISA, mma.m16n8k8 .tf32), g = lane/4, t = lane%4:
//   a0 (g, t)  a1 (g+8, t)  a2 (g, t+4)  a3 (g+8, t+4);  b0 (k=t, n=g)  b1 (k=t+4, n=g);
//   d0 (g, 2t) d1 (g, 2t+1) d2 (g+8, 2t) d3 (g+8, 2t+1).
__device__ __forceinline__ void mma_tf32_16x8x8(float& d0, float& d1, float& d2, float& d3,
                                                u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1)
{
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Dynamic shared memory of a kernel, sized at launch.
#define DDSM_DYNAMIC_SMEM(name) extern __shared__ __align__(16) float name[]
#else
// kernels/emu/emu.h (a CPU emulator used by the CI check) supplies to_tf32, mma_tf32_16x8x8 and
// DDSM_DYNAMIC_SMEM with the same semantics.
#endif
