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
    public void WritesOnePtxFilePerCatalogKernel()
    {
        var dir = Path.Combine(Shared.Root, "ptx-sm80");
        var r = Ddsm.Ok("kernels", "--ptx", dir, "--arch", "sm_80");
        int count = KernelCatalog.All.Count;
        Assert.That(r.Out, Does.Contain($"wrote {count} PTX files for sm_80 to {dir}"));
        var files = Directory.GetFiles(dir, "*.ptx");
        Assert.That(files.Select(Path.GetFileNameWithoutExtension),
            Is.EquivalentTo(KernelCatalog.All.Select(e => e.Name)));
        Assert.That(File.ReadAllText(files[0]), Does.Contain(".target sm_80"), "ILGPU's PTX for the architecture");
    }

    [Test]
    public void AnEmptyArchitectureListIsAOneLineError()
    {
        var r = Ddsm.Run("kernels", "--ptx", Path.Combine(Shared.Root, "ptx"), "--arch", ",");
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err.Trim(), Is.EqualTo("error: --arch: no architecture given"));
    }
}
