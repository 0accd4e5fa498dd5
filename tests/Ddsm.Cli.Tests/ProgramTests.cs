namespace Ddsm.Cli.Tests;

public class ProgramTests
{
    [Test]
    public void AnUnknownVerbOrAMissingRequiredOptionIsAParseError()
    {
        var unknown = Ddsm.Run("sampel");
        Assert.That(unknown.Code, Is.Not.EqualTo(0));
        Assert.That(unknown.Err, Does.Contain("sampel"));
        var missing = Ddsm.Run("sample");
        Assert.That(missing.Code, Is.Not.EqualTo(0));
        Assert.That(missing.Err, Does.Contain("--checkpoint"));
    }

    [Test]
    public void HelpListsEveryVerb()
    {
        var r = Ddsm.Ok("--help");
        Assert.That(r.Out, Does.Contain("Usage:\n  ddsm [command] [options]"), "the program is called ddsm");
        foreach (var verb in new[] { "train", "sample", "data", "eval", "search", "stepadapt", "quickstart",
                                     "kernels" })
            Assert.That(r.Out, Does.Contain(verb));
    }
}

public class CommonTests
{
    [Test]
    public void UserErrorsAreOneLineOnStderrAndBugsKeepTheirTrace()
    {
        var err = new StringWriter();
        var old = Console.Error;
        Console.SetError(err);
        try
        {
            Assert.That(Common.Guard(() => throw new ArgumentException("--foo: bad")), Is.EqualTo(1));
            Assert.That(Common.Guard(() => throw new FileNotFoundException("x.safetensors not found")), Is.EqualTo(2),
                        "bad input");
            Assert.That(Common.Guard(() => throw new Engine.Ilgpu.DeviceException("no GPU")), Is.EqualTo(1));
            Assert.That(err.ToString(),
                        Is.EqualTo("error: --foo: bad\nerror: x.safetensors not found\nerror: no GPU\n"));
            Assert.That(() => Common.Guard(() => throw new InvalidOperationException("a bug")),
                        Throws.InvalidOperationException);
            Assert.That(() => Common.Guard(() => throw new ArgumentOutOfRangeException("i")),
                        Throws.TypeOf<ArgumentOutOfRangeException>());
            Assert.That(Common.Guard(() => 7), Is.EqualTo(7));
        }
        finally { Console.SetError(old); }
    }
}
