using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

// The shared op-family suites on the CPU backend (the oracle). One line per family; the same abstract
// fixtures run on CUDA (Gpu/GpuFixtures.cs) and on ILGPU's CPU accelerator (tests/Ddsm.Kernels.Tests).

[TestFixture]
public class AttentionOpTestsCpu : AttentionOpTests
{
    protected override (Backend?, string) MakeBackend() => (CpuBackend.Instance, "");
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
