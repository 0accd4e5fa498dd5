using Ddsm.IO;
using Ddsm.Model;

namespace Ddsm.Cli.Tests;

/// <summary>
/// <c>ddsm import</c> on the committed PyTorch fixtures (tests/Ddsm.Tests/Fixtures/Torch, written by
/// bench/pytorch/make_fixtures.py), as a user runs it: the checkpoint it writes is one `ddsm sample` takes.
/// What the import computes (ε̂ equal to PyTorch's at every width) is checked in Ddsm.Tests' ImportTests.
/// </summary>
public class ImportCommandTests
{
    private static string Fixture(string name) =>
        Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "Torch", name);

    private static string Out(string name) => Path.Combine(Shared.Root, "import", name);

    /// <summary>The config of our PyTorch model's state dict (ours.pt carries none), as a JSON file.</summary>
    private static string OursConfig()
    {
        var json = Out("ours-config.json");
        Directory.CreateDirectory(Path.GetDirectoryName(json)!);
        File.WriteAllText(json, SafeTensors.Read(Fixture("ours-expected.safetensors")).Metadata["config"]);
        return json;
    }

    [Test]
    public void ATorchSaveOfOurModelImportsAndSamples()
    {
        var ckpt = Out("ours.safetensors");
        var r = Ddsm.Ok("import", Fixture("ours.pt"), "--preset", OursConfig(), "--out", ckpt);
        Assert.That(r.Out, Does.Contain($"{Fixture("ours.pt")}: a state dict, "));
        Assert.That(r.Out, Does.Contain($"wrote {ckpt}: sample it with `ddsm sample --checkpoint {ckpt}`"));
        var file = SafeTensors.Read(ckpt);
        Assert.That(file.Metadata["format"], Is.EqualTo(Training.Checkpoint.Format));
        Assert.That(file.Tensors.Select(t => t.Name), Has.Some.StartsWith("ema."), "EMA weights, which sample reads");

        // What the message says to do next works: the imported checkpoint samples.
        var png = Out("ours-sample.png");
        var s = Ddsm.Ok("sample", "--checkpoint", ckpt, "--steps", "2", "-n", "2", "--batch", "2", "--out", png);
        Assert.That(s.Out, Does.Contain($"wrote {png}"));
        Assert.That(SafeTensors.Read(Path.ChangeExtension(png, ".safetensors"))["samples"].Shape[0], Is.EqualTo(2));
    }

    [Test]
    public void TheDdsmReleaseLayoutSaysWhatItLeftOut()
    {
        // The release's structure at the size of the fixture (make_fixtures.RELEASE_SMALL), named by a config file.
        var json = Out("release-small.json");
        Directory.CreateDirectory(Path.GetDirectoryName(json)!);
        File.WriteAllText(json, (UNetConfig.Cifar10Ddsm with
        {
            Name = "release-small", ImageSize = 8, ModelChannels = 32, ChannelMult = [1, 1], NumResBlocks = 1,
            AttentionResolutions = [4], Groups = 8, Widths = [0.5, 1.0],
        }).ToJson());
        var ckpt = Out("release.safetensors");
        var r = Ddsm.Ok("import", Fixture("ddsm-release.pt"), "--layout", "ddsm-release", "--preset", json,
            "--out", ckpt);
        Assert.That(r.Out, Does.Contain(", step 450000"));
        Assert.That(r.Out, Does.Contain("not imported: sched, optim, x_T"));
        Assert.That(r.Out, Does.Contain("model 'release-small'").And.Contain("widths 0.5, 1"));
        Assert.That(File.Exists(ckpt));
    }

    [Test]
    public void AHostilePickleIsAOneLineErrorAndWritesNothing()
    {
        var ckpt = Out("hostile.safetensors");
        var r = Ddsm.Run("import", Fixture("hostile.pt"), "--preset", "tiny", "--out", ckpt);
        Assert.That(r.Code, Is.EqualTo(2), "bad input\n" + r);
        Assert.That(r.Err.Trim(), Does.StartWith("error: ").And.Contain("refused global 'posix.system'")
            .And.Not.Contain("\n"));
        Assert.That(File.Exists(ckpt), Is.False);
    }

    [Test]
    public void AMissingFileAndAnUnknownLayoutAreOneLineErrors()
    {
        var missing = Out("nothing-here.pt");
        var r = Ddsm.Run("import", missing, "--out", Out("x.safetensors"));
        Assert.That(r.Code, Is.EqualTo(2), "bad input");
        Assert.That(r.Err.Trim(), Is.EqualTo($"error: checkpoint '{missing}' not found"));

        r = Ddsm.Run("import", Fixture("ours.pt"), "--layout", "keras", "--out", Out("x.safetensors"));
        Assert.That(r.Code, Is.EqualTo(1), "a usage error");
        Assert.That(r.Err.Trim(), Is.EqualTo("error: unknown layout 'keras' (ours, ddsm-release)"));
    }
}
