using System.Text.RegularExpressions;
using Ddsm.Engine;
using Ddsm.Engine.Cuda;

namespace Ddsm.Tests.Engine.Cuda;

/// <summary>
/// Without a GPU, drives every Backend member of a dry-run CudaBackend (launches recorded, not run)
/// and checks each launch against the kernel's C signature parsed from kernels/*.cu: the argument
/// count and types (pointer / int / i64 / float / u32 / u64 / struct size), the block size against
/// __launch_bounds__, non-empty grids within CUDA's limits, and dynamic shared memory. A mismatch
/// here would be silent garbage on a GPU (cuLaunchKernel cannot check argument types).
/// </summary>
[TestFixture]
public class CudaLaunchSignatureTests
{
    private sealed record Sig(string File, string[] Params, int? LaunchBounds);

    private static readonly Regex KernelRe = new(
        @"extern ""C"" __global__ void (?:__launch_bounds__\((\w+)\) )?(\w+)\s*\(([^)]*)\)", RegexOptions.Singleline);

    private static Dictionary<string, Sig> Signatures()
    {
        var all = new Dictionary<string, Sig>();
        var defines = new Dictionary<string, int>();
        foreach (var f in KernelSources.Names())
            foreach (Match m in Regex.Matches(KernelSources.Read(f), @"#define (\w+) (\d+)\b"))
                defines[m.Groups[1].Value] = int.Parse(m.Groups[2].Value);
        foreach (var f in KernelSources.Names().Where(n => n.EndsWith(".cu")))
            foreach (Match m in KernelRe.Matches(KernelSources.Read(f)))
            {
                int? lb = m.Groups[1].Success ? defines.GetValueOrDefault(m.Groups[1].Value, int.TryParse(m.Groups[1].Value, out var v) ? v : -1) : null;
                var ps = m.Groups[3].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                all[m.Groups[2].Value] = new Sig(f, ps, lb);
            }
        return all;
    }

    /// <summary>Size of a struct declared in the kernels (int/float 4 bytes, i64 8, C alignment rules).</summary>
    private static int StructSize(string name)
    {
        foreach (var f in KernelSources.Names())
        {
            var m = Regex.Match(KernelSources.Read(f), @"struct " + name + @"\s*\{([^}]*)\}");
            if (!m.Success) continue;
            int off = 0, align = 1;
            foreach (var decl in m.Groups[1].Value.Split(';').Select(d => Regex.Replace(d, @"//.*", "").Trim()).Where(d => d.Length > 0))
            {
                var parts = decl.Split(' ', 2);
                int size = parts[0] switch { "int" or "float" or "u32" => 4, "i64" or "u64" => 8, _ => throw new InvalidOperationException(decl) };
                foreach (var _ in parts[1].Split(','))
                {
                    off = (off + size - 1) / size * size + size;
                    align = Math.Max(align, size);
                }
            }
            return (off + align - 1) / align * align;
        }
        throw new InvalidOperationException($"struct {name} not found in kernels/");
    }

    private static string Tag(string param)
    {
        var p = Regex.Replace(param, @"\b(const|__restrict__)\b", "").Trim();
        if (p.Contains('*')) return "P";
        var type = p.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        return type switch
        {
            "int" => "i", "i64" => "l", "float" => "f", "u32" => "u", "u64" => "U",
            _ => "S" + StructSize(type),
        };
    }

    private static List<CudaBackend.LaunchRecord> Drive()
    {
        var rec = new List<CudaBackend.LaunchRecord>();
        using var be = CudaBackend.DryRun(rec.Add);
        DeviceBuffer Buf(long n) => be.Allocate(n);
        var x = Buf(1 << 20);
        foreach (var exact in new[] { true, false })
        {
            be.ExactFp32 = exact;
            be.Gemm(new GemmDesc(true, false, 70, 45, 33, 1f, 0.5f, 1, 70, 2, 45, 3, 45, 2, 4000, 4000, 4000), x, x, x);
            var cd = new ConvDesc(2, 5, 9, 11, 67, 3, 2, 1, 7, 70);
            be.Conv2dForward(cd, x, x, x, x); be.Conv2dForward(cd, x, x, null, x);
            be.Conv2dBackwardData(cd, x, x, x);
            be.Conv2dBackwardWeight(cd, x, x, x, x);
        }
        foreach (var silu in new[] { true, false })
        {
            var gd = new GroupNormDesc(2, 64, 100, 16, 128, 1e-5f, silu);
            be.GroupNormForward(gd, x, x, x, x, x, x, x, x);
            be.GroupNormForward(gd, x, x, x, null, null, x, x, x);
            be.GroupNormBackward(gd, x, x, x, x, x, x, x, x, x, x, x, x, x);
            be.GroupNormBackward(gd, x, x, x, null, null, x, x, x, x, null, null, null, null);
        }
        foreach (var hd in new[] { 32, 64, 96, 128 })
        {
            var ad = new AttentionDesc(2, 4, hd, 256);
            be.AttentionForward(ad, x, x, x);
            be.AttentionBackward(ad, x, x, x, x, x);
        }
        be.Axpby(x, x, 1000, 2f, 0f);
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            be.Binary(op, x, x, x, 1000);
            be.Broadcast(op, x, x, x, 2, 3, 40, true);
            be.Broadcast(op, x, x, x, 2, 3, 40, false);
        }
        foreach (var op in Enum.GetValues<UnaryOp>()) be.Unary(op, x, x, 100);
        be.CopyBlocks(x, 1, 10, x, 2, 20, 5, 8, true);
        be.Sum(x, 100000, x); be.SumSquares(x, 10, x); be.SquaredError(x, x, 5000, x);
        be.Upsample2x(x, x, 6, 8, 8);
        be.AvgPool2x(x, x, 6, 8, 8);
        be.TimestepEmbedding(x, x, 4, 128, 10000f);
        be.Dropout(x, x, x, 1000, 0.1f, 42);
        be.AdamStep(x, x, x, x, 1000, new AdamHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 0.1f, 0.001f, 1f));
        return rec;
    }

    [Test]
    public void EveryLaunchMatchesItsKernelSignature()
    {
        var sigs = Signatures();
        var rec = Drive();
        Assert.That(rec.Select(r => r.Kernel).Distinct().Count(), Is.EqualTo(sigs.Count),
            "every kernel in kernels/*.cu is launched by some Backend member: " +
            string.Join(", ", sigs.Keys.Except(rec.Select(r => r.Kernel))));
        foreach (var r in rec)
        {
            Assert.That(sigs.TryGetValue(r.Kernel, out var sig), $"no kernel {r.Kernel}");
            Assert.That(sig!.File, Is.EqualTo(r.File), $"{r.Kernel} launched from the wrong module");
            var want = string.Join(' ', sig.Params.Select(Tag));
            Assert.That(r.ArgTags, Is.EqualTo(want), $"{r.Kernel}: C# arguments vs C signature ({string.Join(", ", sig.Params)})");
            if (sig.LaunchBounds is int lb) Assert.That(r.Block, Is.EqualTo((uint)lb), $"{r.Kernel}: block vs __launch_bounds__");
            Assert.That(r.Block % 32, Is.EqualTo(0u), $"{r.Kernel}: whole warps (the block reductions assume it)");
            Assert.That(r.Block, Is.InRange(32u, 1024u));
            Assert.That(r.Grid.y, Is.InRange(1u, 65535u), $"{r.Kernel} grid.y");
            Assert.That(r.Grid.z, Is.InRange(1u, 65535u), $"{r.Kernel} grid.z");
            Assert.That(r.Grid.x, Is.GreaterThanOrEqualTo(1u), $"{r.Kernel} grid.x");
            bool dynamic = KernelSources.Read(sig.File).Contains("DDSM_DYNAMIC_SMEM");
            if (!dynamic) Assert.That(r.SharedBytes, Is.EqualTo(0u), $"{r.Kernel}: dynamic shared memory for a kernel without any");
        }
    }

    [Test]
    public void AttentionSharedMemoryFitsAnH100AndIsRefusedBeyond()
    {
        var rec = new List<CudaBackend.LaunchRecord>();
        using var be = CudaBackend.DryRun(rec.Add, maxSharedBytes: 227 * 1024);
        var x = be.Allocate(1 << 20);
        be.AttentionBackward(new AttentionDesc(1, 2, 128, 64), x, x, x, x, x);
        Assert.That(rec.Max(r => r.SharedBytes), Is.LessThanOrEqualTo(227u * 1024).And.GreaterThan(48u * 1024));
        using var small = CudaBackend.DryRun(_ => { }, maxSharedBytes: 48 * 1024);
        var y = small.Allocate(1 << 20);
        var ex = Assert.Throws<NotSupportedException>(() => small.AttentionBackward(new AttentionDesc(1, 2, 128, 64), y, y, y, y, y));
        Assert.That(ex!.Message, Does.Contain("shared memory"));
        Assert.Throws<NotSupportedException>(() => small.AttentionForward(new AttentionDesc(1, 1, 160, 64), y, y, y),
            "head dim above 128 is refused by name");
    }

    [Test]
    public void PrecisionSwitchSelectsKernels()
    {
        var rec = new List<CudaBackend.LaunchRecord>();
        using var be = CudaBackend.DryRun(rec.Add);
        var x = be.Allocate(1 << 16);
        be.Gemm(new GemmDesc(false, false, 8, 8, 8, 1f, 0f, 0, 8, 0, 8, 0, 8), x, x, x);
        be.ExactFp32 = false;
        be.Gemm(new GemmDesc(false, false, 8, 8, 8, 1f, 0f, 0, 8, 0, 8, 0, 8), x, x, x);
        Assert.That(rec.Select(r => r.Kernel), Is.EqualTo(new[] { "gemm_f32", "gemm_tf32" }));
    }

    [Test]
    public void ScratchBuffersAreReturned()
    {
        using var be = CudaBackend.DryRun(_ => { });
        var x = be.Allocate(1 << 20);
        long live = be.LiveBytes;
        be.Conv2dBackwardWeight(new ConvDesc(2, 5, 9, 11, 67, 3, 1, 1, 7, 70), x, x, x, x);
        be.GroupNormBackward(new GroupNormDesc(2, 64, 100, 16, 128, 1e-5f, true), x, x, x, x, x, x, x, x, x, x, x, x, x);
        be.AttentionBackward(new AttentionDesc(2, 4, 64, 256), x, x, x, x, x);
        Assert.That(be.LiveBytes, Is.EqualTo(live));
    }
}
