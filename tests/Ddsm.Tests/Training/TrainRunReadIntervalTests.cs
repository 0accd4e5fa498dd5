using System.Text.Json;
using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Model;
using Ddsm.Tests.Model;
using Ddsm.Training;

namespace Ddsm.Tests.Training;

/// <summary>
/// The losses read once per N steps (RunOptions.LogEvery): a resume from a checkpoint inside a read interval
/// repeats the run bit for bit (weights and metrics lines), and a non-finite step found by a later read stops
/// the run naming that step, with every parameter as the last good step left it and no checkpoint written.
/// </summary>
public class TrainRunReadIntervalTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(8));
    private string _dir = null!;

    [SetUp] public void MakeDir() => _dir = Directory.CreateTempSubdirectory("ddsm-read-interval-").FullName;
    [TearDown] public void RemoveDir() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private static readonly TrainOptions Opts = new()
    {
        BatchSize = 4, Lr = 2e-3f, WarmupSteps = 2, EmaDecay = 0.99f, SandwichN = 3, HorizontalFlip = true,
    };

    private static (SlimUNet, SandwichTrainer) Make()
    {
        var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig with { NumClasses = 10 }, 1);
        return (m, new SandwichTrainer(m, Data.Value, Opts with { LabelDropout = 0.3 }, 7));
    }

    /// <summary>The metrics lines without their wall-clock fields (seconds, time).</summary>
    private static string[] Lines(string path) => File.ReadAllLines(path).Select(l =>
    {
        var o = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(l)!;
        o.Remove("seconds"); o.Remove("time");
        return JsonSerializer.Serialize(o);
    }).ToArray();

    private static float[][] Weights(SlimUNet m) => m.Parameters().Select(p => p.ToArray()).ToArray();

    [Test]
    public void ResumeFromACheckpointInsideAReadIntervalIsBitIdentical()
    {
        string straightDir = Path.Combine(_dir, "straight"), resumedDir = Path.Combine(_dir, "resumed");
        string[] straight; float[][] straightWeights;
        {
            var (m, tr) = Make();
            using var _m = m; using var _t = tr;
            new TrainRun(tr, new RunOptions(straightDir, Steps: 7, CheckpointEvery: 0, LogEvery: 3)).Run();
            (straight, straightWeights) = (Lines(Path.Combine(straightDir, "metrics.jsonl")), Weights(m));
        }
        Assert.That(straight, Has.Length.EqualTo(7));
        {
            // Reads at 3, 4 (the checkpoint: mid-interval), 6 (the end); then the "crash" loses step 6's checkpoint.
            var (m, tr) = Make();
            using var _m = m; using var _t = tr;
            var run = new TrainRun(tr, new RunOptions(resumedDir, Steps: 6, CheckpointEvery: 4, LogEvery: 3));
            run.Run();
            Assert.That(run.Checkpoints.List().Select(c => c.Step), Is.EqualTo(new long[] { 4, 6 }));
            File.Delete(run.Checkpoints.Latest()!);
        }
        {
            var (m, tr) = Make();
            using var _m = m; using var _t = tr;
            var run = new TrainRun(tr, new RunOptions(resumedDir, Steps: 7, CheckpointEvery: 0, Resume: true,
                LogEvery: 3));
            Assert.That(run.TryResume(), Does.Contain("000000004"));
            run.Run();
            Assert.That(Lines(run.MetricsPath), Is.EqualTo(straight), "metrics lines, wall-clock fields aside");
            Assert.That(Weights(m), Is.EqualTo(straightWeights), "weights bit for bit");
        }
    }

    [Test]
    public void ANonFiniteStepFoundByALaterReadStopsTheRunAtThatStep()
    {
        var (m, tr) = Make();
        using var _m = m; using var _t = tr;
        new TrainRun(tr, new RunOptions(_dir, Steps: 3, CheckpointEvery: 0, LogEvery: 10)).Run();
        var run = new TrainRun(tr, new RunOptions(_dir, Steps: 8, CheckpointEvery: 0, LogEvery: 10));
        var checkpoint = run.Checkpoints.Latest()!;
        var checkpointBytes = File.ReadAllBytes(checkpoint);
        var good = Weights(m);
        // From step 4 on every image is NaN: the read at step 8 finds steps 4..8 diverged.
        var images = tr.Resident.Images;
        Cpu.Fill(images.Buffer, 0, images.Length, float.NaN);
        var seen = new List<long>();
        var ex = Assert.Throws<TrainingDivergedException>(() => run.Run(r => seen.Add(r.Step)));
        Assert.That(ex!.Step, Is.EqualTo(4));
        Assert.That(ex.Message, Does.Contain("step 4").And.Contain("loss is NaN"));
        Assert.That(Weights(m), Is.EqualTo(good), "steps 4..8 moved no parameter");
        Assert.That(seen, Is.Empty, "no step after 3 was reported");
        Assert.That(File.ReadAllLines(run.MetricsPath), Has.Length.EqualTo(3), "metrics stop at the last good step");
        Assert.That(run.Checkpoints.Latest(), Is.EqualTo(checkpoint));
        Assert.That(File.ReadAllBytes(checkpoint), Is.EqualTo(checkpointBytes), "the last good checkpoint untouched");
    }
}
