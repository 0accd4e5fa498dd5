using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Engine.Nn;

namespace Ddsm.Tests.Engine;

public class ModuleTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;

    private sealed class Lin : Module
    {
        public readonly Tensor Weight, Bias;
        public Lin(Backend b, Rng rng, int cin, int cout) : base(b)
        {
            Weight = Param("weight", [cout, cin], Init.DefaultWeight(rng));
            Bias = Param("bias", [cout], Init.DefaultBias(rng, cin));
        }
    }

    private sealed class Norm : Module
    {
        public Norm(Backend b, int c) : base(b)
        {
            Param("weight", [c], Init.Ones);
            Param("bias", [c], Init.Zeros);
        }
    }

    /// <summary>ADM's ResBlock naming: in_layers = Sequential(GroupNorm, SiLU, conv).</summary>
    private sealed class Res : Module
    {
        public Res(Backend b, Rng rng, int c) : base(b)
        {
            var inLayers = Child("in_layers", new ModuleList(b));
            inLayers.Add(new Norm(b, c));
            inLayers.Skip();
            inLayers.Add(new Lin(b, rng, c, c));
        }
    }

    private sealed class Net : Module
    {
        public Net(Backend b, ulong seed) : base(b)
        {
            var rng = new Rng(seed);
            var blocks = Child("input_blocks", new ModuleList(b));
            blocks.Add(new ModuleList(b)).Add(new Lin(b, rng, 3, 4));
            blocks.Add(new ModuleList(b)).Add(new Res(b, rng, 4));
            Child("out", new Lin(b, rng, 4, 2));
            Param("scale", [1], (v, _) => v.Fill(0.5f)); // own parameters are listed before children's
        }
    }

    private static readonly string[] NetNames =
    [
        "scale",
        "input_blocks.0.0.weight", "input_blocks.0.0.bias",
        "input_blocks.1.0.in_layers.0.weight", "input_blocks.1.0.in_layers.0.bias",
        "input_blocks.1.0.in_layers.2.weight", "input_blocks.1.0.in_layers.2.bias",
        "out.weight", "out.bias",
    ];

    [Test]
    public void NamesCountAndOrder()
    {
        using var net = new Net(Cpu, 1);
        var named = net.NamedParameters().ToList();
        Assert.That(named.Select(p => p.Name), Is.EqualTo(NetNames));
        // Tensors carry their dotted path too (error messages, checkpoints).
        Assert.That(named.Select(p => p.Param.Name), Is.EqualTo(NetNames));
        Assert.That(named.Select(p => p.Param.Shape.ToArray()), Is.EqualTo(new[]
        {
            new[] { 1 }, [4, 3], [4], [4], [4], [4, 4], [4], [2, 4], [2],
        }));
        Assert.That(net.ParameterCount, Is.EqualTo(1 + 12 + 4 + 4 + 4 + 16 + 4 + 8 + 2));
        Assert.That(net.Parameters(), Is.EqualTo(named.Select(p => p.Param)));
        Assert.That(named.All(p => p.Param.RequiresGrad), Is.True);
    }

    [Test]
    public void InitialisersAreDeterministicAndShaped()
    {
        using var a = new Net(Cpu, 7);
        using var b = new Net(Cpu, 7);
        using var c = new Net(Cpu, 8);
        var sa = a.StateDict();
        Assert.That(b.StateDict(), Is.EqualTo(sa), "same seed, same weights");
        Assert.That(c.StateDict()["out.weight"], Is.Not.EqualTo(sa["out.weight"]), "different seed, different weights");
        Assert.That(sa["input_blocks.1.0.in_layers.0.weight"], Is.All.EqualTo(1f));
        Assert.That(sa["input_blocks.1.0.in_layers.0.bias"], Is.All.EqualTo(0f));
        Assert.That(sa["scale"], Is.EqualTo(new[] { 0.5f }));

        Assert.That(Init.FanIn([32, 16, 3, 3]), Is.EqualTo(144));
        Assert.That(Init.FanIn([10]), Is.EqualTo(10));
        // PyTorch's default: U(±1/√fan_in) for weight and bias; std of U(±b) is b/√3.
        using var lin = new Lin(Cpu, new Rng(9), 144, 64);
        var w = lin.Weight.ToArray();
        float bound = 1f / 12f;
        Assert.That(w, Is.All.InRange(-bound, bound));
        double std = Math.Sqrt(w.Average(v => (double)v * v));
        Assert.That(std, Is.EqualTo(bound / Math.Sqrt(3)).Within(0.03 * bound / Math.Sqrt(3)),
                    "9216 draws: std within 3%");
        Assert.That(w.Max(), Is.GreaterThan(0.95f * bound), "the whole range is used");
        Assert.That(lin.Bias.ToArray(), Is.All.InRange(-bound, bound));
        Assert.That(lin.Bias.ToArray().Distinct().Count(), Is.EqualTo(64));

        var n = new float[20000];
        Init.Normal(new Rng(10), 0.02f)(n, [20000]);
        Assert.That(Math.Sqrt(n.Average(v => (double)v * v)), Is.EqualTo(0.02).Within(0.001));
        var u = new float[1000];
        Init.Uniform(new Rng(11), 0.3f)(u, [1000]);
        Assert.That(u, Is.All.InRange(-0.3f, 0.3f));
        Assert.That(u.Min(), Is.LessThan(-0.28f));
    }

    [Test]
    public void StateDictRoundTrip()
    {
        using var a = new Net(Cpu, 1);
        using var b = new Net(Cpu, 2);
        Assert.That(b.StateDict()["out.bias"], Is.Not.EqualTo(a.StateDict()["out.bias"]));
        b.LoadState(a.StateDict());
        var sa = a.StateDict();
        var sb = b.StateDict();
        Assert.That(sb.Keys, Is.EqualTo(NetNames));
        foreach (var k in NetNames) Assert.That(sb[k], Is.EqualTo(sa[k]), k);
    }

    [Test]
    public void LoadStateMismatchesAreListed()
    {
        using var a = new Net(Cpu, 1);
        using var b = new Net(Cpu, 2);
        var before = b.StateDict();

        var missing = a.StateDict();
        missing.Remove("input_blocks.1.0.in_layers.2.weight");
        var ex = Assert.Throws<ArgumentException>(() => b.LoadState(missing));
        Assert.That(ex!.Message,
                    Does.Contain("missing (1): input_blocks.1.0.in_layers.2.weight").And.Not.Contain("unexpected"));

        var renamed = a.StateDict();
        renamed["input_blocks.1.0.in_layers.3.weight"] = renamed["input_blocks.1.0.in_layers.2.weight"];
        renamed.Remove("input_blocks.1.0.in_layers.2.weight");
        renamed["extra"] = [1f];
        ex = Assert.Throws<ArgumentException>(() => b.LoadState(renamed));
        Assert.That(ex!.Message, Does.Contain("missing (1): input_blocks.1.0.in_layers.2.weight")
            .And.Contain("unexpected (2): extra, input_blocks.1.0.in_layers.3.weight"));

        var resized = a.StateDict();
        resized["out.weight"] = new float[7];
        ex = Assert.Throws<ArgumentException>(() => b.LoadState(resized));
        Assert.That(ex!.Message, Does.Contain("wrong size (1): out.weight (want 8 = (2, 4), got 7)"));

        var after = b.StateDict();
        foreach (var k in NetNames)
            Assert.That(after[k], Is.EqualTo(before[k]), $"a failed load changes nothing ({k})");
    }

    /// <summary>Exposes the protected registration calls.</summary>
    private sealed class Open(Backend b) : Module(b)
    {
        public Tensor P(string name) => Param(name, [2], Init.Ones);
        public T C<T>(string name, T m) where T : Module => Child(name, m);
    }

    [Test]
    public void BadRegistrationIsRejected()
    {
        using var m = new Open(Cpu);
        m.P("w");
        Assert.That(Assert.Throws<ArgumentException>(() => m.P("w"))!.Message, Does.Contain("'w' is already used"));
        Assert.That(Assert.Throws<ArgumentException>(() => m.C("w", new Norm(Cpu, 2)))!.Message,
                    Does.Contain("'w' is already used"));
        Assert.That(Assert.Throws<ArgumentException>(() => m.P("a.b"))!.Message, Does.Contain("'a.b'"));
        Assert.Throws<ArgumentException>(() => m.P(""));
        var shared = m.C("n", new Norm(Cpu, 2));
        Assert.That(Assert.Throws<ArgumentException>(() => m.C("n2", shared))!.Message,
                    Does.Contain("already registered"));
        Assert.That(m.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "w", "n.weight", "n.bias" }));

        using var other = new CpuBackend();
        using var foreign = new Norm(other, 2);
        var ex = Assert.Throws<ArgumentException>(() => m.C("f", foreign));
        Assert.That(ex!.Message, Does.Contain("'f'").And.Contain("device"));
    }

    [Test]
    public void ZeroGradAndDispose()
    {
        var net = new Net(Cpu, 3);
        var ps = net.Parameters();
        using (new TensorScope())
        {
            var loss = F.Sum(ps[1]);
            foreach (var p in ps.Skip(2)) loss = F.Add(loss, F.Sum(F.Square(p)));
            Tape.Backward(loss);
        }
        Assert.That(ps[1].Grad!.ToArray(), Is.All.EqualTo(1f));
        Assert.That(ps.Last().Grad!.ToArray().Any(v => v != 0f), Is.True);
        net.ZeroGrad();
        Assert.That(ps.Where(p => p.Grad is not null).SelectMany(p => p.Grad!.ToArray()), Is.All.EqualTo(0f));
        net.Dispose();
        Assert.That(ps.All(p => p.IsDisposed), Is.True);
        net.Dispose(); // idempotent
    }
}
