using Ddsm.Data;
using Ddsm.Diffusion;
using Ddsm.Engine.Cpu;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Runs;
using Ddsm.Training;
using Ddsm.Tests.Model;

namespace Ddsm.Tests.Runs;

/// <summary>
/// Checkpoints are checked on load: their checksums (when they have them) and every weight used finite.
/// </summary>
public class CheckpointIntegrityTests
{
    private string _dir = null!;

    [SetUp] public void MakeDir() => _dir = Directory.CreateTempSubdirectory("ddsm-integrity-").FullName;
    [TearDown] public void RemoveDir() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private string TrainedCheckpoint()
    {
        using var m = new SlimUNet(CpuBackend.Instance, SlimUNetTests.TestConfig, 1);
        var data = Datasets.EmbeddedFashionMnist().ToResolution(8);
        using var tr =
            new SandwichTrainer(m, data, new TrainOptions { BatchSize = 4, WarmupSteps = 1, SandwichN = 2 }, 2);
        tr.TrainStep();
        return Checkpoint.Save(new CheckpointRotation(Path.Combine(_dir, "checkpoints"), 1), tr);
    }

    /// <summary>
    /// The same file as written before checksums, with <paramref name="edit"/> applied to its tensors.
    /// </summary>
    private string Old(string path, string name, Func<SafeTensor, SafeTensor>? edit = null)
    {
        var f = SafeTensors.Read(path);
        var p = Path.Combine(_dir, name + ".safetensors");
        SafeTensors.Write(p, f.Tensors.Select(edit ?? (t => t)).ToList(), LegacyFiles.WithoutChecksums(f.Metadata));
        return p;
    }

    private static float[] Sample(string path, bool ema = true)
    {
        using var m = LoadedModel.Load(path, CpuBackend.Instance, new LoadOptions(Ema: ema));
        return BatchSampler.Sample(m.Denoiser, m.Schedule, m.Strategy,
            new SampleSpec(SamplerKind.Ddim, new SamplerOptions(2), 1, 1, 3));
    }

    [Test]
    public void AFlippedBitInAWeightIsRefusedAndAnOldFileWithoutChecksumsStillLoads()
    {
        var path = TrainedCheckpoint();
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 1;   // a low mantissa bit of the last Adam moment: a finite number, only a checksum sees it
        var flipped = Path.Combine(_dir, "flipped.safetensors");
        File.WriteAllBytes(flipped, bytes);
        var e = Assert.Throws<DataFormatException>(() => LoadedModel.Load(flipped, CpuBackend.Instance).Dispose());
        Assert.That(e!.Message, Does.Contain("does not match its checksum"));

        Assert.That(Sample(Old(path, "old")), Is.EqualTo(Sample(path)),
                    "the same weights without checksums load as before");
    }

    [Test]
    public void ANaNInAnEmaWeightIsRefusedWhenTheEmaWeightsAreUsed()
    {
        var path = TrainedCheckpoint();
        const string name = "ema.out.2.weight";
        var nan = Old(path, "nan",
                      t => t.Name != name ? t
                          : SafeTensor.F32(name, t.ToFloat().Select((v, i) => i == 5 ? float.NaN : v).ToArray(),
                                           t.Shape));
        var e = Assert.Throws<DataFormatException>(() => LoadedModel.Load(nan, CpuBackend.Instance).Dispose());
        Assert.That(e!.Message, Does.Contain($"tensor '{name}' holds NaN at element 5"));
        Assert.That(Sample(nan, ema: false), Has.All.Matches<float>(float.IsFinite),
                    "the raw weights it holds are fine");
    }
}
