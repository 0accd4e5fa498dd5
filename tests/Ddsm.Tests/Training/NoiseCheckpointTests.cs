using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Tests.Model;
using Ddsm.Training;

namespace Ddsm.Tests.Training;

/// <summary>
/// The training noise stream's (seed, position) is part of a checkpoint: saved as metadata, restored exactly;
/// a checkpoint written before the stream existed (no "noise" entry) still resumes, with the trainer's fresh
/// stream; a malformed entry is a one-line format error.
/// </summary>
public class NoiseCheckpointTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private static readonly Lazy<ImageDataset> Data = new(() => Datasets.EmbeddedFashionMnist().ToResolution(8));
    private static readonly TrainOptions Opts = new() { BatchSize = 2, SandwichN = 2 };
    private string _dir = null!;

    [SetUp] public void MakeDir() => _dir = Directory.CreateTempSubdirectory("ddsm-noise-").FullName;
    [TearDown] public void RemoveDir() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private string WithNoise(string path, string? value)
    {
        var f = SafeTensors.Read(path);
        var meta = f.Metadata.Where(kv => kv.Key != "noise").ToDictionary(kv => kv.Key, kv => kv.Value);
        if (value is not null) meta["noise"] = value;
        var copy = Path.Combine(_dir, $"edited-{meta.Count}-{value?.Length ?? 0}.safetensors");
        SafeTensors.Write(copy, f.Tensors, TensorChecksums.Stamp(f.Tensors, meta));   // an edit, re-stamped
        return copy;
    }

    [Test]
    public void TheStreamPositionIsSavedRestoredAndOptionalInOlderFiles()
    {
        using var m = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        using var tr = new SandwichTrainer(m, Data.Value, Opts, 3);
        tr.TrainStep();
        tr.TrainStep();
        Assert.That(tr.Noise.Position, Is.EqualTo(2UL * 2 * 2 * 64), "2 steps × 2 passes × batch 2 × 64 floats");
        var path = Checkpoint.Save(new CheckpointRotation(_dir, 2), tr);
        Assert.That(SafeTensors.Read(path).Metadata["noise"],
            Is.EqualTo($"{tr.Noise.Seed:x16},{tr.Noise.Position:x16}"));

        using var m2 = new SlimUNet(Cpu, SlimUNetTests.TestConfig, 1);
        using var fresh = new SandwichTrainer(m2, Data.Value, Opts, 3);
        var start = fresh.Noise.GetState();
        Checkpoint.Restore(WithNoise(path, null), fresh);
        Assert.That(fresh.Noise.GetState(), Is.EqualTo(start), "an older checkpoint keeps the fresh stream");
        Checkpoint.Restore(path, fresh);
        Assert.That(fresh.Noise.GetState(), Is.EqualTo(tr.Noise.GetState()));

        var bad = WithNoise(path, "12,zz");
        Assert.That(() => Checkpoint.Restore(bad, fresh),
            Throws.TypeOf<DataFormatException>().With.Message.Contains("noise stream state unreadable"));
    }
}
