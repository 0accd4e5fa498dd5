using Ddsm.IO;

namespace Ddsm.Cli.Tests;

public class EvalCommandTests
{
    [Test]
    public void TrainFeaturesSavesANetAndSaysHowGoodItIs()
    {
        var (path, r) = Shared.Features;
        Assert.That(r.Out,
                    Does.Contain("feature net: training 30 steps on 1,800 images of fashion-mnist-2k (200 held out)"));
        Assert.That(r.Out, Does.Match(@"held-out accuracy \d+\.\d %"));
        Assert.That(SafeTensors.Read(path).Metadata["format"], Is.EqualTo("ddsm-featurenet-v1"));
    }

    [Test]
    public void ScoreGivesTheMetricsBesideTheRealVsRealBaseline()
    {
        var png = Path.Combine(Shared.Root, "score", "s.png");
        Ddsm.Ok("sample", "--checkpoint", Shared.Trained.Dir, "--steps", "2", "-n", "4", "--out", png);
        var r = Ddsm.Ok("eval", "score", "--samples", Path.ChangeExtension(png, ".safetensors"), "--features",
            Shared.Features.Path, "--cache", Shared.Cache);
        Assert.That(r.Out, Does.Match(@"^N=4 FD \d+\.\d+  KID .*\[real-vs-real baseline: FD \d+\.\d+ "));
    }

    [Test]
    public void ScoringSomethingThatIsNotASampleFileIsAOneLineError()
    {
        var r = Ddsm.Run("eval", "score", "--samples", Shared.Features.Path, "--features", Shared.Features.Path,
                         "--cache", Shared.Cache);
        Assert.That(r.Code, Is.EqualTo(2), "bad input");
        Assert.That(r.Err.Trim(), Does.StartWith("error: ").And.Contain("is a 'ddsm-featurenet-v1' file, not samples"));
    }
}
