using Ddsm.IO;

namespace Ddsm.Cli.Tests;

public class StepAdaptCommandTests
{
    [Test]
    public void TrainsGroupsComparesAndTheGroupedCheckpointSamples()
    {
        var dir = Path.Combine(Shared.Root, "stepadapt");
        var r = Ddsm.Ok("stepadapt", "--base", Shared.Trained.Dir, "--groups", "2", "--steps", "2", "--batch", "2",
            "--sandwich-n", "2", "--warmup", "1", "--importance-batches", "1", "--checkpoint-every", "0", "--features",
            Shared.Features.Path, "-n", "4",
            "--eval-batch", "4", "--sample-steps", "2", "--out", dir, "--cache", Shared.Cache);
        var grouped = Path.Combine(dir, "stepadapt.safetensors");
        Assert.That(SafeTensors.Read(grouped).Metadata["format"], Is.EqualTo("ddsm-stepadapt-v1"));
        Assert.That(r.Out, Does.Contain("group 2/2 step 2/2"));
        Assert.That(r.Out, Does.Contain("| step-adaptive |").And.Contain("| base, full width |"));
        var report = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.That(report,
                    Does.StartWith("# Step-adaptive training report").And.Contain("## Plan")
                        .And.Contain("## Comparison"));
        Assert.That(report, Does.Contain("data fashion-mnist-2k"), "the base's data set, recorded in its checkpoint");

        var s = Ddsm.Ok("sample", "--checkpoint", dir, "--steps", "2", "-n", "2", "--out", Path.Combine(dir, "s.png"));
        Assert.That(s.Out, Does.Contain("step-adaptive: 2 group models"));
    }

    [Test]
    public void ABaseThatIsNotATrainingCheckpointIsAOneLineError()
    {
        var r = Ddsm.Run("stepadapt", "--base", Shared.Features.Path, "--out",
            Path.Combine(Shared.Root, "stepadapt-bad"), "--cache", Shared.Cache);
        Assert.That(r.Code, Is.EqualTo(2), "bad input");
        Assert.That(r.Err.Trim(), Does.StartWith("error: ").And.Contain("not a DDSM training checkpoint"));
    }
}
