namespace Ddsm.Cli.Tests;

public class TrainCommandTests
{
    [Test]
    public void TrainsCheckpointsAndWritesMetrics()
    {
        var (dir, r) = Shared.Trained;
        Assert.That(r.Out, Does.Contain("model fmnist32-custom:").And.Contain("widths 0.5, 1"));
        Assert.That(r.Out, Does.Contain("done: step 3"));
        var ckpts = Directory.GetFiles(Path.Combine(dir, "checkpoints")).Select(Path.GetFileName).Order().ToArray();
        Assert.That(ckpts, Is.EqualTo(new[] { "ckpt-000000002.safetensors", "ckpt-000000003.safetensors" }));
        Assert.That(File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")), Has.Length.EqualTo(3));
    }

    [Test]
    public void ResumesFromTheNewestCheckpointAndStopsWhenDone()
    {
        var dir = Path.Combine(Shared.Root, "train-resume");
        CopyDirectory(Shared.Trained.Dir, dir);
        var r = Ddsm.Ok(["train", .. Shared.TrainArgs(dir), "--steps", "4", "--resume"]);
        Assert.That(r.Out, Does.Contain("resumed from").And.Contain("ckpt-000000003").And.Contain("at step 3"));
        Assert.That(r.Out, Does.Contain("done: step 4"));
        Assert.That(File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")), Has.Length.EqualTo(4));
        var again = Ddsm.Ok(["train", .. Shared.TrainArgs(dir), "--steps", "4", "--resume"]);
        Assert.That(again.Out, Does.Contain("already at step 4 ≥ 4; nothing to do"));
    }

    [Test]
    public void ProfilePrintsTheHostTransfersPerTrainingStep()
    {
        try
        {
            var dir = Path.Combine(Shared.Root, "train-profile");
            var r = Ddsm.Ok(["train", .. Shared.TrainArgs(dir), "--steps", "4", "--log-every", "2", "--profile"]);
            // Nothing in (the batch is drawn on the device), the losses and gradient norms of 2 steps out in one
            // read; checkpoint saves are not steps. metrics.jsonl still has a line per step.
            Assert.That(r.Out,
                Does.Contain("host transfers per training step: 0 copies in, 0.5 copies out, 0 syncs (over 4 steps"));
            Assert.That(File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")), Has.Length.EqualTo(4));
            // The head and the tail come every step: captured at step 2, replayed at steps 2, 3 and 4 (here a
            // replay reruns the step), and so does each pass width that comes twice or more.
            var graphs = System.Text.RegularExpressions.Regex.Match(r.Out,
                @"step graphs: (\d+) captured, (\d+) replayed \(re-run step\) over 4 steps");
            Assert.That(graphs.Success, r.Out);
            Assert.That(int.Parse(graphs.Groups[1].Value), Is.GreaterThanOrEqualTo(2), "captured: head, tail, …");
            Assert.That(int.Parse(graphs.Groups[2].Value), Is.GreaterThanOrEqualTo(6), "replayed: 3 heads, 3 tails, …");
        }
        finally { Engine.Profiler.Enabled = false; }
    }

    [Test]
    public void BadOptionsAreOneLineErrors()
    {
        var r =
            Ddsm.Run(["train", .. Shared.TrainArgs(Path.Combine(Shared.Root, "bad"), widths: "0.3,1"), "--steps", "1"]);
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        Assert.That(r.Err.Trim(), Does.StartWith("error: UNet config").And.Contain("width 0.3"));
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(Directory.Exists(Path.Combine(Shared.Root, "bad", "checkpoints")), Is.False);
    }

    internal static void CopyDirectory(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(d.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(f, f.Replace(from, to));
    }
}
