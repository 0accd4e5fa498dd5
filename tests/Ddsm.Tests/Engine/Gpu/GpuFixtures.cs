using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;

namespace Ddsm.Tests.Engine.Gpu;

/// <summary>
/// The CUDA device the GPU fixtures run on. Without one, the fixtures below are not generated at all
/// and <see cref="GpuDeviceTests.CudaDeviceIsPresent"/> says why, once (not once per test).
/// </summary>
public static class CudaDevice
{
    public static IlgpuBackend? Backend => IlgpuBackend.TryCuda(out _);

    public static string Reason
    {
        get
        {
            IlgpuBackend.TryCuda(out var reason);
            return reason;
        }
    }

    /// <summary>TestFixtureSource: one fixture on the CUDA device, or none.</summary>
    public static IEnumerable<TestFixtureData> Fixtures =>
        Backend is null ? [] : [new TestFixtureData().SetArgDisplayNames("cuda")];
}

[TestFixture]
public class GpuDeviceTests
{
    [Test]
    public void CudaDeviceIsPresent()
    {
        var b = CudaDevice.Backend;
        if (b is null) Assert.Ignore($"no CUDA device: {CudaDevice.Reason} (the CUDA op fixtures were not generated)");
        Assert.That(b!.IsCuda && b.Name.StartsWith("cuda:", StringComparison.Ordinal), Is.True, b.Name);
    }

    [Test]
    public void TryCudaGivesABackendOrAClearReasonOnce()
    {
        var b = IlgpuBackend.TryCuda(out var reason);
        if (b is null)
        {
            Assert.That(reason, Does.Contain("CUDA").Or.Contain("libcuda").Or.Contain("sm_80"), reason);
            Assert.That(IlgpuBackend.TryCuda(out var again), Is.Null);
            Assert.That(again, Is.EqualTo(reason), "the failure is remembered, not retried per fixture");
        }
        else Assert.That(IlgpuBackend.TryCuda(out _), Is.SameAs(b));
    }
}

// The shared suites on the CUDA device (generated only where there is one). One class per family.
[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class GpuKernelTestsCuda : GpuKernelTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class TrainStepKernelTestsCuda : TrainStepKernelTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class ElementwiseOpTestsCuda : ElementwiseOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class MatMulOpTestsCuda : MatMulOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class GroupNormOpTestsCuda : GroupNormOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class ResampleOpTestsCuda : ResampleOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class AttentionOpTestsCuda : AttentionOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class ConvOpTestsCuda : ConvOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class MiscOpTestsCuda : MiscOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class OptimTestsCuda : OptimTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class LinearOpTestsCuda : LinearOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class CrossEntropyOpTestsCuda : CrossEntropyOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class ComposedBackwardTestsCuda : ComposedBackwardTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class StepScalarOpTestsCuda : StepScalarOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}

[TestFixtureSource(typeof(CudaDevice), nameof(CudaDevice.Fixtures))]
public class TrainStepOpTestsCuda : TrainStepOpTests
{
    protected override (Backend?, string) MakeBackend() => (CudaDevice.Backend, CudaDevice.Reason);
}
