using System.Diagnostics;
using Spectre.Console;

namespace Ddsm.Cli.Tests;

/// <summary>
/// Redirected output is plain text: no colour codes, no lines wrapped at 80 columns; exit codes (issue 14: 9, 8).
/// </summary>
public class OutputHygieneTests
{
    [Test]
    public void ThePlainConsoleWritesNoEscapeCodesAndDoesNotWrap()
    {
        var w = new StringWriter();
        var console = Terminal.Plain(w);
        var line = string.Concat(Enumerable.Repeat("0123456789 ", 20)).Trim();
        console.MarkupLine($"[bold red]{line}[/]");
        Assert.That(w.ToString(), Is.EqualTo(line + Environment.NewLine));
    }

    /// <summary>
    /// The real program (Ddsm.Cli.dll beside the tests) with its output into a pipe and $TERM claiming colour: the
    /// kernel table keeps its rows whole (before, Spectre wrapped them at 80 columns, the width of no terminal).
    /// </summary>
    [Test]
    public void TheProgramIntoAPipeWritesWholeLinesWithoutEscapeCodes()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Ddsm.Cli.dll");
        Assert.That(File.Exists(dll), dll);
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("kernels");
        psi.Environment["TERM"] = "xterm-256color";
        psi.Environment.Remove("COLUMNS");
        psi.Environment.Remove("NO_COLOR");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        Assert.That(p.WaitForExit(120_000), Is.True);
        Assert.That(p.ExitCode, Is.EqualTo(0), stderr);
        var lines = stdout.Result.Split('\n');
        Assert.That(stdout.Result, Does.Not.Contain("\u001b["), "no ANSI escape codes");
        Assert.That(lines.Max(l => l.Length), Is.GreaterThan(100), "table rows are not wrapped at 80 columns");
        Assert.That(lines, Has.Some.Contains("kernels; `ddsm kernels --ptx DIR"));
    }

    /// <summary>The README's exit codes: 0 done, 1 usage error, 2 bad input (130/143: TrainRecoveryTests).</summary>
    [Test]
    public void ExitCodesFollowTheConvention()
    {
        Assert.That(Ddsm.Run("data", "info", "fmnist-embedded", "--cache", Shared.Cache).Code, Is.EqualTo(0));
        Assert.That(Ddsm.Run("sample", "--no-such-option").Code, Is.EqualTo(1), "a parse error");
        Assert.That(Ddsm.Run("data", "info", "nosuch", "--cache", Shared.Cache).Code, Is.EqualTo(1),
                    "a bad option value");
        var missing = Ddsm.Run("sample", "--checkpoint", Path.Combine(Shared.Root, "none.safetensors"));
        Assert.That(missing.Code, Is.EqualTo(2), "a missing file");
        var damaged = Path.Combine(Shared.Root, "damaged.safetensors");
        File.WriteAllBytes(damaged, [1, 2, 3]);
        var r = Ddsm.Run("sample", "--checkpoint", damaged);
        Assert.That(r.Code, Is.EqualTo(2), "a malformed file");
        Assert.That(r.Out, Is.Empty, "errors go to stderr only");
        Assert.That(r.Err, Does.StartWith("error: "));
    }
}
