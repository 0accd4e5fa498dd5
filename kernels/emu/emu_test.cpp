// emu_test.cpp — runs every kernel family of kernels/*.cu on the CPU emulator (emu.h) and checks it
// against float64 references: forward values, and gradients against the analytic adjoint or central
// differences. Launch geometry mirrors src/Ddsm.Engine/Cuda/CudaBackend.*.cs. Sizes are ragged (not
// multiples of the tiles), weights are slimmed (active prefix of a larger stored tensor) and gradient
// buffers start non-zero (backward must accumulate). Exit status = number of failed checks.
// Build: clang++-14 -std=c++20 -O1 -pthread -I kernels kernels/emu/emu_test.cpp (see .ci/kernels-check).
#include <cstdio>
#include <functional>
#include <string>
#include "emu.h"
#include "../elementwise.cu"
#include "../reduce.cu"
#include "../adam.cu"
#include "../gemm.cu"
#include "../conv.cu"
#include "../groupnorm.cu"
#include "../attention.cu"

using vf = std::vector<float>;
using vd = std::vector<double>;
static int failures = 0, checks = 0;

struct Rng
{
    u64 s;
    explicit Rng(u64 seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
    u64 next() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
    double uni() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
    float normal() { return (float)(std::sqrt(-2 * std::log(1 - uni())) * std::cos(6.283185307179586 * uni())); }
    vf vec(size_t n, float std = 1) { vf v(n); for (auto& x : v) x = normal() * std; return v; }
    int below(int n) { return (int)(uni() * n); }
};

static vd D(const vf& a) { return vd(a.begin(), a.end()); }

static void close(const std::string& what, const vf& got, const vd& want, double atol, double rtol)
{
    checks++;
    if (got.size() != want.size()) { printf("FAIL %s: size %zu vs %zu\n", what.c_str(), got.size(), want.size()); failures++; return; }
    double worst = -1e300; size_t wi = 0;
    for (size_t i = 0; i < got.size(); i++)
    {
        double ex = std::fabs(got[i] - want[i]) - (atol + rtol * std::fabs(want[i]));
        if (std::isnan(got[i])) ex = 1e300;
        if (ex > worst) { worst = ex; wi = i; }
    }
    if (worst > 0) { failures++; printf("FAIL %s: [%zu] got %.9g want %.9g\n", what.c_str(), wi, got[wi], want[wi]); }
    else printf("ok   %s (%zu elements)\n", what.c_str(), got.size());
}

static double relerr(const vf& got, const vd& want)
{
    double n = 0, d = 0;
    for (size_t i = 0; i < got.size(); i++) { n += (got[i] - want[i]) * (got[i] - want[i]); d += want[i] * want[i]; }
    return std::sqrt(n / std::max(d, 1e-300));
}

static void expect(const std::string& what, bool ok, const std::string& detail = "")
{
    checks++;
    if (!ok) { failures++; printf("FAIL %s %s\n", what.c_str(), detail.c_str()); }
    else printf("ok   %s\n", what.c_str());
}

static vf minus(const vf& a, const vf& b) { vf r(a.size()); for (size_t i = 0; i < a.size(); i++) r[i] = a[i] - b[i]; return r; }
static unsigned blocks(long long n) { return (unsigned)std::clamp<long long>((n + 255) / 256, 1, 8); }   // few blocks: grid-stride paths run
static unsigned ceil_div(long long n, int t) { return (unsigned)((n + t - 1) / t); }

// ---- gemm ----------------------------------------------------------------------------------------
static void test_gemm(bool ta, bool tb)
{
    Rng r(11 + ta * 2 + tb);
    int m = 70, n = 45, k = 33, batch = 2;
    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
    i64 sA = (i64)(ta ? k : m) * lda + 7, sB = (i64)(tb ? n : k) * ldb + 1, sC = (i64)m * ldc + 4, oA = 11, oB = 5, oC = 9;
    vf a = r.vec(oA + batch * sA), b = r.vec(oB + batch * sB), c0 = r.vec(oC + batch * sC);
    float alpha = 1.5f, beta = 0.5f;
    vd want = D(c0);
    for (int z = 0; z < batch; z++)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)a[oA + z * sA + (ta ? (i64)p * lda + i : (i64)i * lda + p)] * b[oB + z * sB + (tb ? (i64)j * ldb + p : (i64)p * ldb + j)];
                i64 ci = oC + z * sC + (i64)i * ldc + j;
                want[ci] = alpha * s + beta * c0[ci];
            }
    for (int tf32 = 0; tf32 < 2; tf32++)
    {
        vf c = c0;
        emu_launch({ceil_div(n, 64), ceil_div(m, 64), (unsigned)batch}, {128}, 0, [&] {
            (tf32 ? gemm_tf32 : gemm_f32)(ta, tb, m, n, k, alpha, beta, a.data(), oA, lda, sA, b.data(), oB, ldb, sB, c.data(), oC, ldc, sC);
        });
        std::string name = std::string("gemm ta=") + (ta ? "1" : "0") + " tb=" + (tb ? "1" : "0");
        if (!tf32) close(name + " f32", c, want, 1e-4, 1e-4);
        else { double e = relerr(c, want); expect(name + " tf32 rel err " + std::to_string(e), e < 3e-3 && e > 0); }
    }
}

// ---- conv ----------------------------------------------------------------------------------------
static void test_conv(int K, int S, int P, int Cin = 5, int Cout = 67)
{
    Rng r(100 + K * 10 + S + Cin);
    int N = 2, CinMax = Cin + 2, CoutMax = Cout + 3, H = 9, W = 11;
    ConvGeom g{Cin, H, W, Cout, K, S, P, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1, (i64)CinMax * K * K};
    int KK = K * K, Ho = g.Ho, Wo = g.Wo;
    vf x = r.vec(N * Cin * H * W), w = r.vec(CoutMax * CinMax * KK, 0.3f), bias = r.vec(CoutMax), dy = r.vec(N * Cout * Ho * Wo);
    vd y(N * Cout * Ho * Wo), dx(x.size()), dw(w.size()), db(bias.size());
    for (int n = 0; n < N; n++) for (int co = 0; co < Cout; co++) for (int ho = 0; ho < Ho; ho++) for (int wo = 0; wo < Wo; wo++)
    {
        int yi = ((n * Cout + co) * Ho + ho) * Wo + wo;
        double s = bias[co], gg = dy[yi];
        db[co] += gg;
        for (int ci = 0; ci < Cin; ci++) for (int kh = 0; kh < K; kh++) for (int kw = 0; kw < K; kw++)
        {
            int h = ho * S - P + kh, ww = wo * S - P + kw;
            if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
            int xi = ((n * Cin + ci) * H + h) * W + ww, wi = (co * CinMax + ci) * KK + kh * K + kw;
            s += (double)x[xi] * w[wi]; dx[xi] += gg * w[wi]; dw[wi] += gg * x[xi];
        }
        y[yi] = s;
    }
    std::string tag = "conv K" + std::to_string(K) + " S" + std::to_string(S) + " P" + std::to_string(P) +
                      " " + std::to_string(Cin) + "->" + std::to_string(Cout);
    for (int tf32 = 0; tf32 < 2; tf32++)
    {
        vf yg(y.size(), std::nanf(""));
        emu_launch({ceil_div((i64)N * Ho * Wo, 64), ceil_div(Cout, 64), 1}, {128}, 0, [&] {
            (tf32 ? conv_fwd_tf32 : conv_fwd_f32)(x.data(), w.data(), bias.data(), yg.data(), N, g);
        });
        if (!tf32) close(tag + " forward f32", yg, y, 1e-4, 1e-4);
        else { double e = relerr(yg, y); expect(tag + " forward tf32 rel err " + std::to_string(e), e < 3e-3 && e > 0); }
    }
    // backward data, accumulating
    vf dx0 = r.vec(x.size()), dxg = dx0;
    emu_launch({ceil_div((i64)N * H * W, 64), ceil_div(Cin, 64), 1}, {128}, 0, [&] { conv_bwd_data_f32(dy.data(), w.data(), dxg.data(), N, g); });
    close(tag + " dx (accumulated)", minus(dxg, dx0), dx, 2e-4, 1e-4);
    // backward weight with forced splits (chunk 48) + reduce, accumulating, prefix only
    int cols = Cin * KK; i64 kTot = (i64)N * Ho * Wo; int chunk = 48; int splits = (int)((kTot + chunk - 1) / chunk);
    vf partial((size_t)splits * Cout * cols, std::nanf("")), dw0 = r.vec(w.size()), dwg = dw0, db0 = r.vec(bias.size()), dbg = db0;
    emu_launch({ceil_div(cols, 64), ceil_div(Cout, 64), (unsigned)splits}, {128}, 0, [&] {
        conv_bwd_weight_f32(x.data(), dy.data(), partial.data(), N, g, chunk);
    });
    emu_launch({blocks((i64)Cout * cols)}, {256}, 0, [&] { conv_wgrad_reduce(partial.data(), dwg.data(), splits, Cout, cols, g.wstride); });
    close(tag + " dw (accumulated, " + std::to_string(splits) + " splits)", minus(dwg, dw0), dw, 5e-4, 1e-4);
    bool untouched = true;
    for (size_t i = 0; i < w.size(); i++)
    {
        int co = (int)(i / (CinMax * KK)), ci = (int)(i / KK % CinMax);
        if ((co >= Cout || ci >= Cin) && dwg[i] != dw0[i]) untouched = false;
    }
    expect(tag + " dw outside the active prefix untouched", untouched);
    emu_launch({(unsigned)Cout}, {256}, 0, [&] { conv_bias_grad(dy.data(), dbg.data(), N, Cout, Ho * Wo); });
    close(tag + " dbias (accumulated)", minus(dbg, db0), db, 2e-4, 1e-4);
    // TF32 backward paths run too (looser)
    vf dxt = dx0;
    emu_launch({ceil_div((i64)N * H * W, 64), ceil_div(Cin, 64), 1}, {128}, 0, [&] { conv_bwd_data_tf32(dy.data(), w.data(), dxt.data(), N, g); });
    expect(tag + " dx tf32", relerr(minus(dxt, dx0), dx) < 3e-3);
    vf pt = partial, dwt = dw0;
    emu_launch({ceil_div(cols, 64), ceil_div(Cout, 64), (unsigned)splits}, {128}, 0, [&] { conv_bwd_weight_tf32(x.data(), dy.data(), pt.data(), N, g, chunk); });
    emu_launch({blocks((i64)Cout * cols)}, {256}, 0, [&] { conv_wgrad_reduce(pt.data(), dwt.data(), splits, Cout, cols, g.wstride); });
    vf dwd = minus(dwt, dw0); vd dwr = dw;
    expect(tag + " dw tf32", relerr(dwd, dwr) < 3e-3);
}

// ---- groupnorm -----------------------------------------------------------------------------------
struct GnCase { int N, C, S, G, CMax; float eps; int silu; };
static vd gn_ref(const GnCase& d, const std::vector<vd>& v)
{
    const vd &x = v[0], &ga = v[1], &be = v[2], &sc = v[3], &sh = v[4];
    int cpg = d.C / d.G; vd y(x.size());
    for (int n = 0; n < d.N; n++) for (int g = 0; g < d.G; g++)
    {
        int b0 = (n * d.C + g * cpg) * d.S, cnt = cpg * d.S;
        double mu = 0, var = 0;
        for (int e = 0; e < cnt; e++) mu += x[b0 + e];
        mu /= cnt;
        for (int e = 0; e < cnt; e++) var += (x[b0 + e] - mu) * (x[b0 + e] - mu);
        var /= cnt;
        double rs = 1 / std::sqrt(var + d.eps);
        for (int e = 0; e < cnt; e++)
        {
            int c = g * cpg + e / d.S;
            double o = ((x[b0 + e] - mu) * rs * ga[c] + be[c]) * (1 + sc[n * d.C + c]) + sh[n * d.C + c];
            y[b0 + e] = d.silu ? o / (1 + std::exp(-o)) : o;
        }
    }
    return y;
}

static vd fd(const std::function<vd(std::vector<vd>&)>& f, std::vector<vd>& ins, int which, const vd& g, const std::vector<int>& idx)
{
    vd out;
    for (int i : idx)
    {
        double x0 = ins[which][i], h = 1e-6 * std::max(1.0, std::fabs(x0));
        ins[which][i] = x0 + h; vd lp = f(ins);
        ins[which][i] = x0 - h; vd lm = f(ins);
        ins[which][i] = x0;
        double s = 0; for (size_t j = 0; j < g.size(); j++) s += g[j] * (lp[j] - lm[j]);
        out.push_back(s / (2 * h));
    }
    return out;
}

static void test_groupnorm(int silu)
{
    Rng r(300 + silu);
    GnCase d{2, 8, 300, 4, 12, 1e-5f, silu};   // S = 300 > 256 threads: strided loops run
    vf x = r.vec(d.N * d.C * d.S, 2), ga = r.vec(d.CMax), be = r.vec(d.CMax), sc = r.vec(d.N * d.C, 0.3f), sh = r.vec(d.N * d.C, 0.3f);
    for (auto& v : x) v += 0.5f;
    std::vector<vd> ins{D(x), vd(ga.begin(), ga.begin() + d.C), vd(be.begin(), be.begin() + d.C), D(sc), D(sh)};
    vd y = gn_ref(d, ins);
    vf yg(x.size()), mean(d.N * d.G), rstd(d.N * d.G);
    emu_launch({(unsigned)d.G, (unsigned)d.N, 1}, {256}, 0, [&] {
        groupnorm_fwd(x.data(), ga.data(), be.data(), sc.data(), sh.data(), yg.data(), mean.data(), rstd.data(), d.C, d.S, d.G, d.eps, d.silu);
    });
    std::string tag = std::string("groupnorm silu=") + (silu ? "1" : "0");
    close(tag + " forward", yg, y, 1e-4, 1e-4);
    vf g = r.vec(x.size());
    std::vector<vf> init{r.vec(x.size()), r.vec(d.CMax), r.vec(d.CMax), r.vec(sc.size()), r.vec(sh.size())};
    std::vector<vf> gr = init;
    vf part(2 * d.N * d.C, std::nanf(""));
    emu_launch({(unsigned)d.G, (unsigned)d.N, 1}, {256}, 0, [&] {
        groupnorm_bwd(x.data(), ga.data(), be.data(), sc.data(), sh.data(), mean.data(), rstd.data(), g.data(),
                      gr[0].data(), gr[3].data(), gr[4].data(), part.data(), part.data() + d.N * d.C, d.C, d.S, d.G, d.silu);
    });
    emu_launch({blocks(d.C)}, {256}, 0, [&] { groupnorm_param_grad(part.data(), part.data() + d.N * d.C, gr[1].data(), gr[2].data(), d.N, d.C); });
    const char* names[] = {"dx", "dgamma", "dbeta", "dscale", "dshift"};
    auto f = [&](std::vector<vd>& v) { return gn_ref(d, v); };
    for (int i = 0; i < 5; i++)
    {
        int len = (int)ins[i].size();
        std::vector<int> idx;
        for (int j = 0; j < std::min(len, 60); j++) idx.push_back(len <= 60 ? j : r.below(len));
        vd want = fd(f, ins, i, D(g), idx);
        vf got; for (int j : idx) got.push_back(gr[i][j] - init[i][j]);
        close(tag + " " + names[i] + " (accumulated, vs finite differences)", got, want, 1e-3, 1e-3);
    }
    bool untouched = true;
    for (int c = d.C; c < d.CMax; c++) if (gr[1][c] != init[1][c] || gr[2][c] != init[2][c]) untouched = false;
    expect(tag + " dgamma/dbeta outside the prefix untouched", untouched);
}

// ---- attention -----------------------------------------------------------------------------------
static vd attn_ref(int N, int H, int hd, int T, const vd& qkv, vd* lse)
{
    int C = H * hd; vd o((size_t)N * C * T); double scale = 1 / std::sqrt((double)hd);
    for (int n = 0; n < N; n++) for (int h = 0; h < H; h++)
    {
        i64 qb = ((i64)n * 3 * C + h * 3 * hd) * T, kb = qb + (i64)hd * T, vb = kb + (i64)hd * T;
        for (int t = 0; t < T; t++)
        {
            vd s(T); double mx = -1e300, z = 0;
            for (int u = 0; u < T; u++) { double a = 0; for (int j = 0; j < hd; j++) a += qkv[qb + j * T + t] * qkv[kb + j * T + u]; s[u] = a * scale; mx = std::max(mx, s[u]); }
            for (int u = 0; u < T; u++) { s[u] = std::exp(s[u] - mx); z += s[u]; }
            if (lse) (*lse)[(n * H + h) * T + t] = mx + std::log(z);
            for (int j = 0; j < hd; j++) { double a = 0; for (int u = 0; u < T; u++) a += s[u] / z * qkv[vb + j * T + u]; o[((i64)n * C + h * hd + j) * T + t] = a; }
        }
    }
    return o;
}

static void test_attention(int hd, int T)
{
    Rng r(400 + hd + T);
    int N = 2, H = 2, C = H * hd;
    AttnGeom a{H, hd, T, 1.f / std::sqrt((float)hd)};
    vf qkv = r.vec((size_t)N * 3 * C * T);
    vd lse(N * H * T); vd o = attn_ref(N, H, hd, T, D(qkv), &lse);
    vf og(o.size(), std::nanf("")), lg(lse.size(), std::nanf(""));
    bool big = hd > 64;
    size_t smF = (size_t)(hd * (32 + 2 * 33) + 4 * 8 * 32) * 4;
    dim3 grid{ceil_div(T, 32), (unsigned)H, (unsigned)N};
    emu_launch(grid, {128}, smF, [&] { (big ? attn_fwd_d128 : attn_fwd_d64)(qkv.data(), og.data(), lg.data(), a); });
    std::string tag = "attention d" + std::to_string(hd) + " T" + std::to_string(T);
    close(tag + " forward", og, o, 1e-4, 1e-3);
    close(tag + " lse", lg, lse, 1e-4, 1e-4);
    vf g = r.vec(o.size()), dq0 = r.vec(qkv.size()), dq = dq0, Dv(N * H * T, std::nanf(""));
    emu_launch({blocks((i64)N * H * T)}, {256}, 0, [&] { attn_bwd_dot(og.data(), g.data(), Dv.data(), N, a); });
    size_t smKv = (size_t)(hd * (2 * 32 + 2 * 33) + 2 * 4 * 8 * 32) * 4, smQ = (size_t)(hd * (2 * 32 + 2 * 33) + 4 * 8 * 32) * 4;
    emu_launch(grid, {128}, smKv, [&] { (big ? attn_bwd_kv_d128 : attn_bwd_kv_d64)(qkv.data(), lg.data(), Dv.data(), g.data(), dq.data(), a); });
    emu_launch(grid, {128}, smQ, [&] { (big ? attn_bwd_q_d128 : attn_bwd_q_d64)(qkv.data(), lg.data(), Dv.data(), g.data(), dq.data(), a); });
    std::vector<int> idx;
    for (int i = 0; i < 80; i++) idx.push_back(r.below((int)qkv.size()));
    std::vector<vd> ins{D(qkv)};
    vd want = fd([&](std::vector<vd>& v) { return attn_ref(N, H, hd, T, v[0], nullptr); }, ins, 0, D(g), idx);
    vf got; for (int i : idx) got.push_back(dq[i] - dq0[i]);
    close(tag + " dqkv (accumulated, vs finite differences)", got, want, 1e-3, 1e-3);
}

// ---- element-wise, reductions, adam --------------------------------------------------------------
static u32 rng_hash(u64 seed, u64 index)   // Rng.Hash in C#, transcribed independently
{
    u64 z = seed ^ (index * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (u32)(z >> 32);
}

static void test_elementwise()
{
    Rng r(500);
    // copy_blocks with accumulate, rows > grid.y handled by striding
    {
        int rows = 7; i64 len = 300, ss = 350, ds = 320, so = 3, dof = 5;
        vf src = r.vec(so + rows * ss), dst0 = r.vec(dof + rows * ds), dst = dst0; vd want = D(dst0);
        for (int rr = 0; rr < rows; rr++) for (i64 j = 0; j < len; j++) want[dof + rr * ds + j] += src[so + rr * ss + j];
        emu_launch({2, 3, 1}, {256}, 0, [&] { copy_blocks(src.data(), so, ss, dst.data(), dof, ds, rows, len, 1); });
        close("copy_blocks accumulate", dst, want, 1e-6, 1e-6);
    }
    // avgpool forward on an odd size: the last row and column are not pooled
    {
        int nc = 3, h = 5, w = 7, ho = h / 2, wo = w / 2;
        vf xin = r.vec(nc * h * w), y(nc * ho * wo); vd wy(y.size());
        for (int p = 0; p < nc; p++) for (int i = 0; i < ho; i++) for (int j = 0; j < wo; j++)
            for (int u = 0; u < 2; u++) for (int v = 0; v < 2; v++)
                wy[(p * ho + i) * wo + j] += 0.25 * xin[(p * h + 2 * i + u) * w + 2 * j + v];
        emu_launch({blocks(y.size())}, {256}, 0, [&] { avgpool2x_fwd(xin.data(), y.data(), nc, h, w); });
        close("avgpool2x forward (odd size)", y, wy, 1e-6, 1e-6);
    }
    // dropout: the mask is the C# hash bit for bit
    {
        i64 n = 5000; float p = 0.3f; u64 seed = 0xC0FFEE;
        u32 thr = (u32)std::min(4294967295.0, (double)p * 4294967296.0); float keep = 1.f / (1.f - p);
        vf x = r.vec(n), y(n), m(n);
        emu_launch({blocks(n)}, {256}, 0, [&] { dropout_fwd(x.data(), y.data(), m.data(), n, thr, keep, seed); });
        bool same = true; int kept = 0;
        for (i64 i = 0; i < n; i++)
        {
            float want = rng_hash(seed, (u64)i) >= thr ? keep : 0.f;
            if (m[i] != want || y[i] != x[i] * want) same = false;
            kept += m[i] != 0;
        }
        expect("dropout mask = Rng.Hash, kept " + std::to_string(kept) + "/5000", same && kept > 3300 && kept < 3700);
    }
    // timestep embedding (odd dim)
    {
        int n = 4, dim = 33; vf t{0.f, 1.f, 250.5f, 999.f}, out(n * dim); vd want(n * dim);
        int half = dim / 2;
        for (int b = 0; b < n; b++) for (int j = 0; j < half; j++)
        {
            double f = std::exp(-std::log(10000.0) * j / half), a = t[b] * f;
            want[b * dim + j] = (float)std::cos(a); want[b * dim + half + j] = (float)std::sin(a);
        }
        emu_launch({blocks(n * dim)}, {256}, 0, [&] { timestep_embedding(t.data(), out.data(), n, dim, 10000.f); });
        close("timestep embedding", out, want, 1e-7, 0);
    }
    // unary maps (all UnaryOp codes) in place: y is x
    {
        i64 n = 700; vf x0 = r.vec(n);
        for (int op = 0; op < 4; op++)
        {
            vf x = x0; vd want(n);
            for (i64 i = 0; i < n; i++)
            {
                double v = x0[i], s = 1 / (1 + std::exp(-v));
                want[i] = op == 0 ? v * s : op == 1 ? v * v : op == 2 ? std::exp(v) : s * (1 + v * (1 - s));
            }
            emu_launch({blocks(n)}, {256}, 0, [&] { unary_fwd(op, x.data(), x.data(), n); });
            close("unary_fwd op" + std::to_string(op), x, want, 1e-5, 1e-5);
        }
    }
}

static void test_reduce_adam()
{
    Rng r(600);
    i64 n = 20011;
    vf a = r.vec(n), b = r.vec(n), res(1);
    std::vector<double> partials(1024);
    double want[3] = {0, 0, 0};
    for (i64 i = 0; i < n; i++) { want[0] += a[i]; want[1] += (double)a[i] * a[i]; want[2] += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); }
    for (int kind = 0; kind < 3; kind++)
    {
        int grid = (int)std::clamp<i64>((n + 4095) / 4096, 1, 1024);
        emu_launch({(unsigned)grid}, {256}, 0, [&] { reduce_pass1(kind, a.data(), b.data(), n, partials.data()); });
        emu_launch({1}, {256}, 0, [&] { reduce_pass2(partials.data(), grid, res.data()); });
        close("reduce kind " + std::to_string(kind), res, vd{want[kind]}, 1e-4, 1e-6);
    }
    vf p = r.vec(n), m = r.vec(n, 0.1f), v = r.vec(n), gr = r.vec(n);
    for (auto& q : v) q = q * q;
    vd wp(n), wm(n), wv(n);
    float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f, bc1 = 0.19f, bc2 = 0.002f, gs = 0.5f;
    for (i64 i = 0; i < n; i++)
    {
        double gg = (double)gr[i] * gs, mi = b1 * (double)m[i] + (1 - (double)b1) * gg, vi = b2 * (double)v[i] + (1 - (double)b2) * gg * gg;
        wm[i] = mi; wv[i] = vi; wp[i] = p[i] - lr * (mi / bc1 / (std::sqrt(vi / bc2) + eps) + wd * (double)p[i]);
    }
    emu_launch({blocks(n)}, {256}, 0, [&] { adam_step(p.data(), gr.data(), m.data(), v.data(), n, lr, b1, b2, eps, wd, 1 / bc1, 1 / bc2, gs); });
    close("adam p", p, wp, 1e-6, 1e-5); close("adam m", m, wm, 1e-7, 1e-5); close("adam v", v, wv, 1e-7, 1e-5);
}

// beta == 0 must not read the output (it may hold NaN from an uninitialised pool block).
static void test_never_read()
{
    Rng r(700);
    i64 n = 999;
    vf x = r.vec(n), y(n, std::nanf(""));
    emu_launch({blocks(n)}, {256}, 0, [&] { axpby(x.data(), y.data(), n, -2.f, 0.f); });
    vd want(n); for (i64 i = 0; i < n; i++) want[i] = -2.0 * x[i];
    close("axpby beta=0 ignores NaN in y", y, want, 0, 0);
    int m = 20, nn = 30, k = 17;
    vf a = r.vec(m * k), b = r.vec(k * nn), c(m * nn, std::nanf(""));
    emu_launch({1, 1, 1}, {128}, 0, [&] { gemm_f32(0, 0, m, nn, k, 1.f, 0.f, a.data(), 0, k, 0, b.data(), 0, nn, 0, c.data(), 0, nn, 0); });
    vd wc(m * nn);
    for (int i = 0; i < m; i++) for (int j = 0; j < nn; j++) for (int p = 0; p < k; p++) wc[i * nn + j] += (double)a[i * k + p] * b[p * nn + j];
    close("gemm beta=0 ignores NaN in C", c, wc, 1e-5, 1e-5);
}

int main()
{
    test_elementwise();
    test_reduce_adam();
    for (int ta = 0; ta < 2; ta++) for (int tb = 0; tb < 2; tb++) test_gemm(ta, tb);
    test_conv(3, 1, 1); test_conv(3, 2, 1); test_conv(1, 1, 0); test_conv(3, 1, 1, 70, 5);
    test_never_read();
    test_groupnorm(0); test_groupnorm(1);
    test_attention(16, 40); test_attention(80, 33); test_attention(64, 64);
    printf("emu: %d/%d checks passed\n", checks - failures, checks);
    return failures == 0 ? 0 : 1;
}
