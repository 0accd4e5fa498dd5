using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// What the output looks like. On a terminal Spectre.Console sizes and colours itself; into a file or a pipe
/// (logs, CI, `| tee`) it would still colour when $TERM says the terminal can, and wrap every line at 80
/// columns, since a redirected stream has no width: there the output is plain text, one line per line.
/// </summary>
internal static class Terminal
{
    /// <summary>Wide enough that no line is wrapped, small enough for Spectre's layout buffers.</summary>
    public const int UnwrappedWidth = 10_000;

    /// <summary>Sets the console Spectre writes to from what standard output is.</summary>
    public static void Configure()
    {
        if (Console.IsOutputRedirected) AnsiConsole.Console = Plain(Console.Out);
    }

    /// <summary>
    /// A console writing plain text to <paramref name="output"/>: no ANSI codes, no colour, no wrapping.
    /// </summary>
    public static IAnsiConsole Plain(TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = UnwrappedWidth;
        return console;
    }
}
