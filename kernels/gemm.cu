// gemm.cu — batched row-major GEMM: C_b = alpha·op(A_b)·op(B_b) + beta·C_b, op = optional transpose.
// Layout: A at a + offA + b·strideA with leading dimension lda (row-major: element (i, j) at i·ld + j
// of the stored matrix), same for B and C; op(A) is M×K, op(B) is K×N.
// Grid: (ceil(N/64), ceil(M/64), batch), 128 threads; the tile engine is tile_gemm.cuh.
// Two entry points: gemm_f32 (exact FP32 SIMT) and gemm_tf32 (tensor cores, TF32 in, FP32 accumulate).
// beta == 0 never reads C (it may be uninitialised).
#include "tile_gemm.cuh"

struct GemmProb
{
    const float* A; const float* B;
    int M, N, lda, ldb;
    bool ta, tb, a_kcontig, b_ncontig;
    __device__ __forceinline__ float a(int m, int k) const { return ta ? A[(i64)k * lda + m] : A[(i64)m * lda + k]; }
    __device__ __forceinline__ float b(int k, int n) const { return tb ? B[(i64)n * ldb + k] : B[(i64)k * ldb + n]; }
};

template <bool TF32>
__device__ __forceinline__ void gemm_body(int ta, int tb, int M, int N, int K, float alpha, float beta,
                                          const float* a, i64 offA, int lda, i64 strideA,
                                          const float* b, i64 offB, int ldb, i64 strideB,
                                          float* c, i64 offC, int ldc, i64 strideC)
{
    const i64 bz = blockIdx.z;
    GemmProb p;
    p.A = a + offA + bz * strideA; p.B = b + offB + bz * strideB;
    p.M = M; p.N = N; p.lda = lda; p.ldb = ldb;
    p.ta = ta != 0; p.tb = tb != 0; p.a_kcontig = !p.ta; p.b_ncontig = !p.tb;
    const int m0 = blockIdx.y * TG_BM, n0 = blockIdx.x * TG_BN;
    float acc[32];
#pragma unroll
    for (int i = 0; i < 32; i++) acc[i] = 0.f;
    tile_gemm<GemmProb, TF32>(p, m0, n0, 0, K, acc);
    float* C = c + offC + bz * strideC;
#pragma unroll
    for (int i = 0; i < 32; i++)
    {
        int mi, ni;
        acc_coord<TF32>(i, mi, ni);
        const int m = m0 + mi, n = n0 + ni;
        if (m < M && n < N)
        {
            float* cp = C + (i64)m * ldc + n;
            *cp = beta == 0.f ? alpha * acc[i] : alpha * acc[i] + beta * *cp;
        }
    }
}

// C (batch × M×N) = alpha·op(A)·op(B) + beta·C, exact FP32.
extern "C" __global__ void __launch_bounds__(TG_THREADS) gemm_f32(
    int ta, int tb, int M, int N, int K, float alpha, float beta,
    const float* __restrict__ a, i64 offA, int lda, i64 strideA,
    const float* __restrict__ b, i64 offB, int ldb, i64 strideB,
    float* c, i64 offC, int ldc, i64 strideC)
{
    gemm_body<false>(ta, tb, M, N, K, alpha, beta, a, offA, lda, strideA, b, offB, ldb, strideB, c, offC, ldc, strideC);
}

// Same contract on the tensor cores (TF32 operands, FP32 accumulate).
extern "C" __global__ void __launch_bounds__(TG_THREADS) gemm_tf32(
    int ta, int tb, int M, int N, int K, float alpha, float beta,
    const float* __restrict__ a, i64 offA, int lda, i64 strideA,
    const float* __restrict__ b, i64 offB, int ldb, i64 strideB,
    float* c, i64 offC, int ldc, i64 strideC)
{
    gemm_body<true>(ta, tb, M, N, K, alpha, beta, a, offA, lda, strideA, b, offB, ldb, strideB, c, offC, ldc, strideC);
}
