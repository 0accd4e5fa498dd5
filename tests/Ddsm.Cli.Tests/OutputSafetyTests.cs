using System.Diagnostics;

namespace Ddsm.Cli.Tests;

/// <summary>
/// Outputs never destroy an input or a checkpoint, and a bad output path fails before any work (issue 14: 1, 6).
/// </summary>
public class OutputSafetyTests
{
    /// <summary>The newest checkpoint of the shared run, copied alone into a folder of its own.</summary>
    private static string CheckpointCopy(string name)
    {
        var dir = Path.Combine(Shared.Root, name);
        Directory.CreateDirectory(dir);
        var ckpt = Path.Combine(dir, "model.safetensors");
        File.Copy(Directory.GetFiles(Path.Combine(Shared.Trained.Dir, "checkpoints")).Order().Last(), ckpt);
        return ckpt;
    }

    /// <summary>
    /// The data loss: the raw samples went to ChangeExtension(--out, ".safetensors"), the checkpoint.
    /// </summary>
    [Test]
    public void SamplingACheckpointToItsOwnNameLeavesItByteIdentical()
    {
        var ckpt = CheckpointCopy("own-name");
        var before = File.ReadAllBytes(ckpt);
        var r = Ddsm.Run("sample", "--checkpoint", ckpt, "--steps", "2", "-n", "2", "--out",
                         Path.ChangeExtension(ckpt, ".png"));
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        Assert.That(r.Err.Trim(), Is.EqualTo($"error: '{ckpt}' is an input of this command; writing it would destroy " +
                                             $"it: choose another --out"));
        Assert.That(File.ReadAllBytes(ckpt), Is.EqualTo(before));
        Assert.That(File.Exists(Path.ChangeExtension(ckpt, ".png")), Is.False, "nothing written");
    }

    [Test]
    public void AnotherCheckpointAtTheOutputIsReplacedOnlyWithForce()
    {
        var other = CheckpointCopy("other-ckpt");
        var png = Path.ChangeExtension(other, ".png");
        var before = File.ReadAllBytes(other);
        string[] args = ["sample", "--checkpoint", Shared.Trained.Dir, "--steps", "2", "-n", "2", "--out", png];
        var r = Ddsm.Run(args);
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        Assert.That(r.Err.Trim(), Does.EndWith("is a checkpoint; it is not replaced (--force replaces it)"));
        Assert.That(File.ReadAllBytes(other), Is.EqualTo(before));
        Ddsm.Ok([.. args, "--force"]);
        Assert.That(File.ReadAllBytes(other), Is.Not.EqualTo(before), "--force: replaced by the samples");
    }

    /// <summary>
    /// Before, the unwritable --out failed only after all the sampling ("Could not find file '/proc/x'"): with
    /// 500 images of 200 steps that is minutes on this machine, so the bound below can only be met by checking first.
    /// </summary>
    [Test]
    public void AnUnwritableOutputFailsBeforeAnySampling()
    {
        var sw = Stopwatch.StartNew();
        var r = Ddsm.Run("sample", "--checkpoint", Shared.Trained.Dir, "--steps", "200", "-n", "500", "--out",
                         "/proc/x/s.png");
        Assert.That(r.Code, Is.EqualTo(2), r.ToString());
        Assert.That(r.Err.Trim(), Does.StartWith("error: cannot write '/proc/x/s.png'"));
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(sw.Elapsed.TotalSeconds, Is.LessThan(30), "checked before sampling");
    }

    [Test]
    public void TrainingFeaturesOverACheckpointIsRefused()
    {
        var ckpt = CheckpointCopy("features-over-ckpt");
        var before = File.ReadAllBytes(ckpt);
        var r = Ddsm.Run("eval", "train-features", "--steps", "1", "--out", ckpt, "--cache", Shared.Cache);
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        Assert.That(File.ReadAllBytes(ckpt), Is.EqualTo(before));
    }
}
