using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

// The shared op-family suites on the CPU backend (the oracle). One line per family; the same abstract
// fixtures run on CUDA (Gpu/GpuFixtures.cs) and on ILGPU's CPU accelerator (tests/Ddsm.Kernels.Tests).

[TestFixture]
public class AttentionOpTestsCpu : AttentionOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");

    [TearDown]
    public void Restore() => CpuBackend.FusedAttentionOn = true;

    /// <summary>
    /// The CPU forward's two forms against the float64 reference: by 16-query blocks (T a multiple of 16, 32-channel
    /// heads as in the UNet) and the whole-matrix form (switched off, or T = 40), plus their lse agreeing.
    /// </summary>
    [TestCase(64, true)]
    [TestCase(64, false)]
    [TestCase(48, true)]
    [TestCase(40, true)]
    public void ForwardFormsMatchTheReference(int t, bool blocks)
    {
        const int n = 2, heads = 2, d = 32;
        var r = new Rng((ulong)(t * 3 + (blocks ? 1 : 0)));
        var qkv = new float[n * 3 * heads * d * t];
        r.FillNormal(qkv, 0.6f);
        var be = CpuBackend.Instance;
        var desc = new AttentionDesc(n, heads, d, t);
        float[] Run(bool on, out float[] lse)
        {
            CpuBackend.FusedAttentionOn = on;
            var (x, y, l) = (be.Allocate(qkv.Length), be.Allocate(n * heads * d * t), be.Allocate(n * heads * t));
            be.CopyIn(x, 0, qkv);
            be.AttentionForward(desc, x, y, l);
            var outY = new float[n * heads * d * t];
            lse = new float[n * heads * t];
            be.CopyOut(y, 0, outY);
            be.CopyOut(l, 0, lse);
            foreach (var buf in new[] { x, y, l }) be.Free(buf);
            return outY;
        }
        var got = Run(blocks, out var lseGot);
        var want = Reference(qkv.Select(v => (double)v).ToArray(), n, heads, d, t);
        OpCheck.AssertClose($"attention T={t} {(blocks ? "blocks" : "whole")}", got, want, 1e-5, 1e-4);
        Run(!blocks, out var lseOther);
        OpCheck.AssertClose("lse of both forms", lseGot, lseOther.Select(v => (double)v).ToArray(), 1e-5, 1e-5);
    }
}

[TestFixture]
public class ComposedBackwardTestsCpu : ComposedBackwardTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class ConvOpTestsCpu : ConvOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class CrossEntropyOpTestsCpu : CrossEntropyOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class ElementwiseOpTestsCpu : ElementwiseOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class LinearOpTestsCpu : LinearOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class MatMulOpTestsCpu : MatMulOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class MiscOpTestsCpu : MiscOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class ResampleOpTestsCpu : ResampleOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class OptimTestsCpu : OptimTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class GroupNormOpTestsCpu : GroupNormOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");

    [Test]
    public void GradientsAreBitIdenticalForAnyThreadCount()
    {
        // dγ/dβ sum over samples from per-(n, c) partials in a fixed order, so the thread schedule
        // must not change a single bit (reload-and-continue training relies on it).
        var r = new Rng(23);
        int n = 6, c = 64, s = 16;
        var x = new float[n * c * s]; r.FillNormal(x);
        var gy = new float[n * c * s]; r.FillNormal(gy);
        var gamma = new float[c]; r.FillNormal(gamma);
        var beta = new float[c]; r.FillNormal(beta);
        var ss = new float[n * c]; r.FillNormal(ss);
        float[][] Run(int threads)
        {
            using var be = new CpuBackend { Threads = threads };
            using var scope = new TensorScope();
            var ts = new[] { x, gamma, beta, ss, ss }.Select((d, i) =>
            {
                var t = i == 0 ? Tensor.FromArray(be, d, n, c, 4, 4) : i < 3 ? Tensor.FromArray(be, d, c)
                    : Tensor.FromArray(be, d, n, c);
                t.RequiresGrad = true;
                return t;
            }).ToArray();
            var y = F.GroupNorm(ts[0], ts[1], ts[2], 16, 1e-5f, ts[3], ts[4], silu: true);
            Tape.Backward(F.Sum(F.Mul(y, Tensor.FromArray(be, gy, y.Shape))));
            return ts.Select(t => t.Grad!.ToArray()).Append(y.ToArray()).ToArray();
        }
        var one = Run(1);
        foreach (int threads in new[] { 2, 3 })
        {
            var many = Run(threads);
            for (int k = 0; k < one.Length; k++)
                Assert.That(many[k], Is.EqualTo(one[k]), $"output/gradient {k} with {threads} threads vs 1");
        }
    }
}

[TestFixture]
public class StepScalarOpTestsCpu : StepScalarOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}

[TestFixture]
public class TrainStepOpTestsCpu : TrainStepOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
}
