using Ddsm.Data;
using Ddsm.Diffusion;
using Ddsm.Engine.Cpu;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Runs;
using Ddsm.Training;
using Ddsm.Tests.Model;

namespace Ddsm.Tests.Runs;

public class LoadedModelTests
{
    private string _dir = null!;

    [SetUp] public void MakeDir() => _dir = Directory.CreateTempSubdirectory("ddsm-loaded-").FullName;
    [TearDown] public void RemoveDir() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>A training checkpoint of the test UNet on a cosine schedule of 500 steps, after 2 steps.</summary>
    private string Checkpoint500Cosine()
    {
        var cfg = SlimUNetTests.TestConfig with { Schedule = "cosine", DiffusionSteps = 500 };
        using var m = new SlimUNet(CpuBackend.Instance, cfg, 1);
        var data = Datasets.EmbeddedFashionMnist().ToResolution(8);
        using var tr =
            new SandwichTrainer(m, data, new TrainOptions { BatchSize = 4, WarmupSteps = 1, SandwichN = 2 }, 2);
        for (int i = 0; i < 2; i++) tr.TrainStep();
        return Checkpoint.Save(new CheckpointRotation(Path.Combine(_dir, "run", "checkpoints"), 1), tr,
                               dataSpec: "fmnist-embedded");
    }

    private static float[] Sample(LoadedModel m) =>
        BatchSampler.Sample(m.Denoiser, m.Schedule, m.Strategy,
                            new SampleSpec(SamplerKind.Ddim, new SamplerOptions(3), 2, 2, 7));

    [Test]
    public void ARunDirectoryLoadsWithItsScheduleConfigAndDataSet()
    {
        Checkpoint500Cosine();
        using var m = LoadedModel.Load(Path.Combine(_dir, "run"), CpuBackend.Instance);
        Assert.That((m.Schedule.Kind, m.Schedule.T), Is.EqualTo(("cosine", 500)));
        Assert.That(m.Config.SameArchitecture(SlimUNetTests.TestConfig), Is.True);
        Assert.That(m.DataSpec, Is.EqualTo("fmnist-embedded"));
        Assert.That(m.Plain, Is.Not.Null);
        Assert.That(m.Strategy.T, Is.EqualTo(500));
    }

    /// <summary>
    /// A checkpoint written the old way (schedule in the train options, not in the config) loads with that
    /// schedule and samples the same images as today's file of the same weights; one whose train options do
    /// not name a schedule either gets the linear 1000-step one those runs trained on.
    /// </summary>
    [Test]
    public void OldCheckpointsKeepTheScheduleOfTheirTrainOptions()
    {
        var path = Checkpoint500Cosine();
        var f = SafeTensors.Read(path);
        string Old(string name, string trainOptions)
        {
            var meta = new Dictionary<string, string>(LegacyFiles.WithoutChecksums(f.Metadata))
            {
                ["config"] = LegacyFiles.ConfigWithoutSchedule(f.Metadata["config"]), ["train_options"] = trainOptions,
            };
            var p = Path.Combine(_dir, name + ".safetensors");
            SafeTensors.Write(p, f.Tensors, meta);
            return p;
        }
        using var today = LoadedModel.Load(path, CpuBackend.Instance);
        using var old = LoadedModel.Load(Old("old", """{"BatchSize":4,"Schedule":"cosine","DiffusionSteps":500}"""),
                                         CpuBackend.Instance);
        Assert.That((old.Schedule.Kind, old.Schedule.T), Is.EqualTo(("cosine", 500)));
        Assert.That(old.Schedule.AlphaBars, Is.EqualTo(today.Schedule.AlphaBars));
        Assert.That(Sample(old), Is.EqualTo(Sample(today)));
        using var older = LoadedModel.Load(Old("older", """{"BatchSize":4}"""), CpuBackend.Instance);
        Assert.That((older.Schedule.Kind, older.Schedule.T), Is.EqualTo(("linear", 1000)));
    }

    [Test]
    public void AFeatureNetOrANonCheckpointIsAClearError()
    {
        var net = Path.Combine(_dir, "features.safetensors");
        using (var fn = new Ddsm.Eval.FeatureNet(CpuBackend.Instance, 1, 10, seed: 1)) fn.Save(net);
        var ex = Assert.Throws<ArgumentException>(() => LoadedModel.Load(net, CpuBackend.Instance));
        Assert.That(ex!.Message, Does.Contain("is a feature net"));
        Assert.Throws<FileNotFoundException>(() => LoadedModel.Load(Path.Combine(_dir, "none"), CpuBackend.Instance));
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        Assert.Throws<FileNotFoundException>(() => LoadedModel.Load(Path.Combine(_dir, "empty"), CpuBackend.Instance));
    }
}
