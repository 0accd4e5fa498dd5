using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.Tests.Engine;

namespace Ddsm.Kernels.Tests;

// The shared attention op suite (autograd through OpCheck) on ILGPU's CPU accelerator, small shapes.
// It also needs the element-wise kernels that autograd composes around the attention op.

[TestFixture]
public class AttentionOpTestsIlgpuCpu : AttentionOpTests
{
    protected override (Backend?, string) MakeBackend() => (IlgpuBackend.CpuAccelerator, "");
    protected override bool Small => true;
}
