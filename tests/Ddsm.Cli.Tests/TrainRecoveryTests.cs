using System.Runtime.InteropServices;
using System.Text.Json;

namespace Ddsm.Cli.Tests;

/// <summary>
/// Training after a hard kill, a damaged checkpoint, a signal; options that were silently accepted (issue 14: 5, 7, 8).
/// </summary>
public class TrainRecoveryTests
{
    /// <summary>The steps metrics.jsonl logs, in order (every line must be whole JSON).</summary>
    private static long[] MetricSteps(string dir) =>
        File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToArray();

    private static string CopyOfTrainedRun(string name)
    {
        var dir = Path.Combine(Shared.Root, name);
        TrainCommandTests.CopyDirectory(Shared.Trained.Dir, dir);
        return dir;
    }

    private static string Ckpt(string dir, long step) =>
        Path.Combine(dir, "checkpoints", $"ckpt-{step:D9}.safetensors");

    /// <summary>
    /// kill -9 after step 3 was logged but before its checkpoint: the newest checkpoint is step 2's, metrics.jsonl
    /// holds steps 1–3. Resuming redoes step 3; before, metrics.jsonl then held it twice.
    /// </summary>
    [Test]
    public void AfterAHardKillResumeLogsEveryStepExactlyOnce()
    {
        var dir = CopyOfTrainedRun("killed");
        File.Delete(Ckpt(dir, 3));
        File.AppendAllText(Path.Combine(dir, "metrics.jsonl"), "{\"step\": 4, \"loss");   // a line cut by the kill
        var r = Ddsm.Ok(["train", .. Shared.TrainArgs(dir), "--steps", "5", "--resume"]);
        Assert.That(r.Out, Does.Contain("at step 2"));
        Assert.That(MetricSteps(dir), Is.EqualTo(new long[] { 1, 2, 3, 4, 5 }));
    }

    [Test]
    public void ATruncatedNewestCheckpointFallsBackToTheOneBeforeAndSaysSo()
    {
        var dir = CopyOfTrainedRun("truncated");
        var newest = Ckpt(dir, 3);
        File.WriteAllBytes(newest, File.ReadAllBytes(newest)[..5000]);
        var r = Ddsm.Ok(["train", .. Shared.TrainArgs(dir), "--steps", "4", "--resume"]);
        Assert.That(r.Out, Does.Contain($"cannot resume from {newest}: "));
        Assert.That(r.Out, Does.Contain($"resuming from {Ckpt(dir, 2)}, the newest checkpoint that loads"));
        Assert.That(r.Out, Does.Contain("at step 2").And.Contain("done: step 4"));
        Assert.That(MetricSteps(dir), Is.EqualTo(new long[] { 1, 2, 3, 4 }));
    }

    [TestCase("--steps", "-5")]
    [TestCase("--steps", "0")]
    [TestCase("--sample-every", "-1")]
    public void NonPositiveStepCountsAreRefused(string option, string value)
    {
        var dir = Path.Combine(Shared.Root, "bad-steps" + option + value);
        string[] steps = option == "--steps" ? [] : ["--steps", "1"];
        var r = Ddsm.Run(["train", .. Shared.TrainArgs(dir), .. steps, option, value]);
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        Assert.That(r.Err.Trim(), Does.StartWith($"error: {option} must be"));
    }

    /// <summary>
    /// The data set is recorded: resuming without --data uses it; another one is used only when given, and said.
    /// </summary>
    [Test]
    public void ResumeTrainsOnTheRecordedDataSetAndSaysWhenAnotherIsGiven()
    {
        var dir = CopyOfTrainedRun("other-data");
        var r = Ddsm.Ok(["train", .. Shared.TrainArgs(dir), "--steps", "4", "--resume", "--data", Shared.OtherData]);
        Assert.That(r.Out, Does.Contain($"--data {Shared.OtherData}: the checkpoint was trained on fmnist-embedded; " +
                                        $"training continues on {Shared.OtherData}, as asked"));
        var again = Ddsm.Ok(["train", .. Shared.TrainArgs(dir), "--steps", "5", "--resume"]);
        Assert.That(again.Out, Does.Contain($"data {Shared.OtherData} (fashion-mnist-2k)"), "the newest checkpoint's");
        Assert.That(again.Out, Does.Not.Contain("as asked"));
    }

    [Test]
    public void AFreshStartInARunDirectoryIsRefusedUnlessForced()
    {
        var dir = CopyOfTrainedRun("fresh-over");
        var before = File.ReadAllBytes(Ckpt(dir, 3));
        var r = Ddsm.Run(["train", .. Shared.TrainArgs(dir), "--steps", "2"]);
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        Assert.That(r.Err.Trim(),
                    Does.Contain("already holds a run (checkpoints up to step 3): --resume continues it"));
        Assert.That(File.ReadAllBytes(Ckpt(dir, 3)), Is.EqualTo(before));
        Ddsm.Ok(["train", .. Shared.TrainArgs(dir), "--steps", "2", "--force"]);
        Assert.That(File.Exists(Ckpt(dir, 3)), Is.False);
        Assert.That(MetricSteps(dir), Is.EqualTo(new long[] { 1, 2 }));
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private const int Sigterm = 15;

    /// <summary>
    /// A real SIGTERM to this process while `ddsm train` runs in it: training stops at the step boundary, saves,
    /// exits 143 (it was 130) and says it stopped (it said "done").
    /// </summary>
    [Test, Platform("Linux,MacOsX")]
    public void SigtermStopsTrainingWithExitCode143AndSaysSo()
    {
        var dir = Path.Combine(Shared.Root, "sigterm");
        var metrics = Path.Combine(dir, "metrics.jsonl");
        var run = Task.Run(() => Ddsm.Run(["train", .. Shared.TrainArgs(dir), "--steps", "100000"]));
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!(File.Exists(metrics) && new FileInfo(metrics).Length > 0) && DateTime.UtcNow < deadline &&
               !run.IsCompleted)
            Thread.Sleep(20);
        Assert.That(run.IsCompleted, Is.False, "training is under way");
        Assert.That(Kill(Environment.ProcessId, Sigterm), Is.EqualTo(0));
        Assert.That(run.Wait(TimeSpan.FromMinutes(2)), Is.True, "stopped");
        var r = run.Result;
        Assert.That(r.Code, Is.EqualTo(143), r.ToString());
        Assert.That(r.Err, Does.Contain("SIGTERM: stopping after the current step"));
        Assert.That(r.Out,
                    Does.Match(@"stopped by SIGTERM at step \d+ of 100000 \(checkpoint saved\); --resume continues"));
        Assert.That(r.Out, Does.Not.Contain("done: step"));
        Assert.That(Directory.GetFiles(Path.Combine(dir, "checkpoints")), Is.Not.Empty);
    }

    [Test]
    public void SigintGivesExitCode130()
    {
        var err = Console.Error;
        Console.SetError(TextWriter.Null);
        try
        {
            using var stop = new Common.StopSignal();
            Assert.That(stop.ExitCode, Is.EqualTo(0));
            stop.Request(PosixSignal.SIGINT);
            stop.Request(PosixSignal.SIGTERM);
            Assert.That((stop.Requested, stop.ExitCode), Is.EqualTo((true, 130)), "the first signal counts");
        }
        finally { Console.SetError(err); }
    }
}
