using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.Tests.Engine;
using Ddsm.Tests.Engine.Gpu;

namespace Ddsm.Kernels.Tests;

// The shared suites on ILGPU's CPU accelerator: the GPU kernels, compiled by ILGPU, run as .NET code
// with one OS thread per lane. Small shapes (BackendFixture.Small): every launch costs milliseconds
// to seconds here.

[TestFixture]
public class GpuKernelTestsIlgpuCpu : GpuKernelTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class ConvOpTestsIlgpuCpu : ConvOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}
