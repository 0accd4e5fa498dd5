using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Interop;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Training;

namespace Ddsm.Tests.Interop;

/// <summary>
/// <c>ddsm import</c> against files PyTorch wrote (bench/pytorch/make_fixtures.py): a torch.save of our
/// PyTorch model's state dict, a checkpoint shaped like the DDSM release's, the release's full CIFAR-10 names
/// and shapes; each imported checkpoint must give PyTorch's ε̂ at every width.
/// </summary>
public class ImportTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    // Same network, same weights, float32 summation order only: measured ≤ 2e-6 of the largest |ε̂|.
    private const double Rtol = 1e-5, AtolOfMax = 2e-5;

    /// <summary>The release's structure at the size of ddsm-release.pt (make_fixtures.RELEASE_SMALL).</summary>
    private static readonly UNetConfig ReleaseSmall = UNetConfig.Cifar10Ddsm with
    {
        Name = "release-small", ImageSize = 8, ModelChannels = 32, ChannelMult = [1, 1], NumResBlocks = 1,
        AttentionResolutions = [4], Groups = 8, Widths = [0.5, 1.0],
    };

    private static string Temp(string ext) => Path.Combine(Path.GetTempPath(), $"ddsm-import-{Guid.NewGuid():N}{ext}");

    /// <summary>ε̂ of a checkpoint's EMA weights at every width against the fixture's.</summary>
    private static void AssertEpsMatches(string checkpoint, UNetConfig cfg, SafeTensorsFile expected, string what)
    {
        using var model = new SlimUNet(Cpu, cfg, 0);
        Checkpoint.LoadWeights(checkpoint, model, ema: true);
        AssertEpsMatches(model, expected, what);
    }

    private static void AssertEpsMatches(SlimUNet model, SafeTensorsFile expected, string what, double[]? widths = null)
    {
        using var scope = new TensorScope();
        using var _ = Tape.NoGrad();
        foreach (var w in widths ?? model.Config.Widths)
        {
            var eps = model.Forward(TorchFixtures.Tensor(Cpu, expected, "x"), TorchFixtures.Tensor(Cpu, expected, "t"),
                w);
            var key = w.ToString("0.0###", System.Globalization.CultureInfo.InvariantCulture);
            TorchFixtures.AssertClose(eps.ToArray(), expected[$"eps_hat.{key}"].ToFloat(), $"{what}: ε̂ at width {w}",
                Rtol, AtolOfMax);
        }
    }

    [Test]
    public void TorchSaveOfOurModelImportsSamplesAndGivesPyTorchsEpsHat()
    {
        var expected = TorchFixtures.Read("ours-expected.safetensors");
        var cfg = TorchFixtures.Config(expected);
        string json = Temp(".json"), output = Temp(".safetensors");
        try
        {
            File.WriteAllText(json, cfg.ToJson());
            var r = CheckpointImport.Run(TorchFixtures.PathOf("ours.pt"), StateDictLayout.Ours, output, json);
            Assert.That(r.Found, Is.EqualTo("a state dict"));
            AssertEpsMatches(output, cfg, expected, "ours.pt");

            // The imported checkpoint samples like a trained one: what `ddsm sample` loads and runs.
            using var model = new SlimUNet(Cpu, cfg, 0);
            Checkpoint.LoadWeights(output, model, ema: false);
            using var scope = new TensorScope();
            var z = new float[2 * 3 * 8 * 8];
            new Rng(1).FillNormal(z);
            var x = Tensor.FromArray(Cpu, z, 2, 3, 8, 8);
            Sampler.Create(SamplerKind.Ddim).Sample(model, NoiseSchedule.Linear(1000), StepStrategy.Uniform(0.5, 1000),
                x, new Rng(2), new SamplerOptions(4));
            Assert.That(x.ToArray(), Has.All.Matches<float>(v => float.IsFinite(v) && Math.Abs(v) <= 1.0001f));
        }
        finally { File.Delete(json); File.Delete(output); }
    }

    [Test]
    public void PlainSafeTensorsStateDictImportsLikeThePt()
    {
        var expected = TorchFixtures.Read("ours-expected.safetensors");
        var cfg = TorchFixtures.Config(expected);
        var sd = StateDictFile.Read(TorchFixtures.PathOf("ours.pt"));
        string plain = Temp(".safetensors"), output = Temp(".safetensors");
        try
        {
            // A bare state dict, no metadata: the config must then come from --preset.
            SafeTensors.Write(plain, sd.Raw.Select(kv =>
                SafeTensor.F32(kv.Key, kv.Value.Values, kv.Value.Shape.Select(d => (long)d).ToArray())).ToList());
            Assert.Throws<ArgumentException>(() => CheckpointImport.Run(plain, StateDictLayout.Ours, output));
            string json = Temp(".json");
            File.WriteAllText(json, cfg.ToJson());
            try { CheckpointImport.Run(plain, StateDictLayout.Ours, output, json); }
            finally { File.Delete(json); }
            AssertEpsMatches(output, cfg, expected, "plain safetensors");
        }
        finally { File.Delete(plain); File.Delete(output); }
    }

    [Test]
    public void DdsmReleaseCheckpointImportsRawAndEmaWeights()
    {
        var expected = TorchFixtures.Read("ddsm-release-expected.safetensors");
        string json = Temp(".json"), output = Temp(".safetensors");
        try
        {
            File.WriteAllText(json, ReleaseSmall.ToJson());
            var r = CheckpointImport.Run(TorchFixtures.PathOf("ddsm-release.pt"), StateDictLayout.DdsmRelease, output,
                json);
            Assert.That(r.SourceStep, Is.EqualTo(450000));
            Assert.That(r.Ignored, Is.EquivalentTo(new[] { "sched", "optim", "x_T" }));
            Assert.That(r.Found, Does.Contain("net_model").And.Contain("ema_model"));
            AssertEpsMatches(output, ReleaseSmall, expected, "ddsm-release.pt (EMA)");

            // The raw weights come from net_model: its head differs from the EMA's by exactly +0.5.
            var file = SafeTensors.Read(output);
            var raw = file["input_blocks.0.0.conv.weight"].ToFloat();
            var ema = file["ema.input_blocks.0.0.conv.weight"].ToFloat();
            Assert.That(raw.Zip(ema, (a, b) => a - b), Has.All.EqualTo(0.5f).Within(1e-6f));
        }
        finally { File.Delete(json); File.Delete(output); }
    }

    [Test]
    public void DdsmReleaseNamesAndShapesImportIntoTheCifar10DdsmPreset()
    {
        // The release's full 35.7M-parameter CIFAR-10 UNet: its names and shapes from the fixture, weights by a
        // formula PyTorch computed the same way, ε̂ from the release's forward rules (at every quarter width in
        // the fixture; checked at the cut widths ¼ and ¾ here: all four take 6 s in Debug).
        var expected = TorchFixtures.Read("ddsm-cifar10.safetensors");
        var manifest = System.Text.Json.JsonSerializer.Deserialize<System.Text.Json.JsonElement[][]>(
            expected.Metadata["manifest"])!;
        var release = new Dictionary<string, HostTensor>();
        for (int i = 0; i < manifest.Length; i++)
        {
            string name = manifest[i][0].GetString()!;
            int[] shape = manifest[i][1].EnumerateArray().Select(e => e.GetInt32()).ToArray();
            release[name] = new HostTensor(shape,
                i == 0 ? SinusoidTable(shape[0], shape[1]) : FormulaWeights(i, name, shape));
        }
        var cfg = CheckpointImport.ResolveConfig(null, null, StateDictLayout.DdsmRelease, "formula").Config;
        Assert.That(cfg.Name, Is.EqualTo("cifar10-ddsm"));
        var ours = CheckpointImport.ToOurs(release, StateDictLayout.DdsmRelease, cfg, "formula");
        using var model = new SlimUNet(Cpu, cfg, 0);
        model.LoadState(ours.ToDictionary(kv => kv.Key, kv => kv.Value.Values));
        AssertEpsMatches(model, expected, "cifar10-ddsm", [0.25, 0.75]);
    }

    [Test]
    public void ReleaseLayoutRefusesAPresetThatComputesSomethingElse()
    {
        var sd = StateDictFile.Read(TorchFixtures.PathOf("ddsm-release.pt"));
        // 16 groups and heads of 32 channels (our cifar10 preset) are another network than the release's.
        var e = Assert.Throws<ArgumentException>(() =>
            CheckpointImport.ToOurs(sd.Ema, StateDictLayout.DdsmRelease, UNetConfig.Cifar10, "x"));
        Assert.That(e!.Message, Does.Contain("one attention head"));
        // Widths the release rounds differently (3/8 of 32 = 12 channels, the release runs 16).
        var odd = ReleaseSmall with { Groups = 4, Widths = [0.375, 1.0] };
        Assert.That(() => CheckpointImport.ToOurs(sd.Ema, StateDictLayout.DdsmRelease, odd, "x"),
            Throws.ArgumentException.With.Message.Contains("the release runs 16"));
        // The right structure at the wrong size: missing and unexpected names, not a crash.
        Assert.That(() => CheckpointImport.ToOurs(sd.Ema, StateDictLayout.DdsmRelease, UNetConfig.Cifar10Ddsm, "x"),
            Throws.TypeOf<DataFormatException>().With.Message.Contains("time_embedding.timembedding.0.weight"));
        var ours = StateDictFile.Read(TorchFixtures.PathOf("ours.pt"));
        Assert.That(() => CheckpointImport.ToOurs(ours.Raw, StateDictLayout.Ours, UNetConfig.Tiny, "x"),
            Throws.TypeOf<DataFormatException>().With.Message.Contains("of another shape"));
    }

    [Test]
    public void HostileCheckpointIsRefusedInOneLine()
    {
        string output = Temp(".safetensors");
        var e = Assert.Throws<DataFormatException>(() =>
            CheckpointImport.Run(TorchFixtures.PathOf("hostile.pt"), StateDictLayout.Ours, output, "tiny"));
        Assert.That(e!.Message, Does.Contain("refused global 'posix.system'").And.Not.Contain('\n'));
        Assert.That(File.Exists(output), Is.False);
    }

    /// <summary>The release's (T, ch) table of interleaved [sin, cos] features.</summary>
    private static float[] SinusoidTable(int T, int ch)
    {
        var v = new float[T * ch];
        for (int t = 0; t < T; t++)
            for (int j = 0; j < ch / 2; j++)
            {
                double a = t * Math.Exp(-(2.0 * j / ch) * Math.Log(10000));
                (v[t * ch + 2 * j], v[t * ch + 2 * j + 1]) = ((float)Math.Sin(a), (float)Math.Cos(a));
            }
        return v;
    }

    /// <summary>make_fixtures.formula_weights, bit for bit: splitmix64 of (index &lt;&lt; 32 | element).</summary>
    private static float[] FormulaWeights(int index, string name, int[] shape)
    {
        long n = shape.Aggregate(1L, (a, d) => a * d);
        double scale = shape.Length >= 2 ? Math.Sqrt(3.0 / shape.Skip(1).Aggregate(1L, (a, d) => a * d)) : 0.1;
        bool normScale = shape.Length == 1 && name.EndsWith(".weight", StringComparison.Ordinal);
        var v = new float[n];
        for (long i = 0; i < n; i++)
        {
            ulong z = (((ulong)index << 32) | (ulong)i) + 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            double u = (z >> 40) / (double)(1 << 24);
            v[i] = (float)(normScale ? 1 + (2 * u - 1) * 0.1 : (2 * u - 1) * scale);
        }
        return v;
    }
}
