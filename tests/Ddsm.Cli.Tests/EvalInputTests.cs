using Ddsm.IO;

namespace Ddsm.Cli.Tests;

/// <summary>eval score: the reference is the feature net's own data set, and bad sample files are one-line errors
/// (issue 14: 2, 3).</summary>
public class EvalInputTests
{
    private static readonly Lazy<string> SampleFile = new(() =>
    {
        var png = Path.Combine(Shared.Root, "eval-input", "s.png");
        Ddsm.Ok("sample", "--checkpoint", Shared.Trained.Dir, "--steps", "2", "-n", "4", "--out", png);
        return Path.ChangeExtension(png, ".safetensors");
    });

    /// <summary>
    /// A feature net trained on another data spec than the default (5 steps: only its record matters).
    /// </summary>
    private static readonly Lazy<string> OtherNet = new(() =>
    {
        var path = Path.Combine(Shared.Root, "eval-input", "other-features.safetensors");
        Ddsm.Ok("eval", "train-features", "--data", Shared.OtherData, "--steps", "5", "--out", path, "--cache",
                Shared.Cache);
        return path;
    });

    private static CliResult Score(string samples, string features, params string[] more) =>
        Ddsm.Run(["eval", "score", "--samples", samples, "--features", features, "--cache", Shared.Cache, .. more]);

    /// <summary>
    /// The wrong answer: MNIST samples were scored against the default Fashion-MNIST reference.
    /// </summary>
    [Test]
    public void TheReferenceIsTheDataSetTheFeatureNetWasTrainedOnAndAnotherIsRefusedUnlessAsked()
    {
        Assert.That(SafeTensors.Read(OtherNet.Value).Metadata["data"], Is.EqualTo(Shared.OtherData));
        var own = Score(SampleFile.Value, OtherNet.Value);
        Assert.That(own.Code, Is.EqualTo(0), own.ToString());
        Assert.That(own.Out, Does.Contain($"reference: {Shared.OtherData};"));

        var other = Score(SampleFile.Value, OtherNet.Value, "--data", "fmnist-embedded");
        Assert.That(other.Code, Is.EqualTo(1), other.ToString());
        Assert.That(other.Err.Trim(),
                    Is.EqualTo($"error: --data fmnist-embedded: the feature net '{OtherNet.Value}' was " +
            $"trained on {Shared.OtherData}; scores against another data set are not comparable (--other-data to " +
            $"do it anyway)"));
        var asked = Score(SampleFile.Value, OtherNet.Value, "--data", "fmnist-embedded", "--other-data");
        Assert.That(asked.Code, Is.EqualTo(0), asked.ToString());
        Assert.That(asked.Out, Does.Contain("reference: fmnist-embedded;"));
    }

    private static string Samples(string name, float[] values, params long[] shape)
    {
        var path = Path.Combine(Shared.Root, "eval-input", name + ".safetensors");
        SafeTensors.Write(path, [SafeTensor.F32("samples", values, shape)]);   // as sample files were written before
        return path;
    }

    [TestCase("nan", "image 1 holds NaN")]
    [TestCase("rgb", "has shape (4, 3, 32, 32); the feature net takes (N, 1, 32, 32)")]
    [TestCase("one", "1 image(s): the metrics need at least 4")]
    [TestCase("checkpoint", "is a 'ddsm-checkpoint-v1' file, not samples")]
    public void ABadSampleFileIsOneLineOnStderrWithExitCode2(string kind, string message)
    {
        string path = kind switch
        {
            "nan" =>
                Samples("nan", Enumerable.Range(0, 4 * 1024).Select(i => i == 1500 ? float.NaN : 0.1f).ToArray(), 4, 1,
                        32, 32),
            "rgb" => Samples("rgb", new float[4 * 3 * 1024], 4, 3, 32, 32),
            "one" => Samples("one", new float[1024], 1, 1, 32, 32),
            _ => Directory.GetFiles(Path.Combine(Shared.Trained.Dir, "checkpoints")).Order().Last(),
        };
        var r = Score(path, Shared.Features.Path);
        Assert.That(r.Code, Is.EqualTo(2), r.ToString());
        Assert.That(r.Err, Does.StartWith("error: ").And.Contain(message).And.Not.Contain("   at "));
        Assert.That(r.Err.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
    }
}
