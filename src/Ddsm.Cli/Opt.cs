using System.CommandLine;

namespace Ddsm.Cli;

/// <summary>
/// Option declarations in one line each: the name, the default (shown by --help) and the help text, in that order.
/// </summary>
internal static class Opt
{
    /// <summary>An option with a default value.</summary>
    public static Option<T> Of<T>(string name, T value, string description) =>
        new(name) { Description = description, DefaultValueFactory = _ => value };

    /// <summary>An option without a default: null (or false, 0) when not given.</summary>
    public static Option<T> Of<T>(string name, string description) => new(name) { Description = description };

    /// <summary>An option the verb cannot run without.</summary>
    public static Option<T> Required<T>(string name, string description) =>
        new(name) { Description = description, Required = true };
}
