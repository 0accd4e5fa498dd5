// attention.cu — fused multi-head self-attention (flash style: the T×T score matrix never reaches
// device memory), forward and backward, over ADM's "legacy" head-major qkv layout.
// Layout: qkv (N, 3C, T) with C = H·d; head h's q is channels [h·3d, h·3d+d), k the next d, v the
// next d (so a slimmable channel prefix keeps whole heads). Tokens are the fastest axis, so one
// channel of 32 consecutive tokens is a coalesced 128-byte load. out (N, C, T); lse (N·H, T).
// Scale 1/√d. Dynamic shared memory sized by d (the host raises the 48 KB limit when d > 64).
//
// Shape: 128 threads = 4 warps per block and 32-token tiles. Forward and dQ: a block owns 32 queries,
// each warp 8 of them; while scoring, lane = key (8 dot products per lane, q broadcast from shared
// memory, k conflict-free thanks to a 33-float row pitch); while accumulating P·V, lane = channel
// (j = lane + 32·jj, JJ = d/32 rounded up), so each lane keeps 8·JJ accumulators in registers.
// dK/dV swap the roles (a block owns 32 keys, lane = query while scoring). Backward recomputes P from
// lse, and splits dQ from dK/dV into two kernels so that neither needs atomics: deterministic.
// Online softmax keeps a running max m and sum l per query; masked keys (t ≥ T) score NEG_BIG.
#include "common.cuh"

#define AT_THREADS 128
#define AT_TILE 32
#define AT_PITCH 33

struct AttnGeom
{
    int H, d, T;
    float scale;   // 1/√d
};

__device__ __forceinline__ const float* head_q(const float* qkv, int n, int h, AttnGeom a)
{
    return qkv + ((i64)n * 3 * a.H * a.d + (i64)h * 3 * a.d) * a.T;
}

// Loads channels [0, d) × tokens [t0, t0+32) of a (d, T) row block into sm[j·pitch + t] (0 past T).
__device__ __forceinline__ void load_tile(float* sm, int pitch, const float* src, int d, int T, int t0)
{
    for (int e = threadIdx.x; e < d * AT_TILE; e += blockDim.x)
    {
        const int j = e / AT_TILE, t = e - j * AT_TILE;
        sm[j * pitch + t] = t0 + t < T ? src[(i64)j * T + t0 + t] : 0.f;
    }
}

// ---- forward -----------------------------------------------------------------------------------
// grid (ceil(T/32), H, N), block 128, dynamic smem (d·(32 + 2·33) + 4·8·32) floats.
template <int JJ>
__device__ __forceinline__ void attn_fwd_body(const float* qkv, float* out, float* lse, AttnGeom a)
{
    DDSM_DYNAMIC_SMEM(sm);
    float* Qs = sm;                          // (d, 32)   queries of this block
    float* Ks = Qs + a.d * AT_TILE;          // (d, 33)   key tile
    float* Vs = Ks + a.d * AT_PITCH;         // (d, 33)   value tile
    float* Ps = Vs + a.d * AT_PITCH;         // (4 warps, 8 queries, 32 keys)
    const int n = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * AT_TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float* Q = head_q(qkv, n, h, a);
    const float* K = Q + (i64)a.d * a.T;
    const float* V = K + (i64)a.d * a.T;
    load_tile(Qs, AT_TILE, Q, a.d, a.T, q0);

    float m[8], l[8], acc[8][JJ];
#pragma unroll
    for (int i = 0; i < 8; i++)
    {
        m[i] = NEG_BIG; l[i] = 0.f;
#pragma unroll
        for (int jj = 0; jj < JJ; jj++) acc[i][jj] = 0.f;
    }
    float* P = Ps + warp * 8 * AT_TILE;
    for (int k0 = 0; k0 < a.T; k0 += AT_TILE)
    {
        __syncthreads();                     // previous tile fully consumed
        load_tile(Ks, AT_PITCH, K, a.d, a.T, k0);
        load_tile(Vs, AT_PITCH, V, a.d, a.T, k0);
        __syncthreads();
        float s[8];
#pragma unroll
        for (int i = 0; i < 8; i++) s[i] = 0.f;
        for (int j = 0; j < a.d; j++)
        {
            const float kv = Ks[j * AT_PITCH + lane];
            const float4 qa = *reinterpret_cast<const float4*>(&Qs[j * AT_TILE + warp * 8]);
            const float4 qb = *reinterpret_cast<const float4*>(&Qs[j * AT_TILE + warp * 8 + 4]);
            s[0] += qa.x * kv; s[1] += qa.y * kv; s[2] += qa.z * kv; s[3] += qa.w * kv;
            s[4] += qb.x * kv; s[5] += qb.y * kv; s[6] += qb.z * kv; s[7] += qb.w * kv;
        }
        const bool keyOk = k0 + lane < a.T;
#pragma unroll
        for (int i = 0; i < 8; i++)
        {
            const float sc = keyOk ? s[i] * a.scale : NEG_BIG;
            const float mNew = fmaxf(m[i], warp_max(sc));
            const float p = keyOk ? expf(sc - mNew) : 0.f;
            const float alpha = expf(m[i] - mNew);
            l[i] = l[i] * alpha + warp_sum(p);
            m[i] = mNew;
#pragma unroll
            for (int jj = 0; jj < JJ; jj++) acc[i][jj] *= alpha;
            P[i * AT_TILE + lane] = p;
        }
        __syncwarp();
        for (int kk = 0; kk < AT_TILE; kk++)
        {
#pragma unroll
            for (int jj = 0; jj < JJ; jj++)
            {
                const int j = lane + 32 * jj;
                const float vv = j < a.d ? Vs[j * AT_PITCH + kk] : 0.f;
#pragma unroll
                for (int i = 0; i < 8; i++) acc[i][jj] += P[i * AT_TILE + kk] * vv;
            }
        }
        __syncwarp();
    }
    // Normalise, stage through Qs (each warp only ever touched its own 8 query columns) and write
    // whole 32-token rows so the stores are coalesced.
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 8; i++)
    {
        const int qi = warp * 8 + i;
        const float inv = 1.f / l[i];
#pragma unroll
        for (int jj = 0; jj < JJ; jj++)
        {
            const int j = lane + 32 * jj;
            if (j < a.d) Qs[j * AT_TILE + qi] = acc[i][jj] * inv;
        }
        if (lane == 0 && q0 + qi < a.T) lse[((i64)n * a.H + h) * a.T + q0 + qi] = m[i] + logf(l[i]);
    }
    __syncthreads();
    float* O = out + ((i64)n * a.H * a.d + (i64)h * a.d) * a.T;
    for (int e = threadIdx.x; e < a.d * AT_TILE; e += blockDim.x)
    {
        const int j = e / AT_TILE, t = e - j * AT_TILE;
        if (q0 + t < a.T) O[(i64)j * a.T + q0 + t] = Qs[j * AT_TILE + t];
    }
}

// out (N, C, T), lse (N·H, T) from qkv (N, 3C, T); d ≤ 64.
extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_fwd_d64(const float* __restrict__ qkv, float* __restrict__ out,
                                                                     float* __restrict__ lse, AttnGeom a)
{ attn_fwd_body<2>(qkv, out, lse, a); }

// Same for 64 < d ≤ 128.
extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_fwd_d128(const float* __restrict__ qkv, float* __restrict__ out,
                                                                      float* __restrict__ lse, AttnGeom a)
{ attn_fwd_body<4>(qkv, out, lse, a); }

// ---- backward ----------------------------------------------------------------------------------
// D (N·H, T) = Σ_j dout·out per token (the softmax-backward row term). One thread per (n·h, t).
extern "C" __global__ void attn_bwd_dot(const float* __restrict__ out, const float* __restrict__ dout,
                                        float* __restrict__ D, int N, AttnGeom a)
{
    const i64 total = (i64)N * a.H * a.T;
    for (i64 i = global_tid(); i < total; i += grid_stride())
    {
        const i64 nh = i / a.T; const int t = (int)(i - nh * a.T);
        const i64 base = nh * a.d * a.T + t;     // (n, h·d + j, t) with nh = n·H + h
        float s = 0.f;
        for (int j = 0; j < a.d; j++) s += out[base + (i64)j * a.T] * dout[base + (i64)j * a.T];
        D[i] = s;
    }
}

// dK, dV for a block of 32 keys, looping over all query tiles; accumulates into dqkv's k and v rows.
// grid (ceil(T/32), H, N), block 128, dynamic smem (d·(2·32 + 2·33) + 2·4·8·32) floats.
template <int JJ>
__device__ __forceinline__ void attn_bwd_kv_body(const float* qkv, const float* lse, const float* D,
                                                 const float* dout, float* dqkv, AttnGeom a)
{
    DDSM_DYNAMIC_SMEM(sm);
    float* Ks = sm;                          // (d, 32) this block's keys
    float* Vs = Ks + a.d * AT_TILE;          // (d, 32)
    float* Qs = Vs + a.d * AT_TILE;          // (d, 33) query tile
    float* Os = Qs + a.d * AT_PITCH;         // (d, 33) dout tile
    float* Ps = Os + a.d * AT_PITCH;         // (4, 8 keys, 32 queries)
    float* Ss = Ps + 4 * 8 * AT_TILE;        // (4, 8 keys, 32 queries) dS
    const int n = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * AT_TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float* Q = head_q(qkv, n, h, a);
    const float* K = Q + (i64)a.d * a.T;
    const float* V = K + (i64)a.d * a.T;
    const float* dO = dout + ((i64)n * a.H * a.d + (i64)h * a.d) * a.T;
    const float* lseRow = lse + ((i64)n * a.H + h) * a.T;
    const float* DRow = D + ((i64)n * a.H + h) * a.T;
    load_tile(Ks, AT_TILE, K, a.d, a.T, k0);
    load_tile(Vs, AT_TILE, V, a.d, a.T, k0);

    float dK[8][JJ], dV[8][JJ];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int jj = 0; jj < JJ; jj++) { dK[i][jj] = 0.f; dV[i][jj] = 0.f; }
    float* P = Ps + warp * 8 * AT_TILE;
    float* dS = Ss + warp * 8 * AT_TILE;
    bool keyOk[8];
#pragma unroll
    for (int i = 0; i < 8; i++) keyOk[i] = k0 + warp * 8 + i < a.T;

    for (int q0 = 0; q0 < a.T; q0 += AT_TILE)
    {
        __syncthreads();
        load_tile(Qs, AT_PITCH, Q, a.d, a.T, q0);
        load_tile(Os, AT_PITCH, dO, a.d, a.T, q0);
        __syncthreads();
        const bool qOk = q0 + lane < a.T;
        const float lq = qOk ? lseRow[q0 + lane] : 0.f, Dq = qOk ? DRow[q0 + lane] : 0.f;
        float s[8], dp[8];
#pragma unroll
        for (int i = 0; i < 8; i++) { s[i] = 0.f; dp[i] = 0.f; }
        for (int j = 0; j < a.d; j++)
        {
            const float qv = Qs[j * AT_PITCH + lane], ov = Os[j * AT_PITCH + lane];
            const float4 ka = *reinterpret_cast<const float4*>(&Ks[j * AT_TILE + warp * 8]);
            const float4 kb = *reinterpret_cast<const float4*>(&Ks[j * AT_TILE + warp * 8 + 4]);
            const float4 va = *reinterpret_cast<const float4*>(&Vs[j * AT_TILE + warp * 8]);
            const float4 vb = *reinterpret_cast<const float4*>(&Vs[j * AT_TILE + warp * 8 + 4]);
            s[0] += qv * ka.x; s[1] += qv * ka.y; s[2] += qv * ka.z; s[3] += qv * ka.w;
            s[4] += qv * kb.x; s[5] += qv * kb.y; s[6] += qv * kb.z; s[7] += qv * kb.w;
            dp[0] += ov * va.x; dp[1] += ov * va.y; dp[2] += ov * va.z; dp[3] += ov * va.w;
            dp[4] += ov * vb.x; dp[5] += ov * vb.y; dp[6] += ov * vb.z; dp[7] += ov * vb.w;
        }
#pragma unroll
        for (int i = 0; i < 8; i++)
        {
            const float p = (qOk && keyOk[i]) ? expf(s[i] * a.scale - lq) : 0.f;
            P[i * AT_TILE + lane] = p;
            dS[i * AT_TILE + lane] = p * (dp[i] - Dq);
        }
        __syncwarp();
        for (int qq = 0; qq < AT_TILE; qq++)
        {
#pragma unroll
            for (int jj = 0; jj < JJ; jj++)
            {
                const int j = lane + 32 * jj;
                const float ov = j < a.d ? Os[j * AT_PITCH + qq] : 0.f;
                const float qv = j < a.d ? Qs[j * AT_PITCH + qq] : 0.f;
#pragma unroll
                for (int i = 0; i < 8; i++)
                {
                    dV[i][jj] += P[i * AT_TILE + qq] * ov;
                    dK[i][jj] += dS[i * AT_TILE + qq] * qv;
                }
            }
        }
        __syncwarp();
    }
    // Stage in Ks/Vs (no longer needed) and accumulate whole token rows, coalesced.
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int jj = 0; jj < JJ; jj++)
        {
            const int j = lane + 32 * jj;
            if (j < a.d)
            {
                Ks[j * AT_TILE + warp * 8 + i] = dK[i][jj] * a.scale;
                Vs[j * AT_TILE + warp * 8 + i] = dV[i][jj];
            }
        }
    __syncthreads();
    float* dKg = dqkv + ((i64)n * 3 * a.H * a.d + (i64)h * 3 * a.d + a.d) * a.T;
    float* dVg = dKg + (i64)a.d * a.T;
    for (int e = threadIdx.x; e < a.d * AT_TILE; e += blockDim.x)
    {
        const int j = e / AT_TILE, t = e - j * AT_TILE;
        if (k0 + t < a.T)
        {
            dKg[(i64)j * a.T + k0 + t] += Ks[j * AT_TILE + t];
            dVg[(i64)j * a.T + k0 + t] += Vs[j * AT_TILE + t];
        }
    }
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_bwd_kv_d64(const float* __restrict__ qkv, const float* __restrict__ lse,
    const float* __restrict__ D, const float* __restrict__ dout, float* __restrict__ dqkv, AttnGeom a)
{ attn_bwd_kv_body<2>(qkv, lse, D, dout, dqkv, a); }

extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_bwd_kv_d128(const float* __restrict__ qkv, const float* __restrict__ lse,
    const float* __restrict__ D, const float* __restrict__ dout, float* __restrict__ dqkv, AttnGeom a)
{ attn_bwd_kv_body<4>(qkv, lse, D, dout, dqkv, a); }

// dQ for a block of 32 queries, looping over all key tiles; accumulates into dqkv's q rows.
// grid (ceil(T/32), H, N), block 128, dynamic smem (d·(2·32 + 2·33) + 4·8·32) floats.
template <int JJ>
__device__ __forceinline__ void attn_bwd_q_body(const float* qkv, const float* lse, const float* D,
                                                const float* dout, float* dqkv, AttnGeom a)
{
    DDSM_DYNAMIC_SMEM(sm);
    float* Qs = sm;                          // (d, 32) this block's queries
    float* Os = Qs + a.d * AT_TILE;          // (d, 32) their dout
    float* Ks = Os + a.d * AT_TILE;          // (d, 33) key tile
    float* Vs = Ks + a.d * AT_PITCH;         // (d, 33) value tile
    float* Ss = Vs + a.d * AT_PITCH;         // (4, 8 queries, 32 keys) dS
    const int n = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * AT_TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float* Q = head_q(qkv, n, h, a);
    const float* K = Q + (i64)a.d * a.T;
    const float* V = K + (i64)a.d * a.T;
    const float* dO = dout + ((i64)n * a.H * a.d + (i64)h * a.d) * a.T;
    const float* lseRow = lse + ((i64)n * a.H + h) * a.T;
    const float* DRow = D + ((i64)n * a.H + h) * a.T;
    load_tile(Qs, AT_TILE, Q, a.d, a.T, q0);
    load_tile(Os, AT_TILE, dO, a.d, a.T, q0);

    float lq[8], Dq[8], dQ[8][JJ];
#pragma unroll
    for (int i = 0; i < 8; i++)
    {
        const int t = q0 + warp * 8 + i;
        lq[i] = t < a.T ? lseRow[t] : 0.f;
        Dq[i] = t < a.T ? DRow[t] : 0.f;
#pragma unroll
        for (int jj = 0; jj < JJ; jj++) dQ[i][jj] = 0.f;
    }
    float* dS = Ss + warp * 8 * AT_TILE;
    for (int k0 = 0; k0 < a.T; k0 += AT_TILE)
    {
        __syncthreads();
        load_tile(Ks, AT_PITCH, K, a.d, a.T, k0);
        load_tile(Vs, AT_PITCH, V, a.d, a.T, k0);
        __syncthreads();
        float s[8], dp[8];
#pragma unroll
        for (int i = 0; i < 8; i++) { s[i] = 0.f; dp[i] = 0.f; }
        for (int j = 0; j < a.d; j++)
        {
            const float kv = Ks[j * AT_PITCH + lane], vv = Vs[j * AT_PITCH + lane];
            const float4 qa = *reinterpret_cast<const float4*>(&Qs[j * AT_TILE + warp * 8]);
            const float4 qb = *reinterpret_cast<const float4*>(&Qs[j * AT_TILE + warp * 8 + 4]);
            const float4 oa = *reinterpret_cast<const float4*>(&Os[j * AT_TILE + warp * 8]);
            const float4 ob = *reinterpret_cast<const float4*>(&Os[j * AT_TILE + warp * 8 + 4]);
            s[0] += qa.x * kv; s[1] += qa.y * kv; s[2] += qa.z * kv; s[3] += qa.w * kv;
            s[4] += qb.x * kv; s[5] += qb.y * kv; s[6] += qb.z * kv; s[7] += qb.w * kv;
            dp[0] += oa.x * vv; dp[1] += oa.y * vv; dp[2] += oa.z * vv; dp[3] += oa.w * vv;
            dp[4] += ob.x * vv; dp[5] += ob.y * vv; dp[6] += ob.z * vv; dp[7] += ob.w * vv;
        }
        const bool keyOk = k0 + lane < a.T;
#pragma unroll
        for (int i = 0; i < 8; i++)
        {
            const bool qOk = q0 + warp * 8 + i < a.T;
            const float p = (qOk && keyOk) ? expf(s[i] * a.scale - lq[i]) : 0.f;
            dS[i * AT_TILE + lane] = p * (dp[i] - Dq[i]);
        }
        __syncwarp();
        for (int kk = 0; kk < AT_TILE; kk++)
        {
#pragma unroll
            for (int jj = 0; jj < JJ; jj++)
            {
                const int j = lane + 32 * jj;
                const float kv = j < a.d ? Ks[j * AT_PITCH + kk] : 0.f;
#pragma unroll
                for (int i = 0; i < 8; i++) dQ[i][jj] += dS[i * AT_TILE + kk] * kv;
            }
        }
        __syncwarp();
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int jj = 0; jj < JJ; jj++)
        {
            const int j = lane + 32 * jj;
            if (j < a.d) Qs[j * AT_TILE + warp * 8 + i] = dQ[i][jj] * a.scale;
        }
    __syncthreads();
    float* dQg = dqkv + ((i64)n * 3 * a.H * a.d + (i64)h * 3 * a.d) * a.T;
    for (int e = threadIdx.x; e < a.d * AT_TILE; e += blockDim.x)
    {
        const int j = e / AT_TILE, t = e - j * AT_TILE;
        if (q0 + t < a.T) dQg[(i64)j * a.T + q0 + t] += Qs[j * AT_TILE + t];
    }
}

extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_bwd_q_d64(const float* __restrict__ qkv, const float* __restrict__ lse,
    const float* __restrict__ D, const float* __restrict__ dout, float* __restrict__ dqkv, AttnGeom a)
{ attn_bwd_q_body<2>(qkv, lse, D, dout, dqkv, a); }

extern "C" __global__ void __launch_bounds__(AT_THREADS) attn_bwd_q_d128(const float* __restrict__ qkv, const float* __restrict__ lse,
    const float* __restrict__ D, const float* __restrict__ dout, float* __restrict__ dqkv, AttnGeom a)
{ attn_bwd_q_body<4>(qkv, lse, D, dout, dqkv, a); }
