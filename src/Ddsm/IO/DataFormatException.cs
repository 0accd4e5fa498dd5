namespace Ddsm.IO;

/// <summary>
/// A data or checkpoint file is malformed. Every reader in Ddsm.IO and Ddsm.Data turns every way a
/// file can be wrong into this one type, with the file and the problem in the message, so callers
/// (and the fuzz tests) can tell a bad file from a bug (IndexOutOfRange etc. are always bugs).
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>The file (or stream name) that is malformed.</summary>
    public string FileName { get; }

    public DataFormatException(string source, string problem, Exception? inner = null)
        : base($"{source}: {problem}", inner) => FileName = source;

    /// <summary>Throws unless <paramref name="ok"/>; the message is built only on failure.</summary>
    public static void Check(bool ok, string source, string problem)
    {
        if (!ok) throw new DataFormatException(source, problem);
    }
}
