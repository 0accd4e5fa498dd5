using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// Multi-head self-attention in ADM's legacy qkv layout against a float64 reference.
/// Tolerances: forward |err| ≤ 1e-5 + 1e-4·|ref| (outputs are convex combinations of v, |v| ~ 1);
/// gradients vs central differences ≤ 1e-3 + 2e-3·|ref|.
/// </summary>
public abstract class AttentionOpTests : BackendFixture
{
    /// <summary>out (N, heads·d, T) from qkv (N, 3·heads·d, T), head-major q|k|v blocks.</summary>
    internal static double[] Reference(double[] qkv, int n, int heads, int d, int t)
    {
        int c = heads * d;
        var y = new double[n * c * t];
        var p = new double[t];
        double scale = 1 / Math.Sqrt(d);
        for (int b = 0; b < n; b++)
            for (int h = 0; h < heads; h++)
            {
                int q = (b * 3 * c + h * 3 * d) * t, k = q + d * t, v = k + d * t, o = (b * c + h * d) * t;
                for (int i = 0; i < t; i++)
                {
                    double mx = double.NegativeInfinity;
                    for (int j = 0; j < t; j++)
                    {
                        double sc = 0;
                        for (int e = 0; e < d; e++) sc += qkv[q + e * t + i] * qkv[k + e * t + j];
                        p[j] = sc * scale;
                        mx = Math.Max(mx, p[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < t; j++) sum += p[j] = Math.Exp(p[j] - mx);
                    for (int e = 0; e < d; e++)
                    {
                        double acc = 0;
                        for (int j = 0; j < t; j++) acc += p[j] * qkv[v + e * t + j];
                        y[o + e * t + i] = acc / sum;
                    }
                }
            }
        return y;
    }

    [TestCase(16, 1)]
    [TestCase(16, 2)]
    [TestCase(64, 1)]
    [TestCase(64, 2)]
    [Covers("attn_fwd_d32", "attn_bwd_dot", "attn_bwd_kv_d32", "attn_bwd_q_d32")]
    public void ForwardAndGradients(int t, int heads)
    {
        const int d = 8;
        var r = new Rng((ulong)(100 * t + heads));
        int n = 1 + r.NextInt(2);
        // Scaled-up qkv so the softmax is far from uniform (scores of a few units).
        var qkv = Input.Random(r, n, 3 * heads * d, t);
        for (int i = 0; i < qkv.Data.Length; i++) qkv.Data[i] *= 1.5f;
        OpCheck.Run(B, $"attention N={n} heads={heads} d={d} T={t}", x => F.Attention(x[0], d),
            v => Reference(v[0], n, heads, d, t), [qkv],
            atol: 1e-5 * TolScale, rtol: 1e-4 * TolScale, gradAtol: 1e-3 * TolScale, gradRtol: 2e-3 * TolScale);
    }

    [Test]
    [Covers("attn_fwd_d32")]
    public void LongSequenceForward()
    {
        // T = 256 (a 16×16 map), 2 heads of 32 channels: forward only (the reference is O(T²d)).
        const int n = 1, heads = 2, d = 32, t = 256;
        var r = new Rng(31);
        var qkv = new float[n * 3 * heads * d * t];
        r.FillNormal(qkv);
        using var scope = new TensorScope();
        var y = F.Attention(Tensor.FromArray(B, qkv, n, 3 * heads * d, t), d);
        var want = Reference(qkv.Select(v => (double)v).ToArray(), n, heads, d, t);
        OpCheck.AssertClose("attention T=256 forward", y.ToArray(), want, 1e-5 * TolScale, 1e-4 * TolScale);
    }

    [Test]
    [Covers("attn_fwd_d32", "attn_bwd_dot", "attn_bwd_kv_d32", "attn_bwd_q_d32")]
    public void LongestSequenceForwardAndDirectionalGradient()
    {
        // T = 1024 (a 32×32 map; 256 where launches are slow: still 8 tiles of 32 tokens), one head of 8
        // channels. Forward vs the reference; backward as a directional derivative: Σ dqkv·v against
        // (L(x+hv) − L(x−hv))/2h with L = Σ g·ref(x) in double (two reference evaluations instead of one per
        // sampled element).
        const int n = 1, heads = 1, d = 8;
        int t = Small ? 256 : 1024;
        var r = new Rng(34);
        var x = new float[n * 3 * heads * d * t]; r.FillNormal(x);
        var g = new float[n * heads * d * t]; r.FillNormal(g);
        var dir = new double[x.Length];
        for (int i = 0; i < dir.Length; i++) dir[i] = r.NextNormal();
        using var scope = new TensorScope();
        var qkv = Tensor.FromArray(B, x, n, 3 * heads * d, t);
        qkv.RequiresGrad = true;
        var y = F.Attention(qkv, d);
        var xd = x.Select(v => (double)v).ToArray();
        OpCheck.AssertClose($"attention T={t} forward", y.ToArray(), Reference(xd, n, heads, d, t),
            1e-5 * TolScale, 1e-4 * TolScale);
        Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(B, g, y.Shape))));
        var grad = qkv.Grad!.ToArray();
        double analytic = 0;
        for (int i = 0; i < grad.Length; i++) analytic += grad[i] * dir[i];
        const double h = 1e-5;
        double L(double sign) =>
            OpCheck.Dot(g, Reference(xd.Select((v, i) => v + sign * h * dir[i]).ToArray(), n, heads, d, t));
        double fd = (L(1) - L(-1)) / (2 * h);
        OpCheck.AssertClose($"attention T={t} directional gradient", [(float)analytic], [fd],
            1e-3 * TolScale, 1e-3 * TolScale);
    }

    [Test]
    [Covers("attn_fwd_d32")]
    public void SlimmedQkvPrefixGivesTheFirstHeadsExactly()
    {
        // A model with 4 heads slimmed to 2: the slim qkv projection is the channel prefix of the
        // full one, and its attention must equal the first 2 heads of the full attention output.
        const int n = 2, d = 8, t = 16, full = 4, slim = 2;
        var r = new Rng(32);
        var data = new float[n * 3 * full * d * t];
        r.FillNormal(data);
        using var scope = new TensorScope();
        var qkvFull = Tensor.FromArray(B, data, n, 3 * full * d, t);
        var yFull = F.Attention(qkvFull, d).ToArray();
        var ySlim = F.Attention(F.SliceChannels(qkvFull, 0, 3 * slim * d), d);
        Assert.That(ySlim.Shape, Is.EqualTo(new[] { n, slim * d, t }));
        var want = new double[n * slim * d * t];
        for (int b = 0; b < n; b++)
            for (int i = 0; i < slim * d * t; i++) want[b * slim * d * t + i] = yFull[b * full * d * t + i];
        // Same per-head computation on the same values: equal to float rounding (1e-6).
        OpCheck.AssertClose("slim attention vs full heads", ySlim.ToArray(), want, 1e-6, 1e-6);
    }

    [Test]
    [Covers("attn_fwd_d32", "attn_bwd_dot", "attn_bwd_kv_d32", "attn_bwd_q_d32")]
    public void BackwardAccumulates()
    {
        const int n = 1, heads = 2, d = 8, t = 16;
        var r = new Rng(33);
        var data = new float[n * 3 * heads * d * t];
        r.FillNormal(data);
        var gyData = new float[n * heads * d * t];
        r.FillNormal(gyData);
        using var scope = new TensorScope();
        var qkv = Tensor.FromArray(B, data, n, 3 * heads * d, t);
        qkv.RequiresGrad = true;
        var gy = Tensor.FromArray(B, gyData, n, heads * d, t);
        Tape.Backward(F.Sum(F.Mul(F.Attention(qkv, d), gy)));
        var g1 = qkv.Grad!.ToArray();
        Tape.Backward(F.Sum(F.Mul(F.Attention(qkv, d), gy)));
        OpCheck.AssertClose("attention dqkv after two passes", qkv.Grad!.ToArray(), g1.Select(v => 2.0 * v).ToArray(),
                            1e-6, 1e-6);
        Assert.That(g1.Count(v => v != 0f), Is.GreaterThan(g1.Length * 9 / 10), "q, k and v all get gradient");
    }

    [Test]
    public void BadInputNamesOpAndShapes()
    {
        using var scope = new TensorScope();
        var ex = Assert.Throws<ArgumentException>(() => F.Attention(Tensor.Zeros(B, 2, 40, 16), 8));
        Assert.That(ex!.Message, Does.Contain("attention").And.Contain("(2, 40, 16)").And.Contain("24"));
        ex = Assert.Throws<ArgumentException>(() => F.Attention(Tensor.Zeros(B, 48, 16), 8));
        Assert.That(ex!.Message, Does.Contain("attention").And.Contain("(48, 16)"));
    }
}
