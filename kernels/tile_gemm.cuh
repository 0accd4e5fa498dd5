// tile_gemm.cuh — the one block-tile matrix-multiply engine behind gemm.cu and conv.cu.
// A block of 128 threads computes a 64×64 tile of C = A·B (A is M×K, B is K×N) over a K range,
// staging 16-deep slices of A and B through shared memory. Operands come from a "problem" object
// that maps (m, k) / (k, n) to memory, so the same engine serves plain, transposed and batched GEMM
// and the implicit-GEMM convolutions (im2col is index arithmetic in the loader, never materialised).
//
// Two inner products, chosen at compile time:
//   TF32 = true : tensor cores, mma.sync m16n8k8 TF32 with FP32 accumulate; 4 warps in a 2×2 grid,
//                 each owning 32×32 (2 m16 × 4 n8 tiles). ~1e-3 relative error (10-bit mantissa).
//   TF32 = false: exact FP32 SIMT; thread (ty = tid/16, tx = tid%16) owns rows ty·8..+8, cols tx·4..+4.
// Both give each thread 32 accumulators; acc_coord() says which (m, n) accumulator i is.
//
// Why this tiling: 64×64×16 keeps 2·64·72·4 B = 36 KB of shared memory (static limit 48 KB) and 32
// accumulators per thread, so several blocks fit per SM; rows are padded to 72 floats so that the
// mma fragment loads (8 rows × 4 k per instruction: bank = 8·t + g) hit 32 distinct banks.
// Global loads for the next slice are issued before the current slice's math (register double
// buffering) so their latency overlaps the FMAs / MMAs.
//
// Problem concept (a struct P):
//   int M, N;                         // extents for bounds checks (K range is given per call)
//   bool a_kcontig, b_ncontig;        // which index walks memory contiguously (coalesced tile loads)
//   __device__ float a(int m, int k) const;   // called only with m < M, k in range
//   __device__ float b(int k, int n) const;   // called only with n < N, k in range
#pragma once
#include "common.cuh"

#define TG_BM 64
#define TG_BN 64
#define TG_BK 16
#define TG_THREADS 128
#define TG_LD 72   // padded row length of the shared tiles (floats)

template <bool TF32>
__device__ __forceinline__ void acc_coord(int i, int& m, int& n)
{
    const int tid = threadIdx.x;
    if (TF32)
    {
        const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
        const int tile = i >> 2, r = i & 3, mt = tile >> 2, nt = tile & 3;
        m = (warp >> 1) * 32 + mt * 16 + g + (r >= 2 ? 8 : 0);
        n = (warp & 1) * 32 + nt * 8 + 2 * t + (r & 1);
    }
    else
    {
        m = (tid >> 4) * 8 + (i >> 2);
        n = (tid & 15) * 4 + (i & 3);
    }
}

template <class P>
__device__ __forceinline__ void tg_load(const P& p, int m0, int n0, int k0, int kEnd, float (&ra)[8], float (&rb)[8])
{
    const int tid = threadIdx.x;
#pragma unroll
    for (int r = 0; r < 8; r++)
    {
        const int e = tid + r * TG_THREADS;
        int mm, kk;
        if (p.a_kcontig) { mm = e >> 4; kk = e & 15; } else { mm = e & 63; kk = e >> 6; }
        const int m = m0 + mm, k = k0 + kk;
        ra[r] = (m < p.M && k < kEnd) ? p.a(m, k) : 0.f;
    }
#pragma unroll
    for (int r = 0; r < 8; r++)
    {
        const int e = tid + r * TG_THREADS;
        int nn, kk;
        if (p.b_ncontig) { nn = e & 63; kk = e >> 6; } else { nn = e >> 4; kk = e & 15; }
        const int n = n0 + nn, k = k0 + kk;
        rb[r] = (n < p.N && k < kEnd) ? p.b(k, n) : 0.f;
    }
}

template <class P, bool TF32>
__device__ __forceinline__ void tg_store(const P& p, float (*As)[TG_LD], float (*Bs)[TG_LD], const float (&ra)[8], const float (&rb)[8])
{
    const int tid = threadIdx.x;
#pragma unroll
    for (int r = 0; r < 8; r++)
    {
        const int e = tid + r * TG_THREADS;
        int mm, kk;
        if (p.a_kcontig) { mm = e >> 4; kk = e & 15; } else { mm = e & 63; kk = e >> 6; }
        As[kk][mm] = TF32 ? __uint_as_float(to_tf32(ra[r])) : ra[r];
    }
#pragma unroll
    for (int r = 0; r < 8; r++)
    {
        const int e = tid + r * TG_THREADS;
        int nn, kk;
        if (p.b_ncontig) { nn = e & 63; kk = e >> 6; } else { nn = e >> 4; kk = e & 15; }
        Bs[kk][nn] = TF32 ? __uint_as_float(to_tf32(rb[r])) : rb[r];
    }
}

// acc (32 per thread, see acc_coord) += A[m0.., kBegin..kEnd) · B[kBegin..kEnd, n0..). All 128 threads call it.
template <class P, bool TF32>
__device__ __forceinline__ void tile_gemm(const P& p, int m0, int n0, int kBegin, int kEnd, float (&acc)[32])
{
    __shared__ __align__(16) float As[TG_BK][TG_LD];   // (k, m) slice of A
    __shared__ __align__(16) float Bs[TG_BK][TG_LD];   // (k, n) slice of B
    const int tid = threadIdx.x;
    float ra[8], rb[8];
    if (kBegin < kEnd) tg_load(p, m0, n0, kBegin, kEnd, ra, rb);
    for (int k0 = kBegin; k0 < kEnd; k0 += TG_BK)
    {
        tg_store<P, TF32>(p, As, Bs, ra, rb);
        __syncthreads();
        if (k0 + TG_BK < kEnd) tg_load(p, m0, n0, k0 + TG_BK, kEnd, ra, rb);   // in flight during the math
        if (TF32)
        {
            const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
            const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
#pragma unroll
            for (int kk = 0; kk < TG_BK; kk += 8)
            {
                u32 af[2][4], bf[4][2];
#pragma unroll
                for (int mt = 0; mt < 2; mt++)
                {
                    const int r = wm + mt * 16 + g;
                    af[mt][0] = __float_as_uint(As[kk + t][r]);
                    af[mt][1] = __float_as_uint(As[kk + t][r + 8]);
                    af[mt][2] = __float_as_uint(As[kk + t + 4][r]);
                    af[mt][3] = __float_as_uint(As[kk + t + 4][r + 8]);
                }
#pragma unroll
                for (int nt = 0; nt < 4; nt++)
                {
                    const int c = wn + nt * 8 + g;
                    bf[nt][0] = __float_as_uint(Bs[kk + t][c]);
                    bf[nt][1] = __float_as_uint(Bs[kk + t + 4][c]);
                }
#pragma unroll
                for (int mt = 0; mt < 2; mt++)
#pragma unroll
                    for (int nt = 0; nt < 4; nt++)
                    {
                        const int b = (mt * 4 + nt) * 4;
                        mma_tf32_16x8x8(acc[b], acc[b + 1], acc[b + 2], acc[b + 3],
                                        af[mt][0], af[mt][1], af[mt][2], af[mt][3], bf[nt][0], bf[nt][1]);
                    }
            }
        }
        else
        {
            const int ty = tid >> 4, tx = tid & 15;
#pragma unroll
            for (int k = 0; k < TG_BK; k++)
            {
                const float4 a0 = *reinterpret_cast<const float4*>(&As[k][ty * 8]);
                const float4 a1 = *reinterpret_cast<const float4*>(&As[k][ty * 8 + 4]);
                const float4 bv = *reinterpret_cast<const float4*>(&Bs[k][tx * 4]);
                const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                const float bw[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
                for (int i = 0; i < 8; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) acc[i * 4 + j] = fmaf(av[i], bw[j], acc[i * 4 + j]);
            }
        }
        __syncthreads();
    }
}
