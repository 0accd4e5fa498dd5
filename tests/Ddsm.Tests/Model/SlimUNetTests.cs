using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;

namespace Ddsm.Tests.Model;

public class SlimUNetTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;

    /// <summary>A fast ADM-shaped config for tests (every block type, two widths).</summary>
    internal static UNetConfig TestConfig => new()
    {
        Name = "test", ImageChannels = 1, ImageSize = 8, ModelChannels = 16, ChannelMult = [1, 2], NumResBlocks = 1,
        AttentionResolutions = [4], HeadChannels = 8, Groups = 4, Dropout = 0.1f, Widths = [0.5, 1.0],
    };

    [TestCase("fmnist32", 6_946_881)]
    [TestCase("cifar10", 35_746_307)]      // the DDSM release's 35.7M CIFAR-10 supernet
    [TestCase("cifar10-ddsm", 35_746_307)] // the same tensors: it differs in groups and heads only
    [TestCase("celeba64", 52_542_979)]
    [TestCase("tiny", 755_009)]
    public void PresetParameterCountsArePinned(string preset, long count)
    {
        using var m = new SlimUNet(Cpu, UNetConfig.Preset(preset), 0);
        Assert.That(m.ParameterCount, Is.EqualTo(count));
    }

    [Test]
    public void ParameterNamesFollowAdm()
    {
        using var m = new SlimUNet(Cpu, UNetConfig.Fmnist32, 0);
        var names = m.NamedParameters().Select(p => p.Name).ToHashSet();
        Assert.That(names, Does.Contain("time_embed.0.weight").And.Contain("time_embed.2.bias")
            .And.Contain("input_blocks.1.0.in_layers.2.weight").And.Contain("input_blocks.1.0.emb_layers.1.weight")
            .And.Contain("input_blocks.1.0.out_layers.3.weight").And.Contain("input_blocks.3.0.op.weight")
            .And.Contain("middle_block.1.qkv.weight").And.Contain("output_blocks.2.1.conv.weight")
            .And.Contain("output_blocks.5.1.qkv.weight").And.Contain("output_blocks.5.2.conv.weight")
            .And.Contain("out.2.weight"));
    }

    private static Tensor RandomInput(UNetConfig c, int n, ulong seed, out Tensor t)
    {
        var r = new Rng(seed);
        var x = new float[n * c.ImageChannels * c.ImageSize * c.ImageSize];
        r.FillNormal(x);
        t = Tensor.FromArray(Cpu, Enumerable.Range(0, n).Select(i => (float)r.NextInt(1000)).ToArray(), n);
        return Tensor.FromArray(Cpu, x, n, c.ImageChannels, c.ImageSize, c.ImageSize);
    }

    /// <summary>Zero-initialised output convs make ε̂ identically 0 until they are trained; un-zero them.</summary>
    internal static void Randomise(SlimUNet m, ulong seed)
    {
        var r = new Rng(seed);
        foreach (var (_, p) in m.NamedParameters())
        {
            var a = p.ToArray();
            for (int i = 0; i < a.Length; i++) a[i] += (float)(0.05 * r.NextNormal());
            p.CopyFrom(a);
        }
    }

    /// <summary>
    /// The slimming contract, end to end: a forward at width ½ reads only the channel prefixes that
    /// receive gradient at ½. Every element with zero gradient at ½ but not at full width is set to NaN
    /// and the narrow forward must give the same bits; most elements must be unused at ½. (Elements
    /// with zero gradient at every width, like the attention key bias under softmax's shift
    /// invariance, are used yet gradient-free, so they are left alone; 0.45 allows for them.)
    /// </summary>
    [Test]
    public void NarrowForwardReadsOnlyItsPrefix()
    {
        var cfg = TestConfig;
        using var m = new SlimUNet(Cpu, cfg, 3);
        Randomise(m, 4);
        using var scope = new TensorScope();
        var x = RandomInput(cfg, 3, 5, out var t);
        Tape.Backward(F.Sum(F.Square(m.Forward(x, t, 1.0))));
        var gradFull = m.NamedParameters().Select(p => p.Param.Grad!.ToArray()).ToList();
        m.ZeroGrad();
        var y = m.Forward(x, t, 0.5);
        var before = y.ToArray();
        Tape.Backward(F.Sum(F.Square(y)));
        long unused = 0, total = 0;
        foreach (var (k, (_, p)) in m.NamedParameters().Index())
        {
            var g = p.Grad!.ToArray();
            var a = p.ToArray();
            // "clearly used at full width": above rounding noise (the key bias's exact-zero gradient
            // comes out as ~1e-9 at full width and as 0 at ½).
            float big = gradFull[k].Max(MathF.Abs);
            for (int i = 0; i < a.Length; i++)
                if (g[i] == 0f && MathF.Abs(gradFull[k][i]) > 1e-4f * big) { a[i] = float.NaN; unused++; }
            total += a.Length;
            p.CopyFrom(a);
        }
        var after = m.Forward(x, t, 0.5).ToArray();
        Assert.That(after, Is.EqualTo(before), "poisoning unused channels changed the narrow forward");
        Assert.That((double)unused / total, Is.GreaterThan(0.45), "width ½ should leave most weights unused");
        Assert.That(m.Forward(x, t, 1.0).ToArray().Any(float.IsNaN), Is.True,
                    "full width must read the poisoned channels");
        m.ZeroGrad();
    }

    [Test]
    public void WidthsGiveDifferentFunctionsAndBadWidthsAreRejected()
    {
        var cfg = TestConfig;
        using var m = new SlimUNet(Cpu, cfg, 3);
        Randomise(m, 4);
        using var scope = new TensorScope();
        var x = RandomInput(cfg, 2, 6, out var t);
        Tensor a, b;
        using (Tape.NoGrad()) { a = m.Forward(x, t, 0.5); b = m.Forward(x, t, 1.0); }
        Assert.That(a.Shape, Is.EqualTo(new[] { 2, 1, 8, 8 }));
        Assert.That(a.ToArray(), Is.Not.EqualTo(b.ToArray()));
        var ex = Assert.Throws<ArgumentException>(() => m.Forward(x, t, 0.3));
        Assert.That(ex!.Message, Does.Contain("0.3").And.Contain("0.5, 1"));
        ex = Assert.Throws<ArgumentException>(() => m.Forward(Tensor.Zeros(Cpu, 2, 1, 16, 16), t, 1.0));
        Assert.That(ex!.Message, Does.Contain("(2, 1, 16, 16)"));
    }

    [Test]
    public void ConfigValidationNamesTheBadWidth()
    {
        var ex =
            Assert.Throws<ArgumentException>(() => (UNetConfig.Fmnist32 with { Widths = [0.375, 1.0] }).Validate());
        Assert.That(ex!.Message, Does.Contain("0.375").And.Contain("16 groups"));
        Assert.DoesNotThrow(() => UNetConfig.Cifar10.Validate());
    }

    [Test]
    public void ConfigValidationChecksGroupsAndFixedHeadsAtEveryWidth()
    {
        Assert.DoesNotThrow(() => UNetConfig.Cifar10Ddsm.Validate());
        // 32 groups allow only the quarter widths of 128 channels (3/8 is 48).
        var odd = UNetConfig.Cifar10Ddsm with { Widths = [0.375, 1.0] };
        var ex = Assert.Throws<ArgumentException>(() => odd.Validate());
        Assert.That(ex!.Message, Does.Contain("48 channels do not divide into 32 groups"));
        // Three fixed heads over the middle block's 64 channels (tiny at full width).
        ex = Assert.Throws<ArgumentException>(() => (UNetConfig.Tiny with { AttentionHeads = 3 }).Validate());
        Assert.That(ex!.Message, Does.Contain("in the middle block do not divide into 3 heads"));
    }
}
