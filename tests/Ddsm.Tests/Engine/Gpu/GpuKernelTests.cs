using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Engine.Ilgpu;

namespace Ddsm.Tests.Engine.Gpu;

/// <summary>
/// Direct kernel checks of the GPU backend at the contract level (no autograd), shared by every ILGPU
/// accelerator: each family against a float64 reference (or the CPU oracle), gradients against central
/// differences, slimmed prefixes, ragged sizes (not multiples of the tiles), pre-filled gradient buffers
/// (backward must ACCUMULATE), and the TF32 specialisations (close to the reference, and not silently
/// the exact path). Runtime checks (pool, OOM, graphs, threads) where the accelerator has them.
/// </summary>
public abstract class GpuKernelTests : BackendFixture
{
    protected IlgpuBackend G => (IlgpuBackend)B;
    private static CpuBackend Cpu => CpuBackend.Instance;
    private readonly List<DeviceBuffer> _bufs = new();

    [TearDown]
    public void FreeBuffers()
    {
        foreach (var b in _bufs) b.Backend.Free(b);
        _bufs.Clear();
    }

    private DeviceBuffer Up(float[] a, Backend? be = null)
    {
        be ??= B;
        var b = be.Allocate(a.Length);
        be.CopyIn(b, 0, a);
        _bufs.Add(b);
        return b;
    }

    private DeviceBuffer New(long n)
    {
        var b = B.Allocate(n);
        _bufs.Add(b);
        return b;
    }

    internal static float[] Down(DeviceBuffer b)
    {
        var a = new float[b.Length];
        b.Backend.CopyOut(b, 0, a);
        return a;
    }

    internal static float[] Rand(Rng r, long n, float std = 1f)
    {
        var a = new float[n];
        r.FillNormal(a, std);
        return a;
    }

    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();
    internal static float[] Delta(float[] after, float[] before) => after.Select((v, i) => v - before[i]).ToArray();

    private static double RelErr(float[] got, double[] want)
    {
        double num = 0, den = 0;
        for (int i = 0; i < got.Length; i++)
        {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    /// <summary>
    /// TF32 results: within 3e-3 relative (10-bit operand mantissas) and not bit-equal to exact FP32.
    /// </summary>
    private static void Tf32Close(string what, float[] got, double[] want) =>
        Assert.That(RelErr(got, want), Is.LessThan(3e-3).And.GreaterThan(0),
                    $"{what}: close, and not silently the exact path");

    // ---- GEMM ------------------------------------------------------------------------------------
    [TestCase(false, false)] [TestCase(true, false)] [TestCase(false, true)] [TestCase(true, true)]
    [Covers("gemm_f32", "gemm_tf32")]
    public void GemmBatchedTransposedOffsets(bool ta, bool tb)
    {
        var r = new Rng(101);
        int m = 70, n = 45, k = 33, batch = Small ? 2 : 3;   // m spans two 64-row tiles, n and k are ragged
        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
        long sA = (long)(ta ? k : m) * lda + 7, sB = (long)(tb ? n : k) * ldb + 1, sC = (long)m * ldc + 4;
        long oA = 11, oB = 5, oC = 9;
        var a = Rand(r, oA + batch * sA); var b = Rand(r, oB + batch * sB); var c0 = Rand(r, oC + batch * sC);
        var want = D(c0);
        const float alpha = 1.5f, beta = 0.5f;
        for (int z = 0; z < batch; z++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                        s += (double)a[oA + z * sA + (ta ? (long)p * lda + i : (long)i * lda + p)]
                           * b[oB + z * sB + (tb ? (long)j * ldb + p : (long)p * ldb + j)];
                    long ci = oC + z * sC + (long)i * ldc + j;
                    want[ci] = alpha * s + beta * c0[ci];
                }
        var desc = new GemmDesc(ta, tb, m, n, k, alpha, beta, oA, lda, oB, ldb, oC, ldc, batch, sA, sB, sC);
        foreach (bool exact in new[] { true, false })
        {
            G.ExactFp32 = exact;
            var cb = Up(c0);
            B.Gemm(desc, Up(a), Up(b), cb);
            var got = Down(cb);
            if (exact) OpCheck.AssertClose($"gemm exact ta={ta} tb={tb}", got, want, 1e-4, 1e-4);
            else Tf32Close($"gemm tf32 ta={ta} tb={tb}", got, want);
        }
    }

    // ---- convolution -----------------------------------------------------------------------------
    private static (double[] y, double[] dx, double[] dw, double[] db) ConvRef(ConvDesc d, float[] x, float[] w,
                                                                               float[] bias, float[] dy)
    {
        int kk = d.K * d.K;
        var y = new double[d.N * d.Cout * d.Ho * d.Wo];
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[bias.Length];
        for (int n = 0; n < d.N; n++)
            for (int co = 0; co < d.Cout; co++)
                for (int ho = 0; ho < d.Ho; ho++)
                    for (int wo = 0; wo < d.Wo; wo++)
                    {
                        int yi = ((n * d.Cout + co) * d.Ho + ho) * d.Wo + wo;
                        double s = bias[co], g = dy[yi];
                        db[co] += g;
                        for (int ci = 0; ci < d.Cin; ci++)
                            for (int kh = 0; kh < d.K; kh++)
                                for (int kw = 0; kw < d.K; kw++)
                                {
                                    int h = ho * d.Stride - d.Pad + kh, ww = wo * d.Stride - d.Pad + kw;
                                    if (h < 0 || h >= d.H || ww < 0 || ww >= d.W) continue;
                                    int xi = ((n * d.Cin + ci) * d.H + h) * d.W + ww;
                                    int wi = (co * d.CinMax + ci) * kk + kh * d.K + kw;
                                    s += (double)x[xi] * w[wi];
                                    dx[xi] += g * w[wi];
                                    dw[wi] += g * x[xi];
                                }
                        y[yi] = s;
                    }
        return (y, dx, dw, db);
    }

    [TestCase(3, 1, 1)] [TestCase(3, 2, 1)] [TestCase(1, 1, 0)]
    [Covers("conv_fwd_f32", "conv_bwd_data_f32", "conv_bwd_weight_f32", "conv_wgrad_reduce", "conv_bias_grad",
            "conv_fwd_tf32", "conv_bwd_data_tf32", "conv_bwd_weight_tf32")]
    public void ConvSlimmedForwardAndBackwardAccumulate(int k, int stride, int pad)
    {
        var r = new Rng(200 + (ulong)(k * 10 + stride));
        // Cout 67 spans two 64-row tiles of a 70-row weight; Cin 5 of 7 is a slimmed prefix.
        var d = Small
            ? new ConvDesc(N: 2, Cin: 3, H: 5, W: 7, Cout: 67, K: k, Stride: stride, Pad: pad, CinMax: 7, CoutMax: 70)
            : new ConvDesc(N: 2, Cin: 5, H: 9, W: 11, Cout: 67, K: k, Stride: stride, Pad: pad, CinMax: 7, CoutMax: 70);
        var x = Rand(r, d.N * d.Cin * d.H * d.W);
        var w = Rand(r, d.CoutMax * d.CinMax * k * k, 0.3f);
        var bias = Rand(r, d.CoutMax);
        var dy = Rand(r, d.N * d.Cout * d.Ho * d.Wo);
        var (y, dx, dw, db) = ConvRef(d, x, w, bias, dy);
        var dx0 = Rand(r, x.Length); var dw0 = Rand(r, w.Length); var db0 = Rand(r, bias.Length);

        var yb = New(y.Length);
        var xb = Up(x); var wb = Up(w); var bb = Up(bias); var dyb = Up(dy);
        B.Conv2dForward(d, xb, wb, bb, yb);
        OpCheck.AssertClose("conv forward", Down(yb), y, 1e-4, 1e-4);

        var dxb = Up(dx0); var dwb = Up(dw0); var dbb = Up(db0);
        B.Conv2dBackwardData(d, dyb, wb, dxb);
        B.Conv2dBackwardWeight(d, xb, dyb, dwb, dbb);
        OpCheck.AssertClose("conv dx (accumulated)", Delta(Down(dxb), dx0), dx, 2e-4, 1e-4);
        var dwGot = Down(dwb);
        OpCheck.AssertClose("conv dw (accumulated)", Delta(dwGot, dw0), dw, 5e-4, 1e-4);
        for (int i = 0; i < w.Length; i++)
        {
            int co = i / (d.CinMax * k * k), ci = i / (k * k) % d.CinMax;
            if (co >= d.Cout || ci >= d.Cin)
                Assert.That(dwGot[i], Is.EqualTo(dw0[i]), $"dw[{i}] outside the active prefix must be untouched");
        }
        OpCheck.AssertClose("conv dbias (accumulated)", Delta(Down(dbb), db0), db, 2e-4, 1e-4);

        G.ExactFp32 = false;
        B.Conv2dForward(d, xb, wb, bb, yb);
        Tf32Close("conv tf32 forward", Down(yb), y);
        dxb = Up(new float[x.Length]); dwb = Up(new float[w.Length]);
        B.Conv2dBackwardData(d, dyb, wb, dxb);
        B.Conv2dBackwardWeight(d, xb, dyb, dwb, null);
        Tf32Close("conv tf32 dx", Down(dxb), dx);
        Tf32Close("conv tf32 dw", Down(dwb), dw);
    }

    // ---- group norm ------------------------------------------------------------------------------
    private static double[] GnRef(GroupNormDesc d, double[][] v)   // v: x, gamma, beta, scale, shift
    {
        var (x, ga, be, sc, sh) = (v[0], v[1], v[2], v[3], v[4]);
        int cpg = d.C / d.G;
        var y = new double[x.Length];
        for (int n = 0; n < d.N; n++)
            for (int g = 0; g < d.G; g++)
            {
                int b0 = (n * d.C + g * cpg) * d.S, cnt = cpg * d.S;
                double mu = 0; for (int e = 0; e < cnt; e++) mu += x[b0 + e]; mu /= cnt;
                double var = 0; for (int e = 0; e < cnt; e++) var += (x[b0 + e] - mu) * (x[b0 + e] - mu); var /= cnt;
                double rs = 1 / Math.Sqrt(var + d.Eps);
                for (int e = 0; e < cnt; e++)
                {
                    int c = g * cpg + e / d.S;
                    double o = ((x[b0 + e] - mu) * rs * ga[c] + be[c]) * (1 + sc[n * d.C + c]) + sh[n * d.C + c];
                    y[b0 + e] = d.SiLU ? o / (1 + Math.Exp(-o)) : o;
                }
            }
        return y;
    }

    private static double[] Fd(Func<double[][], double[]> f, double[][] ins, int which, double[] g)
    {
        var grad = new double[ins[which].Length];
        for (int i = 0; i < grad.Length; i++)
        {
            double x0 = ins[which][i], h = 1e-6 * Math.Max(1, Math.Abs(x0));
            ins[which][i] = x0 + h; var lp = f(ins);
            ins[which][i] = x0 - h; var lm = f(ins);
            ins[which][i] = x0;
            double s = 0; for (int j = 0; j < g.Length; j++) s += g[j] * (lp[j] - lm[j]);
            grad[i] = s / (2 * h);
        }
        return grad;
    }

    [TestCase(true)] [TestCase(false)]
    [Covers("groupnorm_fwd", "groupnorm_bwd", "groupnorm_param_grad")]
    public void GroupNormFusedForwardBackward(bool silu)
    {
        var r = new Rng(300);
        var d = new GroupNormDesc(N: 2, C: 8, S: 10, G: 4, CMax: 12, Eps: 1e-5f, SiLU: silu);
        var x = Rand(r, d.N * d.C * d.S, 2f).Select(v => v + 0.5f).ToArray();
        var ga = Rand(r, d.CMax); var be = Rand(r, d.CMax);
        var sc = Rand(r, d.N * d.C, 0.3f); var sh = Rand(r, d.N * d.C, 0.3f);
        var ins = new[] { D(x), D(ga.Take(d.C).ToArray()), D(be.Take(d.C).ToArray()), D(sc), D(sh) };
        var y = GnRef(d, ins);

        var xb = Up(x); var gb = Up(ga); var bb = Up(be); var scb = Up(sc); var shb = Up(sh);
        var yb = New(x.Length); var mb = New(d.N * d.G); var rb = New(d.N * d.G);
        B.GroupNormForward(d, xb, gb, bb, scb, shb, yb, mb, rb);
        OpCheck.AssertClose("groupnorm forward", Down(yb), y, 1e-4, 1e-4);

        var g = Rand(r, x.Length);
        var grads = Enumerable.Range(0, 5).Select(i => Fd(v => GnRef(d, v), ins, i, D(g))).ToArray();
        var init = new[]
        {
            Rand(r, x.Length), Rand(r, d.CMax), Rand(r, d.CMax), Rand(r, sc.Length), Rand(r, sh.Length),
        };
        var gbufs = init.Select(a => Up(a)).ToArray();
        B.GroupNormBackward(d, xb, gb, bb, scb, shb, mb, rb, Up(g), gbufs[0], gbufs[1], gbufs[2], gbufs[3], gbufs[4]);
        string[] names = ["dx", "dgamma", "dbeta", "dscale", "dshift"];
        for (int i = 0; i < 5; i++)
        {
            var got = Down(gbufs[i]);
            var delta = Delta(got, init[i]).Take(grads[i].Length).ToArray();
            OpCheck.AssertClose($"groupnorm {names[i]} (accumulated)", delta, grads[i], 1e-3, 1e-3);
            if (i is 1 or 2)
                for (int c = d.C; c < d.CMax; c++)
                    Assert.That(got[c], Is.EqualTo(init[i][c]), $"{names[i]}[{c}] outside the prefix");
        }
    }

    /// <summary>
    /// Shapes that give the kernels' warp-to-channel-row mapping each of its forms at the group sizes the
    /// backend picks (64 to 256 threads): warps sharing a row of 8² or 16², one row per warp over two
    /// sweeps, a row per group, a spare warp beside ragged rows; scale and shift each present or absent,
    /// and only some gradients requested. (N, C, CMax, G, S, scale, shift, SiLU, gradients wanted.)
    /// </summary>
    private static IEnumerable<TestCaseData> GroupNormShapes() =>
    [
        new TestCaseData(2, 8, 16, 4, 64, true, false, true, "dx dgamma dbeta dscale"),
        new TestCaseData(1, 16, 16, 4, 256, false, true, false, "dx dgamma dshift"),
        new TestCaseData(3, 32, 48, 2, 64, true, true, true, "dbeta dscale dshift"),
        new TestCaseData(2, 4, 8, 4, 64, false, false, false, "dx"),
        new TestCaseData(2, 12, 12, 4, 36, true, true, true, "dx dgamma dbeta dscale dshift"),
    ];

    [TestCaseSource(nameof(GroupNormShapes))]
    [Covers("groupnorm_fwd", "groupnorm_bwd")]
    public void GroupNormMatchesCpuOracle(int n, int c, int cMax, int groups, int s, bool hasScale, bool hasShift,
        bool silu, string wanted)
    {
        var r = new Rng(500 + (ulong)(c * s + n));
        var d = new GroupNormDesc(N: n, C: c, S: s, G: groups, CMax: cMax, Eps: 1e-5f, SiLU: silu);
        var x = Rand(r, n * c * s, 2f).Select(v => v + 0.7f).ToArray();   // off-centre: two-pass statistics
        var ga = Rand(r, cMax); var be = Rand(r, cMax);
        var sc = hasScale ? Rand(r, n * c, 0.3f) : null;
        var sh = hasShift ? Rand(r, n * c, 0.3f) : null;
        var dy = Rand(r, x.Length);
        // Gradient buffers the same on both backends, pre-filled (backward accumulates); null = not wanted.
        string[] names = ["dx", "dgamma", "dbeta", "dscale", "dshift"];
        long[] lengths = [x.Length, cMax, cMax, n * c, n * c];
        var init = names.Select((g, i) => wanted.Split(' ').Contains(g) ? Rand(r, lengths[i]) : null).ToArray();

        (float[][] Forward, float[]?[] Grads) RunOn(Backend on)
        {
            DeviceBuffer? Maybe(float[]? a) => a is null ? null : Up(a, on);
            var xb = Up(x, on); var gb = Up(ga, on); var bb = Up(be, on); var scb = Maybe(sc); var shb = Maybe(sh);
            var yb = Up(new float[x.Length], on);
            var mb = Up(new float[n * groups], on); var rb = Up(new float[n * groups], on);
            on.GroupNormForward(d, xb, gb, bb, scb, shb, yb, mb, rb);
            var gr = init.Select(Maybe).ToArray();
            on.GroupNormBackward(d, xb, gb, bb, scb, shb, mb, rb, Up(dy, on), gr[0], gr[1], gr[2], gr[3], gr[4]);
            return ([Down(yb), Down(mb), Down(rb)], gr.Select(b => b is null ? null : Down(b)).ToArray());
        }

        var (got, gotGrads) = RunOn(B);
        var (want, wantGrads) = RunOn(Cpu);
        string[] outs = ["y", "mean", "rstd"];
        for (int i = 0; i < 3; i++) OpCheck.AssertClose($"groupnorm {outs[i]}", got[i], want[i], 1e-4, 1e-4);
        for (int i = 0; i < 5; i++)
        {
            if (init[i] is not { } before) continue;
            OpCheck.AssertClose($"groupnorm {names[i]} (accumulated)", Delta(gotGrads[i]!, before),
                Delta(wantGrads[i]!, before), 2e-4, 2e-4);
            if (i is 1 or 2)
                for (int ch = c; ch < cMax; ch++)
                    Assert.That(gotGrads[i]![ch], Is.EqualTo(before[ch]), $"{names[i]}[{ch}] outside the prefix");
        }
    }

    // ---- attention -------------------------------------------------------------------------------
    /// <summary>Offsets of head h's q, k, v rows in qkv and of its rows in out (ADM's head-major layout).</summary>
    private static (long Q, long K, long V, long O) AttnBases(AttentionDesc d, int n, int h)
    {
        long q = ((long)n * 3 * d.C + h * 3 * d.HeadDim) * d.T, k = q + (long)d.HeadDim * d.T;
        return (q, k, k + (long)d.HeadDim * d.T, ((long)n * d.C + h * d.HeadDim) * d.T);
    }

    /// <summary>Softmax probabilities P[t, u] of head h of sample n and each query's log-sum-exp.</summary>
    private static (double[,] P, double[] Lse) AttnProbs(AttentionDesc d, double[] qkv, int n, int h)
    {
        int T = d.T, hd = d.HeadDim;
        var (qb, kb, _, _) = AttnBases(d, n, h);
        var p = new double[T, T];
        var lse = new double[T];
        double scale = 1 / Math.Sqrt(hd);
        for (int t = 0; t < T; t++)
        {
            double mx = double.NegativeInfinity;
            for (int u = 0; u < T; u++)
            {
                double a = 0;
                for (int j = 0; j < hd; j++) a += qkv[qb + j * T + t] * qkv[kb + j * T + u];
                p[t, u] = a * scale; mx = Math.Max(mx, p[t, u]);
            }
            double z = 0; for (int u = 0; u < T; u++) { p[t, u] = Math.Exp(p[t, u] - mx); z += p[t, u]; }
            for (int u = 0; u < T; u++) p[t, u] /= z;
            lse[t] = mx + Math.Log(z);
        }
        return (p, lse);
    }

    private static double[] AttnRef(AttentionDesc d, double[] qkv, double[]? lse = null)
    {
        int T = d.T, hd = d.HeadDim;
        var o = new double[d.N * d.C * T];
        for (int n = 0; n < d.N; n++)
            for (int h = 0; h < d.Heads; h++)
            {
                var (p, l) = AttnProbs(d, qkv, n, h);
                var (_, _, vb, ob) = AttnBases(d, n, h);
                if (lse is not null) Array.Copy(l, 0, lse, (n * d.Heads + h) * T, T);
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < hd; j++)
                    {
                        double a = 0;
                        for (int u = 0; u < T; u++) a += p[t, u] * qkv[vb + j * T + u];
                        o[ob + j * T + t] = a;
                    }
            }
        return o;
    }

    /// <summary>
    /// ∂(Σ g·out)/∂qkv in float64: dV = Pᵀ·dO, dS = P∘(dO·Vᵀ − D) with D = rowsum(dO∘O), dQ = dS·K/√d,
    /// dK = dSᵀ·Q/√d.
    /// </summary>
    private static double[] AttnGradRef(AttentionDesc d, double[] qkv, double[] g)
    {
        int T = d.T, hd = d.HeadDim;
        var dx = new double[qkv.Length];
        double scale = 1 / Math.Sqrt(hd);
        for (int n = 0; n < d.N; n++)
            for (int h = 0; h < d.Heads; h++)
            {
                var (p, _) = AttnProbs(d, qkv, n, h);
                var (qb, kb, vb, ob) = AttnBases(d, n, h);
                var dp = new double[T];
                for (int t = 0; t < T; t++)
                {
                    double rowDot = 0;
                    for (int u = 0; u < T; u++)
                    {
                        dp[u] = 0;
                        for (int j = 0; j < hd; j++) dp[u] += g[ob + j * T + t] * qkv[vb + j * T + u];
                        rowDot += p[t, u] * dp[u];
                    }
                    for (int u = 0; u < T; u++)
                    {
                        double ds = p[t, u] * (dp[u] - rowDot) * scale;
                        for (int j = 0; j < hd; j++)
                        {
                            dx[qb + j * T + t] += ds * qkv[kb + j * T + u];
                            dx[kb + j * T + u] += ds * qkv[qb + j * T + t];
                            dx[vb + j * T + u] += p[t, u] * g[ob + j * T + t];
                        }
                    }
                }
            }
        return dx;
    }

    // One test per head-dim specialisation (a test must launch every kernel its [Covers] names). The cases:
    // head dims on both sides of the boundaries, T not a multiple of the 32-token tile, below one tile and
    // T = 1, several heads and samples. Arguments: head dim, T, N, heads.
    [TestCase(16, 40, 1, 2)] [TestCase(32, 1, 2, 3)] [TestCase(32, 7, 2, 1)]
    [Covers("attn_fwd_d32", "attn_bwd_dot", "attn_bwd_kv_d32", "attn_bwd_q_d32")]
    public void AttentionForwardBackwardD32(int headDim, int t, int n, int heads) =>
        AttentionForwardBackward(headDim, t, n, heads);

    [TestCase(64, 64, 1, 2)] [TestCase(33, 20, 2, 1)]
    [Covers("attn_fwd_d64", "attn_bwd_dot", "attn_bwd_kv_d64", "attn_bwd_q_d64")]
    public void AttentionForwardBackwardD64(int headDim, int t, int n, int heads) =>
        AttentionForwardBackward(headDim, t, n, heads);

    [TestCase(80, 33, 1, 2)] [TestCase(128, 9, 1, 1)]
    [Covers("attn_fwd_d128", "attn_bwd_dot", "attn_bwd_kv_d128", "attn_bwd_q_d128")]
    public void AttentionForwardBackwardD128(int headDim, int t, int n, int heads) =>
        AttentionForwardBackward(headDim, t, n, heads);

    private void AttentionForwardBackward(int headDim, int t, int n, int heads)
    {
        var r = new Rng(400 + (ulong)headDim + (ulong)t);
        var d = new AttentionDesc(N: n, Heads: heads, HeadDim: headDim, T: t);
        var qkv = Rand(r, d.N * 3 * d.C * t);
        var lseWant = new double[d.N * d.Heads * t];
        var o = AttnRef(d, D(qkv), lseWant);

        var qb = Up(qkv); var ob = New(o.Length); var lb = New(lseWant.Length);
        B.AttentionForward(d, qb, ob, lb);
        OpCheck.AssertClose("attention forward", Down(ob), o, 1e-4, 1e-3);
        OpCheck.AssertClose("attention lse", Down(lb), lseWant, 1e-4, 1e-4);

        var g = Rand(r, o.Length);
        var dq0 = Rand(r, qkv.Length);
        var dqb = Up(dq0);
        B.AttentionBackward(d, qb, ob, lb, Up(g), dqb);
        var got = Delta(Down(dqb), dq0);
        var x = D(qkv); var gd = D(g);
        OpCheck.AssertClose("attention dqkv (accumulated), every element", got, AttnGradRef(d, x, gd), 1e-4, 1e-3);
        // Central differences on a sample of qkv elements (q, k and v regions are all hit): checks the reference.
        var idx = Enumerable.Range(0, 40).Select(_ => r.NextInt(qkv.Length)).Distinct().ToArray();
        var fd = idx.Select(i =>
        {
            double x0 = x[i], h = 1e-6 * Math.Max(1, Math.Abs(x0));
            x[i] = x0 + h; var lp = AttnRef(d, x); x[i] = x0 - h; var lm = AttnRef(d, x); x[i] = x0;
            double s = 0; for (int j = 0; j < gd.Length; j++) s += gd[j] * (lp[j] - lm[j]);
            return s / (2 * h);
        }).ToArray();
        OpCheck.AssertClose("attention dqkv vs central differences", idx.Select(i => got[i]).ToArray(), fd, 1e-3, 1e-3,
            idx);
    }

    [Test]
    public void AttentionRefusesHeadDimAbove128()
    {
        var d = new AttentionDesc(N: 1, Heads: 1, HeadDim: 129, T: 4);
        var qkv = New(3 * 129 * 4);
        var ex = Assert.Throws<NotSupportedException>(() => B.AttentionForward(d, qkv, New(129 * 4), New(4)));
        Assert.That(ex!.Message, Does.Contain("head dim 129").And.Contain("128"));
        Assert.Throws<NotSupportedException>(() =>
            B.AttentionBackward(d, qkv, New(129 * 4), New(4), New(129 * 4), New(3 * 129 * 4)));
    }

    // ---- element-wise extras against the CPU oracle ------------------------------------------------
    /// <summary>
    /// Runs <paramref name="op"/> on the CPU oracle and on this backend, each over its own copy of
    /// <paramref name="init"/>, and compares every buffer afterwards (outputs, and inputs left untouched).
    /// </summary>
    private void SameAsCpu(string what, float[][] init, Action<Backend, DeviceBuffer[]> op, double atol, double rtol)
    {
        var cpu = init.Select(a => Up(a, Cpu)).ToArray();
        var dev = init.Select(a => Up(a)).ToArray();
        op(Cpu, cpu);
        op(B, dev);
        for (int i = 0; i < init.Length; i++)
            OpCheck.AssertClose($"{what}: buffer {i}", Down(dev[i]), D(Down(cpu[i])), atol, rtol);
    }

    [Test]
    [Covers("fill", "axpby", "binary", "unary", "broadcast", "copy_blocks")]
    public void ElementwiseKernelsMatchCpu()
    {
        var r = new Rng(505);
        const int outer = 3, mid = 5, inner = 7, n = outer * mid * inner;   // 105: a ragged last warp
        var a = Rand(r, n); var b = Rand(r, n); var row = Rand(r, outer * mid);
        // Single roundings (add, sub, mul, copies) match exactly; two-term and exp-based maps to float
        // rounding (a GPU may contract a·b + c into one FMA; the oracle's exp is its own).
        SameAsCpu("fill 2.5 at an offset", [a], (be, x) => be.Fill(x[0], 10, 40, 2.5f), 0, 0);
        SameAsCpu("fill 0 at an offset", [a], (be, x) => be.Fill(x[0], 3, 50, 0f), 0, 0);
        var nan = Enumerable.Repeat(float.NaN, n).ToArray();
        SameAsCpu("axpby beta 0 never reads y", [a, nan], (be, x) => be.Axpby(x[0], x[1], n, -1.5f, 0f), 0, 0);
        SameAsCpu("axpby", [a, b], (be, x) => be.Axpby(x[0], x[1], n, 0.75f, -1.25f), 1e-7, 1e-6);
        SameAsCpu("axpby in place", [a], (be, x) => be.Axpby(x[0], x[0], n, 0.75f, -1.25f), 1e-7, 1e-6);
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            SameAsCpu($"binary {op}", [a, b, nan], (be, x) => be.Binary(op, x[0], x[1], x[2], n), 0, 0);
            SameAsCpu($"binary {op}, z = a", [a, b], (be, x) => be.Binary(op, x[0], x[1], x[0], n), 0, 0);
            SameAsCpu($"binary {op}, z = b", [a, b], (be, x) => be.Binary(op, x[0], x[1], x[1], n), 0, 0);
            foreach (bool perOuter in new[] { true, false })
            {
                SameAsCpu($"broadcast {op} per outer {perOuter}", [a, row, nan],
                    (be, x) => be.Broadcast(op, x[0], x[1], x[2], outer, mid, inner, perOuter), 0, 0);
                SameAsCpu($"broadcast {op} per outer {perOuter}, z = a", [a, row],
                    (be, x) => be.Broadcast(op, x[0], x[1], x[0], outer, mid, inner, perOuter), 0, 0);
            }
        }
        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            SameAsCpu($"unary {op}", [a, nan], (be, x) => be.Unary(op, x[0], x[1], n), 1e-6, 1e-5);
            SameAsCpu($"unary {op} in place", [a], (be, x) => be.Unary(op, x[0], x[0], n), 1e-6, 1e-5);
        }
        // Rows of 9 from a row stride of 11 at offset 2 into a stride of 13 at offset 5: 6 rows.
        foreach (bool accumulate in new[] { false, true })
            SameAsCpu($"copy_blocks accumulate {accumulate}", [a, b],
                (be, x) => be.CopyBlocks(x[0], 2, 11, x[1], 5, 13, 6, 9, accumulate), 0, 0);
    }

    [Test]
    [Covers("dropout")]
    public void DropoutMaskMatchesCpuBitForBit()
    {
        var r = new Rng(500);
        long n = Small ? 1_003 : 100_003;
        var x = Rand(r, n);
        var (yc, mc) = (Cpu.Allocate(n), Cpu.Allocate(n));
        Cpu.Dropout(Up(x, Cpu), yc, mc, n, 0.3f, 0xC0FFEE);
        var (yg, mg) = (New(n), New(n));
        B.Dropout(Up(x), yg, mg, n, 0.3f, 0xC0FFEE);
        Assert.That(Down(mg), Is.EqualTo(Down(mc)), "mask");
        Assert.That(Down(yg), Is.EqualTo(Down(yc)), "output");
        Cpu.Free(yc); Cpu.Free(mc);
    }

    [Test]
    [Covers("normal")]
    public void NormalNoiseMatchesCpuBitForBit()
    {
        // An odd offset and length: a Box–Muller pair split across calls, a ragged last warp. Both backends
        // run CounterHash.Normal (double Box–Muller, rounded once): on ILGPU's CPU accelerator that is the
        // same .NET math, so bit-equal; on a GPU ILGPU.Algorithms' double log/cos/sin may differ from
        // System.Math by ~1e-12 relative, which can flip the last bit of a rare float: 1 ulp there.
        long n = Small ? 1_001 : 100_001;
        const ulong seed = 0x5EED, offset = 777;
        var c = Cpu.Allocate(n);
        Cpu.Normal(c, n, seed, offset);
        var g = New(n);
        B.Normal(g, n, seed, offset);
        var want = Down(c);
        Cpu.Free(c);
        if (G.IsCuda) OpCheck.AssertClose("normal", Down(g), D(want), 0, 2.5e-7);
        else Assert.That(Down(g), Is.EqualTo(want), "bit for bit");
    }

    [Test]
    [Covers("upsample2x", "avgpool2x", "timestep_embedding", "adam_step")]
    public void MiscKernelsMatchCpu()
    {
        var r = new Rng(501);
        int nc = Small ? 3 : 6, h = 10, w = 14, n = nc * h * w;
        var x = Rand(r, n);
        SameAsCpu("upsample", [x, Rand(r, 4 * n)], (be, b) => be.Upsample2x(b[0], b[1], nc, h, w), 0, 1e-6);
        SameAsCpu("avgpool", [x, Rand(r, n / 4)], (be, b) => be.AvgPool2x(b[0], b[1], nc, h, w), 1e-6, 1e-6);
        var t = Enumerable.Range(0, 5).Select(i => (float)(i * 197.3)).ToArray();
        SameAsCpu("timestep embedding", [t, Rand(r, 5 * 33)],
            (be, b) => be.TimestepEmbedding(b[0], b[1], 5, 33, 10000f), 1e-6, 1e-6);

        var p0 = Rand(r, n);
        var g = Rand(r, n);
        var m0 = Rand(r, n, 0.1f);
        var v0 = Rand(r, n).Select(v => v * v).ToArray();
        var hyper = new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.19f, 0.002f, 0.5f);
        SameAsCpu("adam (p, g, m, v)", [p0, g, m0, v0],
            (be, b) => be.AdamStep(b[0], b[1], b[2], b[3], n, hyper), 1e-6, 1e-5);
    }

    [Test]
    [Covers("reduce_partials", "reduce_final")]
    public void ReductionsAreDeterministicAndAccurate()
    {
        var r = new Rng(502);
        long n = Small ? 30_017 : 3_000_017;
        var a = Rand(r, n); var b = Rand(r, n);
        var ab = Up(a); var bb = Up(b); var res = New(1);
        double sum = a.Sum(v => (double)v), ss = a.Sum(v => (double)v * v),
               se = a.Select((v, i) => (double)(v - b[i]) * (v - b[i])).Sum();
        B.Sum(ab, n, res); var s1 = Down(res)[0];
        B.Sum(ab, n, res); var s2 = Down(res)[0];
        Assert.That(BitConverter.SingleToInt32Bits(s1), Is.EqualTo(BitConverter.SingleToInt32Bits(s2)),
                    "same input, same bits");
        Assert.That(s1, Is.EqualTo(sum).Within(1e-3));
        B.SumSquares(ab, n, res); Assert.That(Down(res)[0], Is.EqualTo(ss).Within(ss * 1e-6));
        B.SquaredError(ab, bb, n, res); Assert.That(Down(res)[0], Is.EqualTo(se).Within(se * 1e-6));
    }

    // ---- runtime: pool, OOM, graphs, threads -------------------------------------------------------
    [Test]
    public void PoolReusesBuffersInSteadyState()
    {
        var warm = new[] { B.Allocate(1000), B.Allocate(1002) };   // the step's working set, once
        foreach (var t in warm) B.Free(t);
        long before = G.DeviceAllocCount;
        for (int i = 0; i < 100; i++)
        {
            var a = B.Allocate(1000); var b = B.Allocate(1002);
            B.Free(a); B.Free(b);
        }
        Assert.That(G.DeviceAllocCount, Is.EqualTo(before), "no device allocation once the pool holds the sizes");
    }

    [Test]
    public void OutOfMemoryIsClear()
    {
        // CUDA: four times the device (in floats). CPU accelerator: 4 TiB, more than any host here has.
        long floats = G.IsCuda ? G.MemoryInfo().Total : 1L << 40;
        var ex = Assert.Throws<DeviceOutOfMemoryException>(() => B.Allocate(floats));
        Assert.That(ex!.Message, Does.Contain("out of memory allocating").And.Contain("smaller --batch"));
        if (G.IsCuda) Assert.That(ex.Message, Does.Contain("free of"));
        var ok = B.Allocate(1000);   // and the backend still works
        B.Free(ok);
    }

    [Test]
    [Covers("axpby")]
    public void GraphReplaysCapturedKernels()
    {
        if (!G.IsCuda)
        {
            Assert.Throws<NotSupportedException>(() => G.BeginCapture(), "graphs are a CUDA feature");
            var one = Up([1f]);
            B.Axpby(one, one, 1, 2f, 1f);
            Assert.That(Down(one)[0], Is.EqualTo(3f));
            return;
        }
        var r = new Rng(503);
        int n = 5000;
        var x = Rand(r, n); var y0 = Rand(r, n);
        var xb = Up(x); var yb = Up(y0);
        G.BeginCapture();
        var tmp = B.Allocate(n);
        B.Unary(UnaryOp.Square, xb, tmp, n);        // tmp = x²
        B.Axpby(tmp, yb, n, 2f, 1f);                // y += 2x²
        B.Free(tmp);                                // held by the graph, not reused
        using var g = G.EndCapture();
        Assert.That(g.HeldBuffers, Is.EqualTo(1));
        Assert.That(Down(yb), Is.EqualTo(y0), "capture records; nothing runs");
        g.Launch(); g.Launch(); g.Launch();
        var want = y0.Select((v, i) => (double)v + 6.0 * x[i] * x[i]).ToArray();
        OpCheck.AssertClose("graph ×3", Down(yb), want, 1e-5, 1e-6);
    }

    [Test]
    public void WorksFromAnotherThread()
    {
        var r = new Rng(504);
        var x = Rand(r, 777);
        var xb = Up(x);
        var got = Task.Run(() =>
        {
            var yb = B.Allocate(777);
            B.Unary(UnaryOp.Square, xb, yb, 777);
            var a = Down(yb);
            B.Free(yb);
            return a;
        }).Result;
        Assert.That(got, Is.EqualTo(x.Select(v => v * v).ToArray()));
    }
}
