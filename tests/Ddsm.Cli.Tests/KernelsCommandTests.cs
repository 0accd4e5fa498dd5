using Ddsm.Kernels;

namespace Ddsm.Cli.Tests;

public class KernelsCommandTests
{
    [Test]
    public void ListsEveryCatalogKernel()
    {
        var r = Ddsm.Ok("kernels");
        int count = KernelCatalog.All.Count;
        Assert.That(r.Out, Does.Contain($"{count} kernels; `ddsm kernels --ptx DIR --arch sm_90` writes their PTX"));
        Assert.That(r.Out, Does.Contain(KernelCatalog.All[0].Name));
    }

    [Test]
    public void AnEmptyArchitectureListIsAOneLineError()
    {
        var r = Ddsm.Run("kernels", "--ptx", Path.Combine(Shared.Root, "ptx"), "--arch", ",");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err.Trim(), Is.EqualTo("error: --arch: no architecture given"));
    }
}
