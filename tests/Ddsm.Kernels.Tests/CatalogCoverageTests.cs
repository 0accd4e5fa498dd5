using System.Reflection;
using Ddsm.Tests.Engine;

namespace Ddsm.Kernels.Tests;

/// <summary>
/// Every kernel entry point and specialisation in the catalog is named by a [Covers] test of this suite;
/// BackendFixture's TearDown checks that each such test really launched what it names. Together: every
/// GPU kernel runs on ILGPU's CPU accelerator, against a reference, in every `dotnet test`.
/// </summary>
[TestFixture]
public class CatalogCoverageTests
{
    private static IEnumerable<(string Test, string Kernel)> Claims() =>
        typeof(CatalogCoverageTests).Assembly.GetTypes()
            .Where(t => t is { IsAbstract: false } && t.GetCustomAttribute<TestFixtureAttribute>() is not null)
            .SelectMany(t => t.GetMethods().Select(m => (t, m)))
            .SelectMany(tm => tm.m.GetCustomAttributes<CoversAttribute>(true)
                .SelectMany(c => c.Kernels).Select(k => ($"{tm.t.Name}.{tm.m.Name}", k)));

    [Test]
    public void EveryCatalogKernelIsCoveredByATest()
    {
        var covered = Claims().Select(c => c.Kernel).ToHashSet();
        var missing = KernelCatalog.All.Select(e => e.Name).Where(n => !covered.Contains(n)).ToList();
        Assert.That(missing, Is.Empty, "catalog kernels no conformance test runs");
    }

    [Test]
    public void EveryCoverClaimNamesACatalogKernel()
    {
        var names = KernelCatalog.All.Select(e => e.Name).ToHashSet();
        var bad = Claims().Where(c => !names.Contains(c.Kernel)).Select(c => $"{c.Test}: {c.Kernel}").ToList();
        Assert.That(bad, Is.Empty, "[Covers] names that are not catalog kernels");
    }

    [Test]
    public void CatalogEntriesAreLaunchableKernels()
    {
        foreach (var e in KernelCatalog.All)
        {
            var p = e.Method.GetParameters();
            Assert.That(e.Method.IsStatic && p.Length == 1 && p[0].ParameterType == e.ArgsType, Is.True,
                $"{e.Name}: a kernel is a static method taking its one argument struct ({e.ArgsType.Name})");
            Assert.That(e.Summary, Is.Not.Empty, $"{e.Name}: summary");
        }
    }
}
