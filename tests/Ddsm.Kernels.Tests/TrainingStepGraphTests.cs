using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Training;

namespace Ddsm.Kernels.Tests;

/// <summary>
/// Training with replayed step graphs on ILGPU's CPU accelerator, where a replay reissues the launches recorded at
/// capture with their baked arguments, as a CUDA graph would: bit-identical to training with every part run as it
/// is (losses, gradient norms, parameters, EMA), with the head, the tail and each pass key (a width; the middle
/// widths change places between steps) replayed several times, the log read every 3 steps, and a rewind to a
/// checkpoint in the middle. So no part of a step passes a per-step host value as a kernel argument; a pass that
/// does (the dropout seed as a host argument, the trainer's old way) is caught. Every launch costs milliseconds
/// here, so the UNet is the smallest with every trained part (ResBlocks with dropout, the middle attention, class
/// labels): one level at 4×4 pixels, one ResBlock a level, 8 channels, 4 widths, one image a step, 4 passes a
/// step, 3 steps a run (the suite runs in CI's 10 minutes).
/// </summary>
[TestFixture]
public class TrainingStepGraphTests
{
    private static IlgpuBackend Gpu => IlgpuBackend.CpuAccelerator;
    private const int Steps = 3, ReadEvery = 3, RewindAt = 2;
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(4));
    private static UNetConfig Config => UNetConfig.Tiny with
    {
        Name = "nano", ImageSize = 4, ModelChannels = 8, ChannelMult = [1], NumResBlocks = 1, Groups = 2,
        HeadChannels = 2, AttentionResolutions = [], Widths = [0.25, 0.5, 0.75, 1.0], Dropout = 0.2f, NumClasses = 10,
    };
    private static readonly TrainOptions Opts = new()
    {
        BatchSize = 1, SandwichN = 4, WarmupSteps = 3, HorizontalFlip = true, LabelDropout = 0.3, EmaDecay = 0.99f,
    };

    [SetUp]
    public void Exact() => Gpu.ExactFp32 = true;

    private sealed record Run(List<StepResult> Results, float[][] Params, float[][] Ema, StepGraphCounts Graphs,
        long StepTransfers);

    /// <summary>
    /// Trains to step <paramref name="steps"/> from fixed seeds, reading the log every <see cref="ReadEvery"/> steps;
    /// <paramref name="rewind"/> saves a checkpoint after step <see cref="RewindAt"/>, trains one more and restores it
    /// (a resume into a trainer whose graphs were captured: they replay the restored state's steps).
    /// </summary>
    private static Run Train(bool graphs, bool hostDropoutSeeds = false, bool rewind = false, int steps = Steps)
    {
        using var scope = new TensorScope();
        using var model = new SlimUNet(Gpu, Config, 1);
        using var tr = new SandwichTrainer(model, Data.Value, Opts, 7)
        {
            StepGraphs = graphs, HostDropoutSeeds = hostDropoutSeeds,
        };
        tr.ReserveLog(ReadEvery);
        var results = new List<StepResult>();
        var before = Gpu.StepGraphs;
        long transfers = 0;
        string? dir = null;
        try
        {
            void Step()
            {
                var t0 = Gpu.Transfers;
                tr.QueueStep();
                var d = Gpu.Transfers - t0;
                transfers += d.CopiesIn + d.CopiesOut + d.Syncs;
                if (tr.UnreadSteps == ReadEvery || tr.Step == steps) Read();
            }
            void Read()
            {
                var (good, diverged) = tr.ReadSteps();
                Assert.That(diverged, Is.Null);
                results.RemoveAll(r => good.Any(g => g.Step == r.Step));   // a rewind redoes steps
                results.AddRange(good);
            }
            while (tr.Step < steps)
            {
                Step();
                if (rewind && tr.Step == RewindAt && dir is null)
                {
                    Read();
                    dir = Directory.CreateTempSubdirectory("ddsm-tcap-").FullName;
                    var path = Checkpoint.Save(new CheckpointRotation(dir, 1), tr);
                    Step();
                    Read();
                    Checkpoint.Restore(path, tr);
                }
            }
        }
        finally
        {
            if (dir is not null) Directory.Delete(dir, recursive: true);
        }
        return new Run(results, model.Parameters().Select(p => p.ToArray()).ToArray(),
            tr.Ema.Shadow.Select(s => s.ToArray()).ToArray(), Gpu.StepGraphs - before, transfers);
    }

    private static readonly Lazy<Run> Eager = new(() => Train(graphs: false));

    private static void AssertSameTraining(Run got, Run want, string what)
    {
        Assert.That(got.Results.Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, Steps).Select(s => (long)s)),
            $"{what}: every step logged once");
        Assert.That(got.Results.Select(r => r.Losses), Is.EqualTo(want.Results.Select(r => r.Losses)),
            $"{what}: widths and losses");
        Assert.That(got.Results.Select(r => (r.GradNorm, r.Lr)),
            Is.EqualTo(want.Results.Select(r => (r.GradNorm, r.Lr))), $"{what}: gradient norms and rates");
        Assert.That(got.Params, Is.EqualTo(want.Params), $"{what}: parameters");
        Assert.That(got.Ema, Is.EqualTo(want.Ema), $"{what}: EMA");
    }

    /// <summary>
    /// Captured, with a rewind: steps 1–3 (each key's first occurrence runs as it is, its second is captured, it and
    /// every later one replay), the restore of step 2's checkpoint (the device's counters are uploaded again; the
    /// graphs stay, the noise seed being the same), step 3 again, replayed.
    /// </summary>
    [Test]
    public void CapturedTrainingWithARewindIsBitIdenticalToTrainingRunAsItIs()
    {
        var eager = Eager.Value;
        Assert.That(eager.Graphs, Is.EqualTo(default(StepGraphCounts)), "no graph without StepGraphs");
        Assert.That(eager.Results.SelectMany(r => r.Losses).Select(l => l.Loss).All(double.IsFinite));
        var middles = eager.Results.Select(r => r.Losses.Skip(2).Select(l => l.Width).ToArray()).ToList();
        Assert.That(middles.Any(m => m[0] != middles[0][0]) || middles.Any(m => m[1] != middles[0][1]),
            "a middle width changes its place in the step (the seed's draws do)");
        var captured = Train(graphs: true, rewind: true);
        AssertSameTraining(captured, eager, "replayed");
        // Keys: the head, the tail and the passes at widths 1 and ¼ every step, two middle widths (½, ¾) a step;
        // the steps run: 1, 2, 3 and 3 again.
        var run = eager.Results.Append(eager.Results[^1]).ToList();
        var keys = run.SelectMany(r => r.Losses.Select(l => $"pass@{l.Width}"))
            .Concat(Enumerable.Repeat("head", run.Count)).Concat(Enumerable.Repeat("tail", run.Count))
            .GroupBy(k => k).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(keys.Count(k => k.Value >= 4), Is.GreaterThanOrEqualTo(4), "keys replayed several times");
        Assert.That(captured.Graphs, Is.EqualTo(new StepGraphCounts(keys.Count(k => k.Value >= 2),
            keys.Values.Sum(n => n - 1))), "graphs captured and replayed");
        Assert.That(captured.StepTransfers, Is.EqualTo(1),
            "one copy in: the counters, at the first step after the rewind; no other step made a host transfer");
    }

    [Test]
    public void APassWithAHostDropoutSeedReplaysWrongly()
    {
        // Step 2's passes are captured and replayed with its own seeds (right); step 3 replays them again.
        var replayed = Train(graphs: true, hostDropoutSeeds: true, steps: 3);
        var eager = Eager.Value.Results;
        Assert.That(replayed.Results.Take(2).Select(r => r.Losses), Is.EqualTo(eager.Take(2).Select(r => r.Losses)),
            "right while no pass replays another step's");
        Assert.That(replayed.Results[2].Losses, Is.Not.EqualTo(eager[2].Losses),
            "a replayed pass reuses the seed it was captured with: its dropout masks repeat");
    }
}
