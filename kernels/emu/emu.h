// emu.h — a slow, literal CPU emulator of the CUDA execution model, just enough to RUN kernels/*.cu
// on a machine without a GPU (CI, and this project's GPU-less sessions). blockDim.x std::threads walk
// the blocks one after another; __syncthreads is a std::barrier over them,
// warp shuffles and mma.sync exchange values through per-warp slots between two warp barriers.
// It checks indexing, tiling, reductions and synchronisation logic against float64 references; it
// says nothing about speed, and its mma follows the PTX fragment layout as documented (the same
// assumption the kernels make), so a wrong layout assumption would pass here and fail on a GPU.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#define DDSM_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static   // blocks run one at a time, so function statics are "per block"

struct uint3 { unsigned x = 0, y = 0, z = 0; };
struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(16) float4 { float x, y, z, w; };

inline thread_local uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

struct EmuBlock
{
    std::unique_ptr<std::barrier<>> block;
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    std::vector<double> slots;        // 32 per warp: shuffle exchange
    std::vector<float> mmaA, mmaB;    // per warp: 16×8 and 8×8 fragments
    std::vector<float> dyn;           // dynamic shared memory
};
inline EmuBlock emu;

inline void __syncthreads() { emu.block->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu.warps[threadIdx.x / 32]->arrive_and_wait(); }

template <class T>
inline T emu_shfl(T v, int src)
{
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    emu.slots[w * 32 + lane] = (double)v;
    __syncwarp();
    T r = (T)emu.slots[w * 32 + (src & 31)];
    __syncwarp();
    return r;
}
inline float __shfl_xor_sync(unsigned, float v, int m, int = 32) { return emu_shfl(v, (threadIdx.x % 32) ^ m); }
inline double __shfl_xor_sync(unsigned, double v, int m, int = 32) { return emu_shfl(v, (threadIdx.x % 32) ^ m); }
inline int __shfl_xor_sync(unsigned, int v, int m, int = 32) { return emu_shfl(v, (threadIdx.x % 32) ^ m); }
inline float __shfl_sync(unsigned, float v, int src, int = 32) { return emu_shfl(v, src); }

inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// cvt.rna.tf32.f32: keep 10 mantissa bits, round to nearest, ties away from zero.
inline unsigned to_tf32(float x)
{
    unsigned u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;   // inf / nan unchanged
    return (u + 0x1000u) & 0xffffe000u;
}

// mma.sync.m16n8k8 row.col f32.tf32.tf32.f32, fragments as in common.cuh's comment.
inline void mma_tf32_16x8x8(float& d0, float& d1, float& d2, float& d3,
                            unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1)
{
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
    float* A = &emu.mmaA[w * 128];   // (16, 8)
    float* B = &emu.mmaB[w * 64];    // (8 k, 8 n)
    A[g * 8 + t] = __uint_as_float(a0); A[(g + 8) * 8 + t] = __uint_as_float(a1);
    A[g * 8 + t + 4] = __uint_as_float(a2); A[(g + 8) * 8 + t + 4] = __uint_as_float(a3);
    B[t * 8 + g] = __uint_as_float(b0); B[(t + 4) * 8 + g] = __uint_as_float(b1);
    __syncwarp();
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int k = 0; k < 8; k++)
    {
        s0 += A[g * 8 + k] * B[k * 8 + 2 * t];
        s1 += A[g * 8 + k] * B[k * 8 + 2 * t + 1];
        s2 += A[(g + 8) * 8 + k] * B[k * 8 + 2 * t];
        s3 += A[(g + 8) * 8 + k] * B[k * 8 + 2 * t + 1];
    }
    __syncwarp();
    d0 += s0; d1 += s1; d2 += s2; d3 += s3;
}

#define DDSM_DYNAMIC_SMEM(name) float* name = emu.dyn.data()

// Runs kernel() over the grid: block.x threads, each walking the blocks in order, with a block-wide
// barrier between blocks (function-static "__shared__" arrays are reused by the next block).
template <class F>
void emu_launch(dim3 grid, dim3 block, size_t smemBytes, F kernel)
{
    gridDim = grid; blockDim = block;
    const unsigned n = block.x, nw = (n + 31) / 32;
    if (n % 32 != 0) { fprintf(stderr, "emu: block size must be a multiple of 32\n"); std::abort(); }
    emu.block = std::make_unique<std::barrier<>>(n);
    emu.warps.clear();
    for (unsigned w = 0; w < nw; w++) emu.warps.push_back(std::make_unique<std::barrier<>>(32));
    emu.slots.assign(nw * 32, 0.0);
    emu.mmaA.assign(nw * 128, 0.f); emu.mmaB.assign(nw * 64, 0.f);
    emu.dyn.assign(smemBytes / 4 + 4, std::nanf(""));   // poison: reads of unwritten shared memory show up
    std::vector<std::thread> ts;
    ts.reserve(n);
    for (unsigned t = 0; t < n; t++)
        ts.emplace_back([=] {
            threadIdx = {t, 0, 0};
            for (unsigned z = 0; z < grid.z; z++)
                for (unsigned y = 0; y < grid.y; y++)
                    for (unsigned x = 0; x < grid.x; x++)
                    {
                        blockIdx = {x, y, z};
                        kernel();
                        emu.block->arrive_and_wait();
                    }
        });
    for (auto& th : ts) th.join();
}
