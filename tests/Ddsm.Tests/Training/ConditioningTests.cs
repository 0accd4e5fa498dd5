using Ddsm.Data;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.IO;
using Ddsm.Kernels;
using Ddsm.Model;
using Ddsm.Training;

namespace Ddsm.Tests.Model;

/// <summary>Class conditioning (label_emb + null class) and classifier-free guidance.</summary>
public class ConditioningTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(8));
    internal static UNetConfig CondConfig => SlimUNetTests.TestConfig with { Name = "test-cond", NumClasses = 10 };
    private string _dir = null!;

    [SetUp] public void MakeDir() => _dir = Directory.CreateTempSubdirectory("ddsm-cond-").FullName;
    [TearDown] public void RemoveDir() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>A conditional model with its zero-initialised output convs un-zeroed (else ε̂ ≡ 0).</summary>
    private static SlimUNet MakeModel(ulong seed = 3)
    {
        var m = new SlimUNet(Cpu, CondConfig, seed);
        SlimUNetTests.Randomise(m, seed + 100);
        return m;
    }

    private static float[] RandomX(int n, ulong seed)
    {
        var x = new float[n * 64];
        new Rng(seed).FillNormal(x);
        return x;
    }

    private static float[] Eps(SlimUNet m, float[] x, int n, float t, double width, int[]? labels)
    {
        using var scope = new TensorScope();
        using var _ = Tape.NoGrad();
        var xt = Tensor.FromArray(Cpu, x, n, 1, 8, 8);
        var tt = Tensor.FromArray(Cpu, Enumerable.Repeat(t, n).ToArray(), n);
        return m.Forward(xt, tt, width, labels).ToArray();
    }

    private static double MaxDiff(float[] a, float[] b) => a.Zip(b, (u, v) => Math.Abs((double)u - v)).Max();

    [Test]
    public void LabelEmbeddingChangesTheOutputPerClassAndTheNullClassDiffers()
    {
        using var m = MakeModel();
        var x = RandomX(2, 5);
        foreach (var w in m.Config.Widths)
        {
            var c3 = Eps(m, x, 2, 400, w, [3, 3]);
            var c7 = Eps(m, x, 2, 400, w, [7, 7]);
            var nul = Eps(m, x, 2, 400, w, null);
            var nulExplicit = Eps(m, x, 2, 400, w, [10, 10]);
            TestContext.Out.WriteLine($"w {w}: |c3-c7| {MaxDiff(c3, c7):G3}, |c3-null| {MaxDiff(c3, nul):G3}");
            Assert.That(MaxDiff(c3, c7), Is.GreaterThan(1e-3), $"classes 3 and 7 at width {w}");
            Assert.That(MaxDiff(c3, nul), Is.GreaterThan(1e-3), $"class 3 and null at width {w}");
            Assert.That(MaxDiff(c7, nul), Is.GreaterThan(1e-3), $"class 7 and null at width {w}");
            Assert.That(nul, Is.EqualTo(nulExplicit), "labels = null means the null class");
        }
        // Per-sample: a mixed batch gives each row its own class's output.
        var mixed = Eps(m, x, 2, 400, 1.0, [3, 7]);
        var a3 = Eps(m, x, 2, 400, 1.0, [3, 3]);
        var a7 = Eps(m, x, 2, 400, 1.0, [7, 7]);
        Assert.That(MaxDiff(mixed[..64], a3[..64]), Is.LessThan(1e-5));
        Assert.That(MaxDiff(mixed[64..], a7[64..]), Is.LessThan(1e-5));

        Assert.That(() => Eps(m, x, 2, 400, 1.0, [3, 11]), Throws.ArgumentException.With.Message.Contains("label 11"));
        Assert.That(() => Eps(m, x, 2, 400, 1.0, [3]),
                    Throws.ArgumentException.With.Message.Contains("1 labels for batch 2"));
        using var uncond = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 3);
        Assert.That(() => Eps(uncond, x, 2, 400, 1.0, [3, 3]),
                    Throws.ArgumentException.With.Message.Contains("unconditional"));
    }

    [Test]
    public void LabelEmbeddingIsExtraParametersOnlyAndSlimsItsGradient()
    {
        using var c = new SlimUNet(Cpu, CondConfig, 3);
        using var u = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 3);
        int emax = CondConfig.TimeEmbedChannels;
        Assert.That(c.ParameterCount, Is.EqualTo(u.ParameterCount + emax * 11L));
        var cs = c.StateDict();
        Assert.That(cs["label_emb.weight"].Length, Is.EqualTo(emax * 11), "(Emax, K+1)");
        foreach (var (name, v) in u.StateDict())
            Assert.That(cs[name], Is.EqualTo(v), $"{name}: same seed, same weights");

        // Backward at width ½ with labels {2, null}: only columns 2 and 10 of the first E·½ rows learn.
        using var m = MakeModel();
        using (var scope = new TensorScope())
        {
            var xt = Tensor.FromArray(Cpu, RandomX(2, 6), 2, 1, 8, 8);
            var tt = Tensor.FromArray(Cpu, [100f, 800f], 2);
            Tape.Backward(F.Sum(F.Square(m.Forward(xt, tt, 0.5, [2, 10]))));
        }
        var g = m.NamedParameters().Single(p => p.Name == "label_emb.weight").Param.Grad!.ToArray();
        int e = CondConfig.Channels(emax, 0.5);
        for (int r = 0; r < emax; r++)
            for (int k = 0; k < 11; k++)
            {
                bool used = r < e && (k == 2 || k == 10);
                if (!used) Assert.That(g[r * 11 + k], Is.EqualTo(0f), $"row {r} class {k}");
            }
        double usedNorm = Enumerable.Range(0, e).Sum(r => Math.Abs(g[r * 11 + 2]) + Math.Abs(g[r * 11 + 10]));
        Assert.That(usedNorm, Is.GreaterThan(1e-4));
    }

    [Test]
    public void GuidanceAtZeroIsUnconditionalAtOneConditionalAndInBetweenTheExtrapolation()
    {
        using var m = MakeModel();
        var x = RandomX(3, 7);
        int[] y = [1, 4, 9];
        foreach (var w in m.Config.Widths)
        {
            var cond = Eps(m, x, 3, 250, w, y);
            var uncond = Eps(m, x, 3, 250, w, null);
            float[] Guided(double s)
            {
                using var scope = new TensorScope();
                using var _ = Tape.NoGrad();
                var g = new GuidedDenoiser(m, y, s);
                var r = g.PredictEps(Tensor.FromArray(Cpu, x, 3, 1, 8, 8), 250, w);
                Assert.That(r.Shape, Is.EqualTo(new[] { 3, 1, 8, 8 }));
                return r.ToArray();
            }
            // The doubled batch must equal two separate forwards (rows are independent), up to float rounding: the
            // batches of 6 and 3 are not bit-identical (measured 0.3–1.1e-6 at outputs ≤ 0.83, a few ulp).
            Assert.That(MaxDiff(Guided(0), uncond), Is.LessThanOrEqualTo(2e-6), $"s = 0 at width {w}");
            Assert.That(MaxDiff(Guided(1), cond), Is.LessThanOrEqualTo(2e-6), $"s = 1 at width {w}");
            var expect = uncond.Zip(cond, (u, c) => u + 2.5f * (c - u)).ToArray();
            Assert.That(MaxDiff(Guided(2.5), expect), Is.LessThanOrEqualTo(1e-5), $"s = 2.5 at width {w}");
            Assert.That(MaxDiff(cond, uncond), Is.GreaterThan(1e-3), "guidance must have something to do");
        }
        Assert.That(() => new GuidedDenoiser(m, [10], 1), Throws.ArgumentException.With.Message.Contains("label 10"));
        using var u = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 3);
        Assert.That(() => new GuidedDenoiser(u, [1], 1),
                    Throws.ArgumentException.With.Message.Contains("unconditional"));
        using (var scope = new TensorScope())
            Assert.That(() =>
                new GuidedDenoiser(m, y, 2).PredictEps(Tensor.FromArray(Cpu, RandomX(2, 1), 2, 1, 8, 8), 10, 1.0),
                Throws.ArgumentException.With.Message.Contains("batch 2"));
    }

    [Test]
    public void GuidedSamplingCountsTwoForwardsPerEvaluation()
    {
        var cfg = CondConfig;
        var s = NoiseSchedule.Linear();
        var uni = StepStrategy.Uniform(1.0, s.T);
        using var m = new SlimUNet(Cpu, cfg, 1);
        var ddim = Sampler.Create(SamplerKind.Ddim);
        var (plain, n1) = ddim.Cost(m, s, uni, new SamplerOptions(20));
        var (guided, n2) = ddim.Cost(new GuidedDenoiser(m, [0], 3), s, uni, new SamplerOptions(20));
        Assert.That(n2, Is.EqualTo(n1).And.EqualTo(20));
        Assert.That(guided, Is.EqualTo(2 * plain).Within(1e-12));
        Assert.That(plain, Is.EqualTo(20 * UNetFlops.Forward(cfg, 1.0).Total / 1e9).Within(1e-12));

        // One guided evaluation really costs what the analytic count says (2 forwards at batch N).
        using var scope = new TensorScope();
        using var counter = new FlopCounter();
        using (Tape.NoGrad())
            new GuidedDenoiser(m, [0, 5], 3).PredictEps(Tensor.FromArray(Cpu, RandomX(2, 2), 2, 1, 8, 8), 500, 0.5);
        // sub, scale and add of the guidance combination (N·D each) are the only ops outside the
        // doubled-batch forward, which costs exactly 2 forwards at batch N.
        long combine = 3L * 2 * 64;
        Assert.That(counter.Forward - combine, Is.EqualTo(2 * UNetFlops.Forward(cfg, 0.5, batch: 2).Total));
        Assert.That(counter.Forward - combine,
                    Is.EqualTo(2 * new GuidedDenoiser(m, [0, 5], 3).FlopsPerImage(500, 0.5)));
    }

    private static TrainOptions Opts => new()
    {
        BatchSize = 16, Lr = 2e-3f, WarmupSteps = 10, EmaDecay = 0.99f, SandwichN = 3,
    };

    private static (SlimUNet, SandwichTrainer) Make(TrainOptions? o = null)
    {
        var m = new SlimUNet(Cpu, CondConfig, 1);
        return (m, new SandwichTrainer(m, Data.Value, o ?? Opts, 2));
    }

    [Test]
    public void ConditionalTrainingRunsAndResumesBitEqual()
    {
        const int n = 4;
        double[] straight;
        {
            var (m, tr) = Make();
            straight = Enumerable.Range(0, n).SelectMany(_ => tr.TrainStep().Losses.Select(l => l.Loss)).ToArray();
            Assert.That(tr.LastLabels, Is.Not.Null.And.All.InRange(0, 10));
            tr.Dispose(); m.Dispose();
        }
        Assert.That(straight, Has.All.Matches<double>(double.IsFinite));
        var rot = new CheckpointRotation(_dir, 2);
        var resumed = new List<double>();
        {
            var (m, tr) = Make();
            for (int i = 0; i < n / 2; i++) resumed.AddRange(tr.TrainStep().Losses.Select(l => l.Loss));
            Checkpoint.Save(rot, tr);
            tr.TrainStep();                                   // work lost in the "crash"
            tr.Dispose(); m.Dispose();
        }
        {
            var (m, tr) = Make();
            Checkpoint.Restore(rot.Latest()!, tr);
            for (int i = n / 2; i < n; i++) resumed.AddRange(tr.TrainStep().Losses.Select(l => l.Loss));
            tr.Dispose(); m.Dispose();
        }
        Assert.That(resumed, Is.EqualTo(straight));

        // The labels reach the model: label_emb learns, and the
        // checkpoint's config carries the class count.
        var (m2, tr2) = Make(Opts with { LabelDropout = 0 });
        using var _m = m2; using var _t = tr2;
        var before = m2.StateDict()["label_emb.weight"];
        tr2.TrainStep();
        Assert.That(tr2.LastLabels, Is.EqualTo(ExpectedLabelsAtStep0(tr2)), "p = 0 keeps the data's labels");
        // The zero-initialised convs (the UNet's output, then each ResBlock's out_layers) block the
        // embedding's gradient for two steps; step 3 reaches label_emb.
        tr2.TrainStep(); tr2.TrainStep();
        Assert.That(MaxDiff(m2.StateDict()["label_emb.weight"], before), Is.GreaterThan(0));
        var (cfg, _, _) = Checkpoint.Read(Checkpoint.Save(new CheckpointRotation(Path.Combine(_dir, "c"), 1), tr2));
        Assert.That(cfg.NumClasses, Is.EqualTo(10));
    }

    /// <summary>The first step's labels replayed from the device draw's key (its batch indices, no dropout).</summary>
    private static int[] ExpectedLabelsAtStep0(SandwichTrainer tr)
    {
        ulong key = StepInputs.StepKey(tr.DataKey, 0, 0);
        var idx = Enumerable.Range(0, 16).Select(i => GatherMath.UniformInt(key, (ulong)i, 0, (uint)Data.Value.Count));
        return idx.Select(i => (int)Data.Value.Labels[i]).ToArray();
    }

    [Test]
    public void LabelDropoutRateMatchesP()
    {
        // The device gather's drop draw, as the trainer uses it: row i of labels i % 10 becomes the null row 10
        // with probability p.
        const int n = 20000;
        using var table = Tensor.FromArray(Cpu, Enumerable.Range(0, 11).Select(v => (float)v).ToArray(), 11);
        using var index = Tensor.FromArray(Cpu, Enumerable.Range(0, n).Select(i => (float)(i % 10)).ToArray(), n);
        using var got = Tensor.Empty(Cpu, n);
        foreach (var p in new[] { 0.1, 0.5 })
        {
            Cpu.GatherRows(new GatherDesc(n, 1, 11, Seed: 11, DropP: (float)p, DropRow: 10), table.Buffer,
                index.Buffer, got.Buffer);
            var labels = got.ToArray();
            int dropped = labels.Count(l => l == 10);
            double sd = Math.Sqrt(n * p * (1 - p));
            TestContext.Out.WriteLine($"p {p}: {dropped}/{n} dropped (expect {n * p} ± {sd:F0})");
            Assert.That(dropped, Is.EqualTo(n * p).Within(4 * sd), "binomial count within 4 σ");
            Assert.That(labels.Where((l, i) => l != 10 && l != i % 10), Is.Empty, "kept labels unchanged");
        }
        // In the trainer: p = 1 makes every training label the null class.
        var (m, tr) = Make(Opts with { LabelDropout = 1, SandwichN = 1 });
        using var _m = m; using var _t = tr;
        tr.TrainStep();
        Assert.That(tr.LastLabels, Has.All.EqualTo(10));
    }

    [Test]
    public void LabelMismatchesFailClearly()
    {
        var ds = Data.Value;
        var unlabelled =
            new ImageDataset("unlabelled", ds.Pixels, new byte[ds.Count], ds.Channels, ds.Height, ds.Width, 0);
        using var m = new SlimUNet(Cpu, CondConfig, 1);
        Assert.That(() => new SandwichTrainer(m, unlabelled, Opts, 2),
                    Throws.ArgumentException.With.Message.Contains("no labels"));
        using var m5 = new SlimUNet(Cpu, CondConfig with { NumClasses = 5 }, 1);
        Assert.That(() => new SandwichTrainer(m5, ds, Opts, 2),
                    Throws.ArgumentException.With.Message.Contains("5 classes").And.Message.Contains("has 10"));
        Assert.That(() => new SandwichTrainer(m, ds, Opts with { LabelDropout = 1.5 }, 2),
                    Throws.ArgumentException.With.Message.Contains("label dropout"));
    }
}
