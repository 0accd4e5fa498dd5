using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.Tests.Engine;
using Ddsm.Tests.Engine.Gpu;

namespace Ddsm.Kernels.Tests;

// The shared suites on ILGPU's CPU accelerator: the GPU kernels, compiled by ILGPU, run as .NET code
// with one OS thread per lane. Small shapes (BackendFixture.Small): every barrier and shuffle of every
// group wakes one OS thread per lane, so a launch costs milliseconds to a second here. One class per
// suite; the same suites run on the CPU backend (tests/Ddsm.Tests/Engine/CpuFixtures.cs) and on CUDA
// where there is a GPU (tests/Ddsm.Tests/Engine/Gpu/GpuFixtures.cs).

[TestFixture]
public class AttentionOpTestsIlgpuCpu : AttentionOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class ComposedBackwardTestsIlgpuCpu : ComposedBackwardTests
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

[TestFixture]
public class CrossEntropyOpTestsIlgpuCpu : CrossEntropyOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class ElementwiseOpTestsIlgpuCpu : ElementwiseOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class GpuKernelTestsIlgpuCpu : GpuKernelTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class GroupNormOpTestsIlgpuCpu : GroupNormOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class LinearOpTestsIlgpuCpu : LinearOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class MatMulOpTestsIlgpuCpu : MatMulOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class MiscOpTestsIlgpuCpu : MiscOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class OptimTestsIlgpuCpu : OptimTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class ResampleOpTestsIlgpuCpu : ResampleOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class TrainStepKernelTestsIlgpuCpu : TrainStepKernelTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class StepScalarOpTestsIlgpuCpu : StepScalarOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}

[TestFixture]
public class TrainStepOpTestsIlgpuCpu : TrainStepOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}
