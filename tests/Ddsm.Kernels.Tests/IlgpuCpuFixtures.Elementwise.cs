using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.Tests.Engine;

namespace Ddsm.Kernels.Tests;

// The shared op suites that need only the element-wise, reduction, resampling, embedding, dropout, Adam
// and GEMM kernels, on ILGPU's CPU accelerator (Small shapes: every launch costs milliseconds here).

[TestFixture]
public class ElementwiseOpTestsIlgpuCpu : ElementwiseOpTests
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
public class MatMulOpTestsIlgpuCpu : MatMulOpTests
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
public class CrossEntropyOpTestsIlgpuCpu : CrossEntropyOpTests
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
