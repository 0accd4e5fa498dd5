// cuda-prelude.h — what NVRTC provides built in, spelled for clang's CUDA front end, so that
// .ci/kernels-check can compile kernels/*.cu with `clang-14 -x cuda --cuda-device-only -nocudainc`
// (no CUDA toolkit on CI). Only declarations: the output is thrown away, nothing is linked.
// Anything a kernel uses from NVRTC's implicit environment must be declared here, else CI fails.
#pragma once
#include "__clang_cuda_builtin_vars.h"   // threadIdx, blockIdx, blockDim, gridDim, warpSize

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))

// __syncthreads is a clang builtin in CUDA mode.
__device__ __forceinline__ void __syncwarp(unsigned mask = 0xffffffffu) { __nvvm_bar_warp_sync(mask); }
__device__ __forceinline__ void __threadfence() { __nvvm_membar_gl(); }

__device__ __forceinline__ float __shfl_xor_sync(unsigned m, float v, int l, int w = 32) { return __nvvm_shfl_sync_bfly_f32(m, v, l, ((32 - w) << 8) | 31); }
__device__ __forceinline__ int __shfl_xor_sync(unsigned m, int v, int l, int w = 32) { return __nvvm_shfl_sync_bfly_i32(m, v, l, ((32 - w) << 8) | 31); }
__device__ __forceinline__ float __shfl_sync(unsigned m, float v, int l, int w = 32) { return __nvvm_shfl_sync_idx_f32(m, v, l, ((32 - w) << 8) | 31); }
__device__ __forceinline__ int __shfl_sync(unsigned m, int v, int l, int w = 32) { return __nvvm_shfl_sync_idx_i32(m, v, l, ((32 - w) << 8) | 31); }
__device__ __forceinline__ float __shfl_down_sync(unsigned m, float v, unsigned d, int w = 32) { return __nvvm_shfl_sync_down_f32(m, v, d, ((32 - w) << 8) | 31); }
__device__ __forceinline__ double __shfl_xor_sync(unsigned m, double v, int l, int w = 32)
{
    int lo = __nvvm_shfl_sync_bfly_i32(m, (int)__builtin_bit_cast(unsigned long long, v), l, ((32 - w) << 8) | 31);
    int hi = __nvvm_shfl_sync_bfly_i32(m, (int)(__builtin_bit_cast(unsigned long long, v) >> 32), l, ((32 - w) << 8) | 31);
    return __builtin_bit_cast(double, ((unsigned long long)(unsigned)hi << 32) | (unsigned)lo);
}

__device__ __forceinline__ float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
__device__ __forceinline__ float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
__device__ __forceinline__ int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
__device__ __forceinline__ unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }

// libdevice-backed maths NVRTC declares implicitly (extern: PTX keeps them as .extern calls).
extern "C" {
__device__ float expf(float); __device__ float logf(float); __device__ float sqrtf(float);
__device__ float rsqrtf(float); __device__ float fmaxf(float, float); __device__ float fminf(float, float);
__device__ float fabsf(float); __device__ float cosf(float); __device__ float sinf(float);
__device__ float __expf(float); __device__ float __logf(float); __device__ float __fdividef(float, float);
__device__ float fmaf(float, float, float);
__device__ double exp(double); __device__ double log(double); __device__ double cos(double);
__device__ double sin(double); __device__ double sqrt(double);
}

#define __align__(n) __attribute__((aligned(n)))
__device__ __forceinline__ float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) float2 { float x, y; };
__device__ __forceinline__ int min(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int max(int a, int b) { return a > b ? a : b; }
__device__ __forceinline__ long long min(long long a, long long b) { return a < b ? a : b; }
__device__ __forceinline__ long long max(long long a, long long b) { return a > b ? a : b; }
