using Ddsm.Cli;
using Spectre.Console;

namespace Ddsm.Cli.Tests;

/// <summary>What one in-process run of <c>ddsm</c> returned and printed.</summary>
public sealed record CliResult(int Code, string Out, string Err)
{
    public override string ToString() => $"exit {Code}\n--- stdout\n{Out}\n--- stderr\n{Err}";
}

/// <summary>
/// Runs <c>ddsm ARGS</c> in this process through <see cref="Program.Main"/> (the real parsing and verbs), with
/// stdout, stderr and Spectre's console captured. Console is process-wide, so runs are serialised.
/// </summary>
public static class Ddsm
{
    private static readonly object Gate = new();

    public static CliResult Run(params string[] args)
    {
        lock (Gate)
        {
            var (oldOut, oldErr, oldAnsi) = (Console.Out, Console.Error, AnsiConsole.Console);
            using var o = new StringWriter();
            using var e = new StringWriter();
            try
            {
                Console.SetOut(o);
                Console.SetError(e);
                var console = AnsiConsole.Create(new AnsiConsoleSettings
                {
                    Out = new AnsiConsoleOutput(o), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
                    Interactive = InteractionSupport.No,
                });
                console.Profile.Width = 10_000;   // no wrapping: lines are asserted whole
                AnsiConsole.Console = console;
                int code = Program.Main(args);
                return new CliResult(code, o.ToString(), e.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
                AnsiConsole.Console = oldAnsi;
            }
        }
    }

    /// <summary>Runs and asserts exit code 0, printing the whole output when it is not.</summary>
    public static CliResult Ok(params string[] args)
    {
        var r = Run(args);
        TestContext.Out.WriteLine($"ddsm {string.Join(' ', args)}\n{r}");
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        return r;
    }
}
