using System.Runtime.Intrinsics.X86;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The CPU backend's SIMD paths (AVX-512, AVX2, portable) side by side in one process: the runtime switch picks
/// the path the machine and DOTNET_EnableAVX512 allow, the fused im2col packing writes exactly the column matrix
/// on every path, and a convolution (forward, dx, dW) gives the same numbers on every path up to float
/// reassociation. (The paths are also checked one by one against float64 references: GemmTests.CappedPathMatches,
/// and the whole suite under DOTNET_EnableAVX512=0 in .ci/run.)
/// </summary>
[TestFixture]
public class SimdPathTests
{
    [TearDown]
    public void Uncap() => Sgemm.Cap = null;

    [Test]
    public void RuntimeSwitchSelectsThePath()
    {
        string env = Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") ?? "unset";
        TestContext.Out.WriteLine(
            $"Sgemm path {Sgemm.BestPath}; DOTNET_EnableAVX512={env}, Avx512F {Avx512F.IsSupported}");
        if (env == "0" || !Avx512F.IsSupported) Assert.That(Sgemm.BestPath, Is.Not.EqualTo(SgemmPath.Avx512));
        else Assert.That(Sgemm.BestPath, Is.EqualTo(SgemmPath.Avx512));
        if (Fma.IsSupported && Avx2.IsSupported) Assert.That(Sgemm.BestPath, Is.Not.EqualTo(SgemmPath.Portable));
        Sgemm.Cap = SgemmPath.Portable;
        Assert.That(Sgemm.Path, Is.EqualTo(SgemmPath.Portable));
    }

    // (cin, h, w, k, pad, first pixel, pixels, first K row, K rows): panels inside one output row, straddling
    // rows (8- and 5-wide images), touching the left and right edge, a ragged last panel, a K block mid-channel.
    [TestCase(2, 6, 32, 3, 1, 0, 64, 0, 18)]
    [TestCase(3, 8, 8, 3, 1, 0, 64, 0, 27)]
    [TestCase(2, 7, 5, 3, 1, 3, 29, 4, 11)]
    [TestCase(2, 6, 20, 3, 1, 10, 70, 0, 18)]
    [TestCase(1, 9, 16, 5, 2, 16, 60, 3, 20)]
    [TestCase(4, 4, 4, 1, 0, 0, 16, 1, 3)]
    public unsafe void FusedIm2ColPackIsTheColumnMatrix(int cin, int h, int w, int k, int pad, int j0, int n,
        int pc, int kc)
    {
        var d = new ConvDesc(1, cin, h, w, 1, k, 1, pad, cin, 1);
        int hw = d.Ho * d.Wo;
        n = Math.Min(n, hw - j0);
        var rng = new Rng((ulong)(cin * 1000 + h * 100 + w + j0));
        var x = new float[cin * h * w];
        rng.FillNormal(x);
        var col = new float[cin * k * k * hw];
        Im2Col.Forward(d, x, col);
        int panels = (n + Sgemm.NR - 1) / Sgemm.NR;
        foreach (var path in Paths())
        {
            var packed = new float[panels * kc * Sgemm.NR];
            Array.Fill(packed, float.NaN);
            fixed (float* px = x, pp = packed)
            {
                var pack = new Im2Col.PackB(px, d, j0);
                pack.Pack(path, pc, kc, 0, n, pp);
            }
            for (int jr = 0; jr < panels; jr++)
            for (int p = 0; p < kc; p++)
            for (int c = 0; c < Sgemm.NR; c++)
            {
                int j = jr * Sgemm.NR + c;
                float want = j < n ? col[(long)(pc + p) * hw + j0 + j] : 0f;
                float got = packed[(jr * kc + p) * Sgemm.NR + c];
                if (got != want && !(float.IsNaN(got) && float.IsNaN(want)))
                    Assert.Fail($"{path}: panel {jr} row {pc + p} lane {c} (pixel {j0 + j}) got {got} want {want}");
            }
        }
    }

    // (n, cin, h, w, cout, k, stride, pad, cinMax, coutMax): UNet-like 16-multiples at 8² and 16², odd sizes,
    // slimmed prefixes, stride 2.
    [TestCase(2, 16, 8, 8, 32, 3, 1, 1, 16, 32)]
    [TestCase(3, 16, 16, 16, 16, 3, 1, 1, 24, 20)]
    [TestCase(1, 5, 13, 19, 7, 3, 1, 1, 6, 9)]
    [TestCase(2, 6, 9, 11, 10, 3, 2, 1, 6, 10)]
    [TestCase(2, 17, 6, 6, 33, 1, 1, 0, 17, 33)]
    public void ConvolutionAgreesAcrossPaths(int n, int cin, int h, int w, int cout, int k, int stride, int pad,
        int cinMax, int coutMax)
    {
        var rng = new Rng((ulong)(n * 7 + cin * 31 + h * 101 + cout));
        var xd = new float[n * cin * h * w]; rng.FillNormal(xd);
        var wd = new float[coutMax * cinMax * k * k]; rng.FillNormal(wd);
        var bd = new float[coutMax]; rng.FillNormal(bd);
        float[][]? first = null;
        SgemmPath firstPath = Sgemm.BestPath;
        foreach (var path in Paths())
        {
            Sgemm.Cap = path;
            var be = CpuBackend.Instance;
            using var scope = new TensorScope();
            var x = Tensor.FromArray(be, xd, n, cin, h, w); x.RequiresGrad = true;
            var wt = Tensor.FromArray(be, wd, coutMax, cinMax, k, k); wt.RequiresGrad = true;
            var b = Tensor.FromArray(be, bd, coutMax); b.RequiresGrad = true;
            var y = F.Conv2d(x, wt, b, cout, stride, pad);
            var g = new float[y.Length]; new Rng(5).FillNormal(g);
            Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(be, g, y.Shape))));
            float[][] got = [y.ToArray(), x.Grad!.ToArray(), wt.Grad!.ToArray(), b.Grad!.ToArray()];
            if (first is null) { first = got; continue; }
            string[] names = ["y", "dx", "dW", "dbias"];
            for (int q = 0; q < got.Length; q++)
            {
                // Sums of up to a few hundred products of O(1) values: reassociation moves them by ~1e-6·|sum|.
                double scale = Math.Sqrt(first[q].Average(v => (double)v * v)) + 1e-3;
                OpCheck.AssertClose($"conv {path} vs {firstPath} {names[q]}", got[q],
                    first[q].Select(v => (double)v).ToArray(), 1e-5 * scale, 1e-5);
            }
        }
    }

    /// <summary>
    /// Convs with at most 4 output channels take the thin kernels on the AVX-512 path: the same per-element FMA
    /// chain over the same K order as the 16-row tiles, so the outputs are bit-identical to theirs.
    /// </summary>
    [TestCase(2, 6, 4, 32, 1, 3, 1)]    // 8 panels, 4 a step
    [TestCase(2, 5, 5, 48, 3, 3, 1)]    // 15 panels: the last step 3
    [TestCase(1, 400, 2, 16, 4, 3, 1)]  // Cin·9 = 3600: several K blocks (beta 1 after the first)
    [TestCase(2, 9, 2, 40, 2, 1, 0)]    // 1×1: 5 panels, the last step 1
    public void ThinConvsAreBitIdenticalToTheSixteenRowTiles(int n, int cin, int h, int w, int cout, int k, int pad)
    {
        if (Sgemm.BestPath != SgemmPath.Avx512) Assert.Ignore("no AVX-512 on this machine");
        var rng = new Rng((ulong)(n * 11 + cin * 3 + w + cout));
        var xd = new float[n * cin * h * w]; rng.FillNormal(xd);
        var wd = new float[cout * cin * k * k]; rng.FillNormal(wd);
        var bd = new float[cout]; rng.FillNormal(bd);
        var be = CpuBackend.Instance;
        var d = new ConvDesc(n, cin, h, w, cout, k, 1, pad, cin, cout);
        float[] Run(bool thin)
        {
            ConvDirect.ThinOn = thin;
            try
            {
                var (x, wt, b, y) = (be.Allocate(xd.Length), be.Allocate(wd.Length), be.Allocate(cout),
                    be.Allocate((long)n * cout * h * w));
                be.CopyIn(x, 0, xd); be.CopyIn(wt, 0, wd); be.CopyIn(b, 0, bd);
                be.Conv2dForward(d, x, wt, b, y);
                var got = new float[y.Length];
                be.CopyOut(y, 0, got);
                foreach (var buf in new[] { x, wt, b, y }) be.Free(buf);
                return got;
            }
            finally { ConvDirect.ThinOn = true; }
        }
        var thin = Run(true);
        Assert.That(thin, Is.EqualTo(Run(false)), "thin kernels vs 16-row tiles");
        Assert.That(thin.Count(v => v != 0f), Is.GreaterThan(thin.Length / 2), "a real output");
    }

    // (n, c, hw, scale-shift): GroupNorm(16) + SiLU, then attention with 32-channel heads over the hw² tokens. Rows
    // of 64 (16-lane loops only), 36 (16 + 16 + 4 scalars), 25 (16 + 8 + 1).
    [TestCase(2, 32, 8, false)]
    [TestCase(1, 64, 6, true)]
    [TestCase(2, 32, 5, true)]
    public void GroupNormAndAttentionAgreeAcrossPaths(int n, int c, int hw, bool scaleShift)
    {
        var rng = new Rng((ulong)(n * 13 + c * 7 + hw));
        var xd = new float[n * c * hw * hw]; rng.FillNormal(xd, 2f);
        var gd = new float[c]; rng.FillNormal(gd);
        var bd = new float[c]; rng.FillNormal(bd);
        var sd = new float[n * c]; rng.FillNormal(sd, 0.3f);
        var wd = new float[3 * c * c]; rng.FillNormal(wd, 1f / MathF.Sqrt(c));
        float[][]? first = null;
        foreach (var path in Paths())
        {
            Sgemm.Cap = path;
            var be = CpuBackend.Instance;
            using var scope = new TensorScope();
            var x = Tensor.FromArray(be, xd, n, c, hw, hw); x.RequiresGrad = true;
            var gamma = Tensor.FromArray(be, gd, c); gamma.RequiresGrad = true;
            var beta = Tensor.FromArray(be, bd, c); beta.RequiresGrad = true;
            var ss = Tensor.FromArray(be, sd, n, c); ss.RequiresGrad = true;
            var h = F.GroupNorm(x, gamma, beta, 16, 1e-5f, scaleShift ? ss : null, scaleShift ? ss : null, silu: true);
            // qkv = W·h per token (a 1×1 conv), then attention.
            var w = Tensor.FromArray(be, wd, 3 * c, c, 1, 1); w.RequiresGrad = true;
            var qkv = F.Conv2d(h, w, null, 3 * c, 1, 0).Reshape(n, 3 * c, hw * hw);
            var y = F.Attention(qkv, 32);
            var g = new float[y.Length]; new Rng(6).FillNormal(g);
            Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(be, g, y.Shape))));
            float[][] got = [h.ToArray(), y.ToArray(), x.Grad!.ToArray(), gamma.Grad!.ToArray(), beta.Grad!.ToArray(),
                ss.Grad?.ToArray() ?? [], w.Grad!.ToArray()];
            if (first is null) { first = got; continue; }
            string[] names = ["norm", "attention", "dx", "dγ", "dβ", "dscale+dshift", "dW"];
            for (int q = 0; q < got.Length; q++)
            {
                if (got[q].Length == 0) continue;   // no scale/shift
                // Outputs: reassociated sums, ~1e-6 of their RMS. Gradients: GroupNorm's dx subtracts two group means
                // from du, which cancels most of it, so the float rounding shows ~10× larger relative to the RMS.
                double scale = Math.Sqrt(first[q].Average(v => (double)v * v)) + 1e-3, tol = q < 2 ? 1e-5 : 1e-4;
                OpCheck.AssertClose($"{path} vs {Sgemm.BestPath} {names[q]}", got[q],
                    first[q].Select(v => (double)v).ToArray(), tol * scale, tol);
            }
        }
    }

    /// <summary>Every path this machine can run, best first.</summary>
    private static IEnumerable<SgemmPath> Paths()
    {
        for (var p = Sgemm.BestPath; p >= SgemmPath.Portable; p--) yield return p;
    }
}
