using System.Text.RegularExpressions;
using Ddsm.Engine.Cuda;

namespace Ddsm.Tests.Engine.Cuda;

/// <summary>
/// What can be checked about the CUDA backend without a GPU: library discovery and its error
/// messages, the kernel cache key, that every kernel source is embedded, that every kernel name the
/// C# side launches exists in its .cu file, and the allocator's bucket sizes.
/// </summary>
[TestFixture]
public class CudaInteropTests
{
    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, "kernels")) && Directory.Exists(Path.Combine(d.FullName, "src", "Ddsm.Engine")))
                return d.FullName;
        Assert.Ignore("repository root (with kernels/) not found above the test binaries");
        return "";
    }

    [Test]
    public void BogusNvrtcOverrideIsTheOnlyCandidateAndFailsByName()
    {
        const string bogus = "/nonexistent/ddsm-test/libnvrtc.so.99";
        var c = NativeLibs.NvrtcCandidates(k => k == "DDSM_NVRTC" ? bogus : null);
        Assert.That(c, Is.EqualTo(new[] { bogus }), "an explicit override must not fall back to other libraries");
        var ex = Assert.Throws<CudaException>(() => NativeLibs.LoadFirst("NVRTC library (libnvrtc)", c, "set DDSM_NVRTC"));
        Assert.That(ex!.Message, Does.StartWith("NVRTC library (libnvrtc) not found: tried " + bogus)
            .And.Contain("Fix: set DDSM_NVRTC"));
    }

    [Test]
    public void NvrtcSearchOrderWithoutOverride()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-cuda-path");
        try
        {
            Directory.CreateDirectory(Path.Combine(dir.FullName, "lib64"));
            File.WriteAllText(Path.Combine(dir.FullName, "lib64", "libnvrtc.so.12.8.61"), new string('x', 4096));
            File.WriteAllText(Path.Combine(dir.FullName, "lib64", "libnvrtc-builtins.so.12.8"), "not an ELF");
            var c = NativeLibs.NvrtcCandidates(k => k == "CUDA_PATH" ? dir.FullName : null);
            Assert.That(c.Take(2), Is.EqualTo(new[] { "libnvrtc.so.13", "libnvrtc.so.12" }));
            Assert.That(c.Skip(2), Is.EqualTo(new[] { Path.Combine(dir.FullName, "lib64", "libnvrtc.so.12.8.61") }),
                "then $CUDA_PATH/lib64/libnvrtc.so*, without the builtins library");
            // A file that is not a loadable library is reported, not crashed on.
            var ex = Assert.Throws<CudaException>(() => NativeLibs.LoadFirst("NVRTC library (libnvrtc)", c.Skip(2).ToList(), "x"));
            Assert.That(ex!.Message, Does.Contain("libnvrtc.so.12.8.61 (invalid ELF header)"));
        }
        finally { dir.Delete(true); }
    }

    [Test]
    public void MissingDriverErrorNamesLibcuda()
    {
        Assert.That(NativeLibs.DriverCandidates()[0], Is.EqualTo("libcuda.so.1"));
        var ex = Assert.Throws<CudaException>(() =>
            NativeLibs.LoadFirst("CUDA driver libcuda.so.1", ["/nonexistent/libcuda.so.1"], "install the NVIDIA driver"));
        Assert.That(ex!.Message, Does.StartWith("CUDA driver libcuda.so.1 not found: tried /nonexistent/libcuda.so.1 (cannot open shared object file"));
        Assert.That(ex.Call, Is.EqualTo("load"));
    }

    [Test]
    public void TryCreateGivesABackendOrAClearReason()
    {
        var b = CudaBackend.TryCreate(out var reason);
        if (b is null)
        {
            Assert.That(reason, Is.Not.Empty);
            Assert.That(reason, Does.Contain("CUDA").Or.Contain("NVRTC").Or.Contain("cu"), reason);
            Assert.That(CudaBackend.TryCreate(out var again), Is.Null);
            Assert.That(again, Is.EqualTo(reason), "the failure is remembered, not retried per fixture");
        }
        else
        {
            Assert.That(b.Arch, Does.Match(@"^sm_\d+$"));
            Assert.That(CudaBackend.TryCreate(out _), Is.SameAs(b));
        }
    }

    [Test]
    public void CudaExceptionNamesCallAndError()
    {
        var e = new CudaException("cuModuleLoadData(conv.cu)", 200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid");
        Assert.That(e.Message, Is.EqualTo("cuModuleLoadData(conv.cu) failed: CUDA_ERROR_INVALID_IMAGE (200): device kernel image is invalid"));
        var oom = new CudaOutOfMemoryException(3L << 30, 1L << 30, 80L << 30, 512L << 20);
        Assert.That(oom.Message, Does.Contain("out of memory").And.Contain("3072.0 MiB").And.Contain("1024.0 MiB (1073741824 bytes) free of 81920.0 MiB")
            .And.Contain("releasing 512.0 MiB"));
        Assert.That(oom, Is.InstanceOf<CudaException>());
    }

    [Test]
    public void CacheKeyChangesWithEveryInput()
    {
        (string, string)[] h = [("common.cuh", "#pragma once\n")];
        string[] o = ["--gpu-architecture=sm_90", "-std=c++17"];
        string k = KernelCache.Key("src", h, "sm_90", o, "12.8");
        Assert.That(k, Does.Match("^[0-9a-f]{64}$"));
        Assert.That(KernelCache.Key("src", h, "sm_90", o, "12.8"), Is.EqualTo(k), "deterministic");
        var others = new[]
        {
            KernelCache.Key("src ", h, "sm_90", o, "12.8"),
            KernelCache.Key("src", [("common.cuh", "#pragma once \n")], "sm_90", o, "12.8"),
            KernelCache.Key("src", [("other.cuh", "#pragma once\n")], "sm_90", o, "12.8"),
            KernelCache.Key("src", h, "sm_80", o, "12.8"),
            KernelCache.Key("src", h, "sm_90", ["--gpu-architecture=sm_90", "-std=c++17", "--use_fast_math"], "12.8"),
            KernelCache.Key("src", h, "sm_90", o, "13.0"),
            // text moved between fields must not collide
            KernelCache.Key("", [("common.cuh", "#pragma once\nsrc")], "sm_90", o, "12.8"),
        };
        Assert.That(others, Has.None.EqualTo(k));
        Assert.That(others.Distinct().Count(), Is.EqualTo(others.Length));
    }

    [Test]
    public void CacheStoresAndLoadsAtomically()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-kcache");
        var old = Environment.GetEnvironmentVariable("DDSM_KERNEL_CACHE");
        try
        {
            Environment.SetEnvironmentVariable("DDSM_KERNEL_CACHE", dir.FullName);
            var key = new string('a', 64);
            Assert.That(KernelCache.TryLoad(key), Is.Null);
            KernelCache.Store(key, [1, 2, 3, 250]);
            Assert.That(KernelCache.TryLoad(key), Is.EqualTo(new byte[] { 1, 2, 3, 250 }));
            Assert.That(Directory.GetFiles(dir.FullName).Select(Path.GetFileName), Is.EqualTo(new[] { key + ".cubin" }), "no temp files left");
        }
        finally
        {
            Environment.SetEnvironmentVariable("DDSM_KERNEL_CACHE", old);
            dir.Delete(true);
        }
    }

    [Test]
    public void EveryKernelSourceIsEmbeddedVerbatim()
    {
        var dir = Path.Combine(RepoRoot(), "kernels");
        var onDisk = Directory.GetFiles(dir, "*.cu").Concat(Directory.GetFiles(dir, "*.cuh"))
            .Select(Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToList();
        Assert.That(onDisk, Has.Count.GreaterThanOrEqualTo(7));
        Assert.That(KernelSources.Names(), Is.EqualTo(onDisk));
        foreach (var f in onDisk)
            Assert.That(KernelSources.Read(f!), Is.EqualTo(File.ReadAllText(Path.Combine(dir, f!))), f);
        Assert.That(KernelSources.Headers().Select(h => h.Name), Is.EquivalentTo(onDisk.Where(n => n!.EndsWith(".cuh"))));
    }

    [Test]
    public void EveryKernelFileHasAHeaderCommentAndEntryPoints()
    {
        foreach (var f in KernelSources.Names())
        {
            var src = KernelSources.Read(f);
            Assert.That(src, Does.StartWith("// " + f + " — "), $"{f}: header comment saying what it is");
            if (f.EndsWith(".cu")) Assert.That(src, Does.Contain("extern \"C\" __global__"), f);
        }
    }

    private static readonly Regex EntryPoint = new(@"extern ""C"" __global__ void (?:__launch_bounds__\([^)]*\) )?(\w+)\s*\(");

    [Test]
    public void EveryLaunchedKernelNameExists()
    {
        var kernels = KernelSources.Names().Where(n => n.EndsWith(".cu"))
            .SelectMany(n => EntryPoint.Matches(KernelSources.Read(n)).Select(m => m.Groups[1].Value)).ToHashSet();
        Assert.That(kernels, Does.Contain("gemm_tf32").And.Contain("attn_bwd_q_d128"));
        var cs = Directory.GetFiles(Path.Combine(RepoRoot(), "src", "Ddsm.Engine", "Cuda"), "CudaBackend*.cs");
        var launched = new List<string>();
        foreach (var file in cs)
            foreach (var line in File.ReadLines(file).Where(l => l.Contains("Launch(")))
                launched.AddRange(Regex.Matches(line, "\"([a-z0-9_]+)\"").Select(m => m.Groups[1].Value));
        Assert.That(launched, Has.Count.GreaterThan(20));
        foreach (var name in launched)
        {
            bool ok = kernels.Contains(name)
                      || (kernels.Contains(name + "_f32") && kernels.Contains(name + "_tf32"))
                      || (kernels.Contains(name + "_d64") && kernels.Contains(name + "_d128"));
            Assert.That(ok, $"C# launches '{name}' but no kernels/*.cu defines it (or its _f32/_tf32, _d64/_d128 variants)");
        }
    }

    [Test]
    public void AllocatorBucketsBoundWasteAndAlign()
    {
        long prev = 0;
        var rng = new Ddsm.Engine.Rng(5);
        var sizes = Enumerable.Range(0, 2000).Select(_ => (long)rng.NextInt(1 << 28)).Concat([0L, 1, 512, 513, 4096, 1L << 34]).Order();
        foreach (var s in sizes)
        {
            long b = DeviceAllocator.Bucket(s);
            Assert.That(b, Is.GreaterThanOrEqualTo(Math.Max(s, 1)), $"bucket of {s}");
            Assert.That(b % 512, Is.EqualTo(0), $"bucket of {s} keeps 512-byte alignment");
            long ceil512 = Math.Max(512, (s + 511) / 512 * 512);   // the granularity floor
            Assert.That(b, Is.LessThanOrEqualTo(Math.Max(ceil512, s + s / 4 + 1)), $"bucket of {s} wastes > 25%");
            Assert.That(b, Is.GreaterThanOrEqualTo(prev), "monotone");
            prev = b;
        }
        Assert.That(DeviceAllocator.Bucket(1000), Is.EqualTo(DeviceAllocator.Bucket(1024)), "nearby sizes share a bucket");
    }

    [Test]
    public void KernelArgsPackValuesInOrder()
    {
        var a = new KernelArgs().I32(-3).I64(1L << 40).F32(1.5f).U64(0xDEADBEEFCAFEUL).Ptr(null);
        Assert.That(a.Count, Is.EqualTo(5));
        Assert.That(a.Get<int>(0), Is.EqualTo(-3));
        Assert.That(a.Get<long>(1), Is.EqualTo(1L << 40));
        Assert.That(a.Get<float>(2), Is.EqualTo(1.5f));
        Assert.That(a.Get<ulong>(3), Is.EqualTo(0xDEADBEEFCAFEUL));
        Assert.That(a.Get<ulong>(4), Is.EqualTo(0UL), "a null buffer is passed as a null device pointer");
    }
}
