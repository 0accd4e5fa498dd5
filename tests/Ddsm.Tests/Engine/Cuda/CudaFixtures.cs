using Ddsm.Engine;
using Ddsm.Engine.Cuda;

namespace Ddsm.Tests.Engine.Cuda;

/// <summary>How every CUDA fixture gets its device: the shared backend, or Ignored with the reason.</summary>
internal static class CudaTestBackend
{
    public static (Backend?, string) Make()
    {
        var b = CudaBackend.TryCreate(out var reason);
        if (b is null) return (null, "no CUDA device: " + reason);
        b.ExactFp32 = true;   // op tests compare with float64 references at float tolerances
        return (b, "");
    }
}

// The shared op-family suites, run on CUDA. One line per family; add the others as they land:
//   [TestFixture] public class XOpTestsCuda : XOpTests { protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make(); }

[TestFixture]
public class ElementwiseOpTestsCuda : ElementwiseOpTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}

[TestFixture]
public class MatMulOpTestsCuda : MatMulOpTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}

[TestFixture]
public class GroupNormOpTestsCuda : GroupNormOpTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}

[TestFixture]
public class ResampleOpTestsCuda : ResampleOpTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}

[TestFixture]
public class AttentionOpTestsCuda : AttentionOpTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}

[TestFixture]
public class ConvOpTestsCuda : ConvOpTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}

[TestFixture]
public class MiscOpTestsCuda : MiscOpTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}

[TestFixture]
public class OptimTestsCuda : OptimTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}

[TestFixture]
public class LinearOpTestsCuda : LinearOpTests
{
    protected override (Backend?, string) MakeBackend() => CudaTestBackend.Make();
}
