using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The CPU backend's Winograd F(2×2, 3×3) convolution (forward, data gradient, weight gradient) against a float64
/// direct convolution, on each SIMD path and on 1 and 2 threads, at shapes that reach each of its cases: row runs
/// of 8 tiles (16 on the AVX-512 path) and gathered patches, bands of 64 tiles, several small images per 16-tile
/// panel with a partial last group, two K blocks, slimmed weights. Each case first asserts that the shape takes the
/// Winograd path, so a change to its conditions cannot turn the test into one of the direct conv. Gradients
/// accumulate into random prior contents, as autograd's do; weight elements outside the active prefix must be
/// untouched.
/// </summary>
[TestFixture, NonParallelizable]
public class WinogradTests
{
    private static float[] Down(DeviceBuffer b) => Gpu.GpuKernelTests.Down(b);
    private static float[] Rand(Rng r, long n, float std = 1f) => Gpu.GpuKernelTests.Rand(r, n, std);
    private static float[] Delta(float[] after, float[] before) => Gpu.GpuKernelTests.Delta(after, before);

    [TearDown]
    public void Reset()
    {
        Sgemm.Cap = null;
        Winograd.On = Winograd.InPlaceOn = Winograd.Panels512On = true;
    }

    private static readonly ConvDesc[] Shapes =
    [
        new(N: 2, Cin: 96, H: 16, W: 32, Cout: 100, K: 3, Stride: 1, Pad: 1, CinMax: 96, CoutMax: 104), // 2 bands
        new(N: 3, Cin: 24, H: 8, W: 8, Cout: 20, K: 3, Stride: 1, Pad: 1, CinMax: 32, CoutMax: 24),     // gathered
        new(N: 5, Cin: 16, H: 4, W: 4, Cout: 32, K: 3, Stride: 1, Pad: 1, CinMax: 16, CoutMax: 32),     // 4 a panel
        new(N: 4, Cin: 400, H: 6, W: 10, Cout: 16, K: 3, Stride: 1, Pad: 1, CinMax: 400, CoutMax: 16),  // 2 K blocks
        new(N: 2, Cin: 100, H: 8, W: 48, Cout: 97, K: 3, Stride: 1, Pad: 1, CinMax: 100, CoutMax: 100), // 24-tile rows
        new(N: 3, Cin: 16, H: 2, W: 16, Cout: 16, K: 3, Stride: 1, Pad: 1, CinMax: 16, CoutMax: 16),    // half panels
        new(N: 2, Cin: 100, H: 12, W: 16, Cout: 96, K: 3, Stride: 1, Pad: 1, CinMax: 104, CoutMax: 100), // 2-row pnls
        new(N: 2, Cin: 96, H: 16, W: 8, Cout: 100, K: 3, Stride: 1, Pad: 1, CinMax: 96, CoutMax: 112),  // 4-row panels
    ];

    private static IEnumerable<TestCaseData> Cases()
    {
        var paths = new List<SgemmPath> { SgemmPath.Avx2 };
        if (Sgemm.BestPath == SgemmPath.Avx512) paths.Add(SgemmPath.Avx512);
        for (int i = 0; i < Shapes.Length; i++)
            foreach (var path in paths)
                foreach (int threads in new[] { 1, 2 })
                    yield return new TestCaseData(i, path, threads)
                        .SetArgDisplayNames($"{Shapes[i].N}x{Shapes[i].Cin}x{Shapes[i].H}x{Shapes[i].W}" +
                                            $"→{Shapes[i].Cout}", path.ToString(), $"{threads} threads");
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesFloat64Reference(int shape, SgemmPath path, int threads)
    {
        if (Sgemm.BestPath < SgemmPath.Avx2) Assert.Ignore("no SIMD path on this machine");
        var d = Shapes[shape];
        Sgemm.Cap = path;
        var dataDesc = new ConvDesc(d.N, d.Cout, d.H, d.W, d.Cin, 3, 1, 1, d.Cout, d.Cin);
        Assert.That(Winograd.Fits(d, path, threads) && Winograd.Fits(dataDesc, path, threads, Winograd.Kind.Data) &&
                    Winograd.Fits(d, path, threads, Winograd.Kind.Weight), Is.True,
            "the shape must take the Winograd path for the forward conv and both gradients");
        var r = new Rng(900 + (ulong)shape);
        var x = Rand(r, d.N * d.Cin * d.H * d.W);
        var w = Rand(r, d.CoutMax * d.CinMax * 9, 0.3f);
        var bias = Rand(r, d.CoutMax);
        var dy = Rand(r, d.N * d.Cout * d.H * d.W);
        var (y, dx, dw) = Reference(d, x, w, bias, dy);
        var dx0 = Rand(r, x.Length); var dw0 = Rand(r, w.Length);

        using var be = new CpuBackend { Threads = threads };
        var yb = be.Allocate(y.Length);
        var (xb, wb, bb, dyb, dxb, dwb) = (Up(be, x), Up(be, w), Up(be, bias), Up(be, dy), Up(be, dx0), Up(be, dw0));
        be.Conv2dForward(d, xb, wb, bb, yb);
        OpCheck.AssertClose("winograd forward", Down(yb), y, 1e-4, 1e-3);
        be.Conv2dBackwardData(d, dyb, wb, dxb);
        OpCheck.AssertClose("winograd dx (accumulated)", Delta(Down(dxb), dx0), dx, 1e-3, 1e-3);
        be.Conv2dBackwardWeight(d, xb, dyb, dwb, null);
        var dwGot = Down(dwb);
        OpCheck.AssertClose("winograd dw (accumulated)", Delta(dwGot, dw0), dw, 1e-3, 1e-3);
        for (int i = 0; i < w.Length; i++)
        {
            int co = i / (d.CinMax * 9), ci = i / 9 % d.CinMax;
            if (co >= d.Cout || ci >= d.Cin)
                Assert.That(dwGot[i], Is.EqualTo(dw0[i]), $"dw[{i}] outside the active prefix must be untouched");
        }
        foreach (var buf in new[] { yb, xb, wb, bb, dyb, dxb, dwb }) be.Free(buf);
    }

    /// <summary>
    /// Row runs read x in place, with masked loads at the image's edges and zero rows above and below it: the same
    /// values the bordered copy held, through the same per-lane arithmetic, so the outputs are bit-identical.
    /// </summary>
    [TestCase(2, 32, 16, 32)]   // 16-tile runs on the AVX-512 path (both edges in one run), 8-tile runs on AVX2
    [TestCase(2, 32, 8, 64)]    // two 16-tile runs a row: one edge each
    [TestCase(3, 16, 2, 16)]    // 8-tile runs, two images a panel, a half-empty last panel
    public void InPlaceRowRunsMatchTheBorderedCopy(int n, int c, int h, int w)
    {
        var d = new ConvDesc(n, c, h, w, c, 3, 1, 1, c, c);
        var r = new Rng((ulong)(n * 100 + h * 10 + w));
        var x = Rand(r, d.N * d.Cin * d.H * d.W);
        var wt = Rand(r, d.CoutMax * d.CinMax * 9, 0.3f);
        using var be = new CpuBackend { Threads = 2 };
        var (xb, wb) = (Up(be, x), Up(be, wt));
        foreach (var path in new[] { Sgemm.BestPath, SgemmPath.Avx2 }.Distinct())
        {
            Sgemm.Cap = path;
            Assert.That(Winograd.Fits(d, path, be.Threads), Is.True, "the shape must take the Winograd path");
            Winograd.InPlaceOn = true;
            var inPlace = Forward(be, d, xb, wb);
            Winograd.InPlaceOn = false;
            Assert.That(inPlace, Is.EqualTo(Forward(be, d, xb, wb)), $"{path}: in place vs bordered copy");
            Assert.That(inPlace.Count(v => v != 0f), Is.GreaterThan(inPlace.Length / 2), "a real output");
        }
        be.Free(xb); be.Free(wb);
    }

    /// <summary>
    /// On the AVX-512 path, 16-tile panels of 2 (W = 16) or 4 (W = 8) tile rows read x in place and permute each
    /// patch column out of two zmm: the values and per-lane arithmetic of the 8-tile runs and gathered patches they
    /// replaced, so forward (with bias) and data gradient (flipped weight, accumulated) are bit-identical to them.
    /// </summary>
    [TestCase(2, 32, 16, 16)]   // 4 panels an image: top, middle, bottom tile rows
    [TestCase(3, 16, 4, 16)]    // one panel an image: both the top and the bottom edge
    [TestCase(2, 24, 8, 8)]     // 8×8: the whole image one panel
    [TestCase(2, 32, 24, 8)]    // three panels of four tile rows
    public void TileRowPanelsMatchTheEightLaneForms(int n, int c, int h, int w)
    {
        if (Sgemm.BestPath != SgemmPath.Avx512) Assert.Ignore("no AVX-512 on this machine");
        var d = new ConvDesc(n, c, h, w, c + 16, 3, 1, 1, c, c + 16);
        var r = new Rng((ulong)(n * 1000 + h * 10 + w));
        var x = Rand(r, d.N * d.Cin * d.H * d.W);
        var wt = Rand(r, d.CoutMax * d.CinMax * 9, 0.3f);
        var bias = Rand(r, d.CoutMax);
        var dy = Rand(r, d.N * d.Cout * d.H * d.W);
        var dx0 = Rand(r, x.Length);
        using var be = new CpuBackend { Threads = 2 };
        var (xb, wb, bb, dyb) = (Up(be, x), Up(be, wt), Up(be, bias), Up(be, dy));
        var dataDesc = new ConvDesc(d.N, d.Cout, d.H, d.W, d.Cin, 3, 1, 1, d.Cout, d.Cin);
        Assert.That(Winograd.Fits(d, SgemmPath.Avx512, be.Threads) &&
                    Winograd.Fits(dataDesc, SgemmPath.Avx512, be.Threads, Winograd.Kind.Data), Is.True,
            "the shape must take the Winograd path forward and backward");
        (float[] y, float[] dx) Run(bool panels)
        {
            Winograd.Panels512On = panels;
            var yb = be.Allocate((long)d.N * d.Cout * d.H * d.W);
            var dxb = Up(be, dx0);
            be.Conv2dForward(d, xb, wb, bb, yb);
            be.Conv2dBackwardData(d, dyb, wb, dxb);
            var res = (Down(yb), Down(dxb));
            be.Free(yb); be.Free(dxb);
            return res;
        }
        var (yPanels, dxPanels) = Run(true);
        var (y8, dx8) = Run(false);
        Assert.That(yPanels, Is.EqualTo(y8), "forward: panels vs 8-lane forms");
        Assert.That(dxPanels, Is.EqualTo(dx8), "data gradient: panels vs 8-lane forms");
        Assert.That(yPanels.Count(v => v != 0f), Is.GreaterThan(yPanels.Length / 2), "a real output");
        foreach (var buf in new[] { xb, wb, bb, dyb }) be.Free(buf);
    }

    /// <summary>y = conv(x, w) without bias, copied out.</summary>
    private static float[] Forward(CpuBackend be, ConvDesc d, DeviceBuffer xb, DeviceBuffer wb)
    {
        var yb = be.Allocate((long)d.N * d.Cout * d.H * d.W);
        be.Conv2dForward(d, xb, wb, null, yb);
        var y = Down(yb);
        be.Free(yb);
        return y;
    }

    /// <summary>The Winograd and the direct conv agree closely (both are float32 sums of the same products).</summary>
    [Test]
    public void AgreesWithTheDirectConv()
    {
        var d = new ConvDesc(N: 4, Cin: 64, H: 16, W: 16, Cout: 64, K: 3, Stride: 1, Pad: 1, CinMax: 64, CoutMax: 64);
        var r = new Rng(950);
        var x = Rand(r, d.N * d.Cin * d.H * d.W);
        var w = Rand(r, d.CoutMax * d.CinMax * 9, 0.2f);
        using var be = new CpuBackend { Threads = 2 };
        var (xb, wb) = (Up(be, x), Up(be, w));
        Winograd.On = false;
        var direct = Forward(be, d, xb, wb);
        Winograd.On = true;
        var wino = Forward(be, d, xb, wb);
        OpCheck.AssertClose("winograd vs direct", wino, direct.Select(v => (double)v).ToArray(), 1e-4, 1e-4);
        Assert.That(wino, Is.Not.EqualTo(direct),
            "the two paths are different sums: bit-equal means one path ran twice");
    }

    private static (double[] y, double[] dx, double[] dw) Reference(ConvDesc d, float[] x, float[] w, float[] bias,
        float[] dy)
    {
        var y = new double[d.N * d.Cout * d.H * d.W];
        var dx = new double[x.Length]; var dw = new double[w.Length];
        for (int n = 0; n < d.N; n++)
        for (int co = 0; co < d.Cout; co++)
        for (int ho = 0; ho < d.H; ho++)
        for (int wo = 0; wo < d.W; wo++)
        {
            int yi = ((n * d.Cout + co) * d.H + ho) * d.W + wo;
            double s = bias[co], g = dy[yi];
            for (int ci = 0; ci < d.Cin; ci++)
            for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++)
            {
                int h = ho - 1 + kh, ww = wo - 1 + kw;
                if (h < 0 || h >= d.H || ww < 0 || ww >= d.W) continue;
                int xi = ((n * d.Cin + ci) * d.H + h) * d.W + ww, wi = (co * d.CinMax + ci) * 9 + kh * 3 + kw;
                s += (double)x[xi] * w[wi];
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
            }
            y[yi] = s;
        }
        return (y, dx, dw);
    }

    private static DeviceBuffer Up(Backend be, float[] a)
    {
        var b = be.Allocate(a.Length);
        be.CopyIn(b, 0, a);
        return b;
    }
}
