using Ddsm.IO;

namespace Ddsm.Cli.Tests;

public class SampleCommandTests
{
    private static string[] Args(string outPath, params string[] more) =>
        ["sample", "--checkpoint", Shared.Trained.Dir, "--steps", "2", "-n", "3", "--batch", "2", "--seed", "1",
         "--out", outPath, .. more];

    [Test]
    public void WritesTheGridAndRawSamplesAndSameSeedSameImages()
    {
        var png = Path.Combine(Shared.Root, "sample", "a.png");
        var r = Ddsm.Ok(Args(png));
        var raw = Path.ChangeExtension(png, ".safetensors");
        Assert.That(r.Out, Does.Contain($"wrote {png} and {raw}"));
        Assert.That(r.Out, Does.Match(@"Ddim, 2 evaluations/image: \d+\.\d\d GFLOPs/image"));
        Assert.That(File.ReadAllBytes(png).Take(8), Is.EqualTo(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }),
                    "a PNG");
        var samples = SafeTensors.Read(raw);
        Assert.That(samples["samples"].Shape, Is.EqualTo(new long[] { 3, 1, 32, 32 }));
        Assert.That(samples.Metadata["strategy"], Is.EqualTo("uniform:1"));

        var again = Path.Combine(Shared.Root, "sample", "b.png");
        Ddsm.Ok(Args(again));
        Assert.That(SafeTensors.Read(Path.ChangeExtension(again, ".safetensors"))["samples"].ToFloat(),
            Is.EqualTo(samples["samples"].ToFloat()), "same checkpoint, seed and batches: same images");
    }

    [Test]
    public void ProfilePrintsTheHostTransfersAndStepGraphsPerStep()
    {
        try
        {
            var r = Ddsm.Ok(Args(Path.Combine(Shared.Root, "sample", "profiled.png"), "--profile"));
            // 3 images in batches of 2, 2 steps each: 4 steps; each batch's step table goes up once before its
            // first step and its images come back once at its end.
            Assert.That(r.Out,
                Does.Contain("host transfers per sample step: 0.5 copies in, 0.5 copies out, 0 syncs (over 4 steps"));
            // Per batch: the first step runs as it is, the second (same width and shape) is captured and replayed.
            Assert.That(r.Out, Does.Contain("step graphs: 2 captured, 2 replayed (re-run step) over 4 steps"));
        }
        finally { Engine.Profiler.Enabled = false; }
    }

    [Test]
    public void HalfWidthCostsLessThanFullWidth()
    {
        double Gflops(CliResult r) =>
            double.Parse(System.Text.RegularExpressions.Regex.Match(r.Out, @"(\d+\.\d+) GFLOPs/image").Groups[1].Value,
                         System.Globalization.CultureInfo.InvariantCulture);
        var full = Ddsm.Ok(Args(Path.Combine(Shared.Root, "sample", "full.png")));
        var half = Ddsm.Ok(Args(Path.Combine(Shared.Root, "sample", "half.png"), "--strategy", "uniform:0.5"));
        Assert.That(Gflops(half), Is.LessThan(0.5 * Gflops(full)));
    }

    [Test]
    public void AWidthTheModelDoesNotAllowIsAOneLineError()
    {
        var r = Ddsm.Run(Args(Path.Combine(Shared.Root, "sample", "bad.png"), "--strategy", "uniform:0.3"));
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err.Trim(),
                    Is.EqualTo("error: width 0.3 is not one of the allowed widths 0.5, 1 of 'fmnist32-custom'"));
    }

    [Test]
    public void AMissingCheckpointIsAOneLineError()
    {
        var r = Ddsm.Run("sample", "--checkpoint", Path.Combine(Shared.Root, "nothing-here"));
        Assert.That(r.Code, Is.EqualTo(2), "bad input");
        Assert.That(r.Err.Trim(), Does.StartWith("error: checkpoint").And.EndWith("not found"));
    }
}
