using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Training;

namespace Ddsm.Tests.Model;

public class TrainingTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(8));
    private string _dir = null!;

    [SetUp] public void MakeDir() => _dir = Directory.CreateTempSubdirectory("ddsm-train-").FullName;
    [TearDown] public void RemoveDir() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private static TrainOptions Opts => new()
    {
        BatchSize = 16, Lr = 2e-3f, WarmupSteps = 10, EmaDecay = 0.99f, SandwichN = 3,
    };

    [Test]
    public void SandwichTrainingLowersTheLossAtEveryWidth()
    {
        using var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        using var tr = new SandwichTrainer(m, Data.Value, Opts, 2);
        var results = Enumerable.Range(0, 100).Select(_ => tr.TrainStep()).ToList();
        foreach (var w in m.Config.Widths)
        {
            double Avg(IEnumerable<StepResult> rs) =>
                rs.SelectMany(r => r.Losses).Where(l => l.Width == w).Average(l => l.Loss);
            double first = Avg(results.Take(10)), last = Avg(results.Skip(80));
            TestContext.Out.WriteLine($"width {w}: loss {first:F4} -> {last:F4}");
            // ε-prediction starts at E[ε²] = 1 (zero-initialised output); a learning model gets well below.
            Assert.That(last, Is.LessThan(0.6 * first), $"width {w}");
        }
        Assert.That(results.All(r => r.Losses.Select(l => l.Width).Contains(1.0) &&
                                r.Losses.Select(l => l.Width).Contains(0.5)),
            "every step runs the largest and the smallest width");
    }

    private static (SlimUNet, SandwichTrainer) Make()
    {
        var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        return (m, new SandwichTrainer(m, Data.Value, Opts, 2));
    }

    [Test]
    public void ResumeGivesBitEqualLosses()
    {
        const int n = 6;
        double[] straight;
        {
            var (m, tr) = Make();
            straight = Enumerable.Range(0, n).SelectMany(_ => tr.TrainStep().Losses.Select(l => l.Loss)).ToArray();
            tr.Dispose(); m.Dispose();
        }
        var rot = new CheckpointRotation(_dir, 2);
        var resumed = new List<double>();
        {
            var (m, tr) = Make();
            for (int i = 0; i < n / 2; i++) resumed.AddRange(tr.TrainStep().Losses.Select(l => l.Loss));
            Checkpoint.Save(rot, tr);
            for (int i = 0; i < 2; i++) tr.TrainStep();       // work lost in the "crash"
            tr.Dispose(); m.Dispose();
        }
        {
            var (m, tr) = Make();
            Checkpoint.Restore(rot.Latest()!, tr);
            Assert.That(tr.Step, Is.EqualTo(n / 2));
            for (int i = n / 2; i < n; i++) resumed.AddRange(tr.TrainStep().Losses.Select(l => l.Loss));
            tr.Dispose(); m.Dispose();
        }
        Assert.That(resumed, Is.EqualTo(straight));
    }

    [Test]
    public void BadCheckpointsFailClearlyAndChangeNothing()
    {
        var (m, tr) = Make();
        using var _m = m; using var _t = tr;
        tr.TrainStep();
        var rot = new CheckpointRotation(_dir, 3);
        var good = Checkpoint.Save(rot, tr);
        var before = m.StateDict();

        var bytes = File.ReadAllBytes(good);
        var truncated = Path.Combine(_dir, "truncated.safetensors");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        Assert.Throws<DataFormatException>(() => Checkpoint.Restore(truncated, tr));

        var notCkpt = Path.Combine(_dir, "plain.safetensors");
        SafeTensors.Write(notCkpt, [SafeTensor.F32("x", [1f], 1)]);
        var ex = Assert.Throws<DataFormatException>(() => Checkpoint.Restore(notCkpt, tr));
        Assert.That(ex!.Message, Does.Contain("not a DDSM training checkpoint"));

        // A checkpoint of another model: clear error naming both.
        using (var other = new SlimUNet(Cpu, SlimUNetTests.TestConfig with { Name = "wider", ModelChannels = 32 }, 1))
        using (var otr = new SandwichTrainer(other, Data.Value, Opts, 2))
        {
            var otherPath = Checkpoint.Save(new CheckpointRotation(Path.Combine(_dir, "o"), 1), otr);
            ex = Assert.Throws<DataFormatException>(() => Checkpoint.Restore(otherPath, tr));
            Assert.That(ex!.Message, Does.Contain("wider").And.Contain("test"));
        }
        Assert.That(m.StateDict(), Is.EqualTo(before), "a failed restore must not change the model");

        // A kill -9 during a save leaves only a temp file beside the good checkpoint.
        File.WriteAllBytes(AtomicFile.TempPathFor(rot.PathFor(99)), bytes[..100]);
        Assert.That(rot.Latest(), Is.EqualTo(good));
        Assert.DoesNotThrow(() => Checkpoint.Restore(rot.Latest()!, tr));
    }

    /// <summary>
    /// Checkpoints and step times do not depend on anyone listening (a null onNote once skipped the saves).
    /// </summary>
    [Test]
    public void ARunWithoutCallbacksStillCheckpointsAndTimesItsSteps()
    {
        var (m, tr) = Make();
        using var _m = m; using var _t = tr;
        var run = new TrainRun(tr, new RunOptions(_dir, Steps: 3, CheckpointEvery: 2, KeepCheckpoints: 5));
        run.Run();
        Assert.That(run.Checkpoints.List().Select(c => c.Step), Is.EqualTo(new long[] { 2, 3 }));
        var secs = File.ReadLines(run.MetricsPath)
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("seconds").GetDouble())
            .ToList();
        Assert.That(secs, Has.Count.EqualTo(3).And.All.GreaterThan(0));
        Assert.That(TrainRun.TrainingSeconds(run.MetricsPath), Is.EqualTo(secs.Sum()).Within(1e-9));
    }

    /// <summary>
    /// Training cost from metrics.jsonl: step seconds where present, else timestamp gaps under 10 minutes.
    /// </summary>
    [Test]
    public void TrainingSecondsSumsStepTimesAndSkipsResumeGaps()
    {
        var p = Path.Combine(_dir, "metrics.jsonl");
        File.WriteAllLines(p,
        [
            """{"step":1,"time":"2026-01-01T00:00:00.0000000Z"}""",
            """{"step":2,"time":"2026-01-01T00:00:30.0000000Z"}""",          // 30 s after the last line
            """{"step":3,"time":"2026-01-01T05:00:00.0000000Z"}""",          // a stop and a resume: not counted
            """{"step":4,"time":"2026-01-01T05:00:20.0000000Z"}""",          // 20 s
            """{"step":5,"seconds":2.5,"time":"2026-01-01T09:00:00.0000000Z"}""",
            """{"step":6,"seconds":1.5,"time":"2026-01-""",                 // cut by a kill: skipped
            "",
        ]);
        Assert.That(TrainRun.TrainingSeconds(p), Is.EqualTo(52.5).Within(1e-9));
        Assert.That(TrainRun.TrainingSeconds(Path.Combine(_dir, "none.jsonl")), Is.EqualTo(0));
    }

    [Test]
    public void NanLossStopsNamesTheStepAndKeepsTheLastCheckpoint()
    {
        var (m, tr) = Make();
        using var _m = m; using var _t = tr;
        var run = new TrainRun(tr, new RunOptions(_dir, Steps: 4, CheckpointEvery: 2));
        var notes = new List<string>();
        run.Run(onNote: notes.Add);                  // steps 1..4, checkpoints at 2 and 4
        var last = run.Checkpoints.Latest();
        Assert.That(last, Is.Not.Null,
                    $"no checkpoint after 4 steps in {_dir} (step {tr.Step}); notes: {string.Join("; ", notes)}; " +
            $"files: {string.Join("; ", Directory.GetFiles(_dir, "*", SearchOption.AllDirectories))}");
        var lastBytes = File.ReadAllBytes(last!);
        var p = m.Parameters()[0];
        var a = p.ToArray(); a[0] = float.NaN; p.CopyFrom(a);
        var run2 = new TrainRun(tr, new RunOptions(_dir, Steps: 8, CheckpointEvery: 1));
        var ex = Assert.Throws<TrainingDivergedException>(() => run2.Run());
        Assert.That(ex!.Step, Is.EqualTo(5));
        Assert.That(ex.Message, Does.Contain("step 5"));
        Assert.That(run2.Checkpoints.Latest(), Is.EqualTo(last));
        Assert.That(File.ReadAllBytes(last!), Is.EqualTo(lastBytes));
    }

    [Test]
    public void EmaWarmsUpSoShortRunsForgetTheInitialWeights()
    {
        var (m, tr) = Make();
        using var _m = m; using var _t = tr;
        Assert.That(tr.EmaDecayAt(0), Is.EqualTo(0.1f).Within(1e-7));
        Assert.That(tr.EmaDecayAt(1_000_000), Is.EqualTo(Opts.EmaDecay));
        // Product of decays over the first 300 steps: the initial weights' share in the EMA.
        double keep = 1;
        for (int s = 0; s < 300; s++) keep *= tr.EmaDecayAt(s);
        Assert.That(keep, Is.LessThan(0.05));
    }

    [Test]
    public void TimestepRangeRestrictsTheDrawnTimesteps()
    {
        using var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        using var tr = new SandwichTrainer(m, Data.Value, Opts with { TMin = 250, TMax = 499 }, 2);
        var seen = new List<float>();
        for (int i = 0; i < 3; i++) { tr.TrainStep(); seen.AddRange(tr.LastTimesteps); }
        Assert.That(seen, Has.All.InRange(250f, 499f));
        Assert.That(seen.Distinct().Count(), Is.GreaterThan(20), "draws spread over the range");
        Assert.Throws<ArgumentException>(() => (Opts with { TMin = 600, TMax = 500 }).Validate());
        Assert.Throws<ArgumentException>(() => new SandwichTrainer(m, Data.Value, Opts with { TMax = 1000 }, 2));
    }

    [Test]
    public void WrongImageSizeIsAClearError()
    {
        using var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        var ex =
            Assert.Throws<ArgumentException>(() => new SandwichTrainer(m, Datasets.EmbeddedFashionMnist(), Opts, 2));
        Assert.That(ex!.Message, Does.Contain("28").And.Contain("8×8"));
    }
}
