namespace Ddsm.Cli.Tests;

public class DataCommandTests
{
    [Test]
    public void InfoDescribesTheEmbeddedSubset()
    {
        var r = Ddsm.Ok("data", "info", "fmnist-embedded", "--cache", Shared.Cache);
        Assert.That(r.Out.Trim(),
                    Is.EqualTo("fashion-mnist-2k: 2,000 images 1×28×28, classes: " +
                               string.Join(", ", Enumerable.Repeat(200, 10))));
    }

    [Test]
    public void AnUnknownSpecIsAOneLineError()
    {
        var r = Ddsm.Run("data", "info", "nosuch", "--cache", Shared.Cache);
        Assert.That(r.Code, Is.EqualTo(1));
        Assert.That(r.Err.Trim(), Does.StartWith("error: unknown data set spec 'nosuch'"));
    }
}
