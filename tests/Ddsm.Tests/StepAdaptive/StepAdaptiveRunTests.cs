using Ddsm.Data;
using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.StepAdaptive;
using Ddsm.Training;
using Ddsm.Tests.Model;
using Ddsm.Tests.Runs;
using static Ddsm.Tests.StepAdaptive.StepAdaptiveTestUtil;

namespace Ddsm.Tests.StepAdaptive;

/// <summary>
/// The step-adaptive run end to end on the 8×8 test UNet: a base checkpoint, two SNR groups, a few fine-tuning
/// steps each, the grouped checkpoint; resume, refusals, cancellation and malformed grouped files.
/// </summary>
public class StepAdaptiveRunTests
{
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(8));
    private string _dir = null!;

    [SetUp] public void MakeDir() => _dir = Directory.CreateTempSubdirectory("ddsm-stepadapt-").FullName;
    [TearDown] public void RemoveDir() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private static readonly StepAdaptiveOptions Opts = new()
    {
        Groups = 2, K = 0.2, Order = BudgetOrder.HighNoiseGetsMore, Prune = PruneMode.Importance, StepsPerGroup = 4,
        CheckpointEvery = 2,
        FineTune = new TrainOptions { BatchSize = 4, Lr = 1e-3f, WarmupSteps = 2, EmaDecay = 0.9f, SandwichN = 2 },
        Importance = new ImportanceOptions(Batches: 1, BatchSize: 4, Seed: 3),
        Loss = new GroupLossOptions(Batches: 1, BatchSize: 8),
        Seed = 5,
    };

    /// <summary>A base run directory: the test UNet after 3 sandwich steps, one checkpoint.</summary>
    private string BaseCheckpoint()
    {
        using var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        using var tr =
            new SandwichTrainer(m, Data.Value, new TrainOptions { BatchSize = 4, WarmupSteps = 1, SandwichN = 2 }, 2);
        for (int i = 0; i < 3; i++) tr.TrainStep();
        return Checkpoint.Save(new CheckpointRotation(Path.Combine(_dir, "base", "checkpoints"), 1), tr);
    }

    /// <summary>A copy of a file with one low bit of its last byte flipped (a weight that stays finite).</summary>
    private string Flipped(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 1;
        var p = Path.Combine(_dir, "flipped-" + Path.GetFileName(path));
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static Dictionary<string, float[]> Tensors(string path) =>
        SafeTensors.Read(path).Tensors.ToDictionary(t => t.Name, t => t.ToFloat());

    [Test]
    public void EachGroupIsFineTunedOnItsOwnStepsAtItsWidthAndTheResultLoadsAsOneGroupedModel()
    {
        var basePath = BaseCheckpoint();
        var run = new StepAdaptiveRun(Cpu, basePath, Data.Value, Path.Combine(_dir, "sa"), Opts);
        var notes = new List<string>();
        var seen = new Dictionary<int, List<double>>();
        var r = run.Run((g, s) =>
            { if (!seen.TryGetValue(g, out var l)) seen[g] = l = new(); l.AddRange(s.Losses.Select(x => x.Width)); },
                        notes.Add);

        Assert.That(r.Completed, Is.True);
        // Test config widths {½, 1}, k = 0.2, high noise gets more: group 0 (low noise) ½, group 1 full.
        Assert.That(r.Plan.GroupWidths, Is.EqualTo(new[] { 0.5, 1.0 }));
        Assert.That(seen[0], Has.All.EqualTo(0.5), "the pruned group trains only at its width");
        Assert.That(seen[1], Is.SupersetOf(new[] { 0.5, 1.0 }), "the full group keeps the sandwich over both widths");
        Assert.That(r.Reports.Select(x => x.Steps), Is.All.EqualTo(4));
        Assert.That(r.Reports.Select(x => x.Pruning), Is.All.EqualTo("importance"));
        Assert.That(r.Reports.All(x => x.TrainSeconds > 0 && double.IsFinite(x.FinalLoss)), Is.True);
        Assert.That(r.Reports[1].ImportanceLoss,
            Is.EqualTo(r.Reports[1].PrefixLoss).Within(1e-5 * r.Reports[1].PrefixLoss),
            "at full width the importance order computes the same function");

        // Every group's training drew t from its own range only (saved with its checkpoints).
        for (int g = 0; g < 2; g++)
        {
            var (_, meta, _) =
                Checkpoint.Read(new CheckpointRotation(Path.Combine(run.GroupDir(g), "checkpoints"), 9).Latest()!);
            var to = TrainOptions.FromJson(meta["train_options"]);
            Assert.That((to.TMin, to.TMax), Is.EqualTo((run.Groups.Groups[g].TFirst, run.Groups.Groups[g].TLast)));
        }

        using var gm = GroupedCheckpoint.Load(r.CheckpointPath, Cpu);
        Assert.That(gm.GroupWidths, Is.EqualTo(r.Plan.GroupWidths));
        Assert.That(gm.Models.Select(m => m.Config.MaxWidth), Is.EqualTo(r.Plan.GroupWidths));
        Assert.That(gm.Groups.Groups.Select(g => (g.TFirst, g.TLast)),
                    Is.EqualTo(run.Groups.Groups.Select(g => (g.TFirst, g.TLast))));
        Assert.That(gm.Plan!.SameAs(r.Plan), Is.True);
        // The grouped file holds each group's EMA weights as they were when the group finished.
        var saved = Tensors(r.CheckpointPath);
        for (int g = 0; g < 2; g++)
        {
            var ema = Tensors(new CheckpointRotation(Path.Combine(run.GroupDir(g), "checkpoints"), 9).Latest()!);
            foreach (var (name, _) in gm.Models[g].NamedParameters())
                Assert.That(saved[$"group{g}.{name}"], Is.EqualTo(ema["ema." + name]), $"group {g} {name}");
        }
        // The pruned group's model really is a new model: it differs from the base.
        var baseW = Tensors(basePath);
        Assert.That(saved["group0.out.2.weight"], Is.Not.EqualTo(baseW["ema.out.2.weight"]));
    }

    /// <summary>
    /// Auto pruning keeps importance order only where it lowers the group's loss at its width; a full-width
    /// group keeps the base's prefix (the permutation cannot help there and would scramble the narrower widths).
    /// </summary>
    [Test]
    public void AutoPruningKeepsTheLowerLossAndNeverPermutesAFullWidthGroup()
    {
        var basePath = BaseCheckpoint();
        var r = new StepAdaptiveRun(Cpu, basePath, Data.Value, Path.Combine(_dir, "sa"),
                                    Opts with { Prune = PruneMode.Auto, StepsPerGroup = 1 }).Run();
        var narrow = r.Reports[0];
        Assert.That(narrow.Width, Is.EqualTo(0.5));
        Assert.That(narrow.ImportanceLoss, Is.Not.Null);
        Assert.That(narrow.ImportanceLoss, Is.Not.EqualTo(narrow.PrefixLoss), "the order changes the narrow model");
        Assert.That(narrow.Pruning, Is.EqualTo(narrow.ImportanceLoss < narrow.PrefixLoss ? "importance" : "prefix"));
        var full = r.Reports[1];
        Assert.That((full.Width, full.Pruning, full.ImportanceLoss), Is.EqualTo((1.0, "prefix", (double?)null)));
    }

    [Test]
    public void AResumedRunEqualsAnUninterruptedOneBitForBit()
    {
        var basePath = BaseCheckpoint();
        var straight = new StepAdaptiveRun(Cpu, basePath, Data.Value, Path.Combine(_dir, "a"), Opts).Run();
        // Stop after 2 steps of each group, then resume to 4: same grouped checkpoint.
        new StepAdaptiveRun(Cpu, basePath, Data.Value, Path.Combine(_dir, "b"), Opts with { StepsPerGroup = 2 }).Run();
        Assert.That(new CheckpointRotation(Path.Combine(_dir, "b", "group1", "checkpoints"), 9).Latest(),
            Does.EndWith("000000002.safetensors"), "a run without listeners still checkpoints");
        var notes = new List<string>();
        var resumed = new StepAdaptiveRun(Cpu, basePath, Data.Value, Path.Combine(_dir, "b"),
                                          Opts with { Resume = true }).Run(onNote: notes.Add);
        Assert.That(notes.Count(n => n.Contains("resumed from")), Is.EqualTo(2), string.Join("\n", notes));
        var a = Tensors(straight.CheckpointPath);
        var b = Tensors(resumed.CheckpointPath);
        Assert.That(b.Keys, Is.EquivalentTo(a.Keys));
        foreach (var (k, v) in a) Assert.That(b[k], Is.EqualTo(v), k);
        Assert.That(resumed.Reports.Select(x => x.FinalLoss), Is.EqualTo(straight.Reports.Select(x => x.FinalLoss)));
    }

    [Test]
    public void ExistingRunsAreNotOverwrittenAndAChangedPlanIsRefused()
    {
        var basePath = BaseCheckpoint();
        var dir = Path.Combine(_dir, "sa");
        new StepAdaptiveRun(Cpu, basePath, Data.Value, dir, Opts with { StepsPerGroup = 1 }).Run();
        var before = File.ReadAllBytes(Path.Combine(dir, "stepadapt.safetensors"));
        var ex = Assert.Throws<IOException>(() => new StepAdaptiveRun(Cpu, basePath, Data.Value, dir, Opts));
        Assert.That(ex!.Message, Does.Contain("--resume"));
        var wrongSize = Assert.Throws<ArgumentException>(() =>
            new StepAdaptiveRun(Cpu, basePath, Datasets.EmbeddedFashionMnist(), Path.Combine(_dir, "x"), Opts));
        Assert.That(wrongSize!.Message, Does.Contain("28").And.Contain("8×8"));
        var changed = new StepAdaptiveRun(Cpu, basePath, Data.Value, dir, Opts with { K = 0.9, Resume = true });
        var ex2 = Assert.Throws<ArgumentException>(() => changed.Run());
        Assert.That(ex2!.Message, Does.Contain("differs"));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "stepadapt.safetensors")), Is.EqualTo(before),
                    "a refused run changes nothing");
    }

    [Test]
    public void ACancelledRunWritesNoGroupedCheckpointButKeepsItsGroupCheckpoints()
    {
        var basePath = BaseCheckpoint();
        var dir = Path.Combine(_dir, "sa");
        using var cts = new CancellationTokenSource();
        var notes = new List<string>();
        var r = new StepAdaptiveRun(Cpu, basePath, Data.Value, dir, Opts)
            // Steps are reported when their losses are read (here at the checkpoints, every 2 steps), so a cancel
            // from the callback lands at the read: step 2.
            .Run((g, s) => { if (s.Step == 2) cts.Cancel(); }, notes.Add, cts.Token);
        Assert.That(r.Completed, Is.False);
        Assert.That(File.Exists(Path.Combine(dir, "stepadapt.safetensors")), Is.False);
        Assert.That(r.Reports.Single().Steps, Is.EqualTo(2));
        Assert.That(new CheckpointRotation(Path.Combine(dir, "group0", "checkpoints"), 9).Latest(),
            Does.EndWith("000000002.safetensors"),
            string.Join("\n", notes.Concat(Directory.GetFiles(dir, "*", SearchOption.AllDirectories))));
        var done = new StepAdaptiveRun(Cpu, basePath, Data.Value, dir, Opts with { Resume = true }).Run();
        Assert.That(done.Completed, Is.True);
    }

    [Test]
    public void MalformedGroupedCheckpointsFailWithAClearErrorBeforeAnythingIsBuilt()
    {
        var basePath = BaseCheckpoint();
        var good = new StepAdaptiveRun(Cpu, basePath, Data.Value, Path.Combine(_dir, "sa"),
                                       Opts with { StepsPerGroup = 1 }).Run().CheckpointPath;
        var f = SafeTensors.Read(good);
        string Variant(string name, Func<Dictionary<string, string>, Dictionary<string, string>> meta,
                       Func<IEnumerable<SafeTensor>, IEnumerable<SafeTensor>>? tensors = null)
        {
            var p = Path.Combine(_dir, name + ".safetensors");
            SafeTensors.Write(p, (tensors ?? (t => t))(f.Tensors).ToList(),
                              meta(LegacyFiles.WithoutChecksums(f.Metadata)));
            return p;
        }
        var cases = new Dictionary<string, string>
        {
            ["not a step-adaptive checkpoint"] = basePath,
            ["group t ranges"] = Variant("ranges", m => { m["group_ranges"] = "0-100,101-999"; return m; }),
            ["is not one of the model's widths"] = Variant("width", m => { m["group_widths"] = "0.3,1"; return m; }),
            ["group widths for"] = Variant("count", m => { m["group_widths"] = "1"; return m; }),
            ["grouping"] = Variant("mode", m => { m["grouping"] = "Fancy"; return m; }),
            ["'groups'"] = Variant("groups", m => { m["groups"] = "-2"; return m; }),
            ["metadata 'config' missing"] = Variant("noconfig", m => { m.Remove("config"); return m; }),
            ["'group1.out.2.weight' missing"] =
                Variant("tensor", m => m, ts => ts.Where(t => t.Name != "group1.out.2.weight")),
            ["does not match its checksum"] = Flipped(good),
        };
        foreach (var (want, path) in cases)
        {
            var ex = Assert.Throws<DataFormatException>(() => GroupedCheckpoint.Load(path, Cpu).Dispose(), want);
            Assert.That(ex!.Message, Does.Contain(want));
        }
        // Written before the schedule was part of the config: it comes from the saved train options. The same
        // file claiming a cosine schedule is refused, as its groups' t ranges are not that schedule's.
        string Legacy(string schedule) => Variant("legacy-" + schedule, m =>
        {
            m["config"] = LegacyFiles.ConfigWithoutSchedule(m["config"]);
            m["train_options"] = $$"""{"BatchSize":4,"Schedule":"{{schedule}}","DiffusionSteps":1000}""";
            return m;
        });
        using (var old = GroupedCheckpoint.Load(Legacy("linear"), Cpu))
            Assert.That((old.Schedule.Kind, old.Schedule.T, old.BaseConfig.Schedule),
                        Is.EqualTo(("linear", 1000, "linear")));
        Assert.That(() => GroupedCheckpoint.Load(Legacy("cosine"), Cpu).Dispose(),
            Throws.TypeOf<DataFormatException>()
                .With.Message.Contains("differ from this schedule's grouping '0-942,943-999'"));
        var bytes = File.ReadAllBytes(good);
        var cut = Path.Combine(_dir, "cut.safetensors");
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        Assert.Throws<DataFormatException>(() => GroupedCheckpoint.Load(cut, Cpu).Dispose());
    }
}
