namespace Ddsm.Runs;

/// <summary>
/// Checks a run's output files before any work: none is one of its inputs, none replaces a diffusion checkpoint
/// (unless forced), and each one's folder can be written. So a mistyped --out fails in a second, not after an
/// hour of sampling, and never destroys a model (`sample --checkpoint X.safetensors --out X.png` once replaced X
/// with the raw samples).
/// </summary>
public static class OutputFiles
{
    /// <summary>
    /// Throws ArgumentException (an output is an input, or a checkpoint) or IOException (not writable).
    /// </summary>
    public static void Check(IEnumerable<string> outputs, IEnumerable<string> inputs, bool force)
    {
        var ins = inputs.Where(File.Exists).Select(Path.GetFullPath).ToList();
        foreach (var output in outputs)
        {
            var full = Path.GetFullPath(output);
            if (ins.Contains(full, StringComparer.Ordinal))
                throw new ArgumentException(
                    $"'{output}' is an input of this command; writing it would destroy it: choose another --out");
            if (!force && IsCheckpoint(full))
                throw new ArgumentException($"'{output}' is a checkpoint; it is not replaced (--force replaces it)");
            CheckWritable(full);
        }
    }

    /// <summary>A training or step-adaptive checkpoint (by its metadata; an unreadable file is not one).</summary>
    public static bool IsCheckpoint(string path)
    {
        if (!File.Exists(path)) return false;
        try
        {
            var format = SafeTensors.ReadMetadata(path).GetValueOrDefault("format");
            return format is Checkpoint.Format or GroupedCheckpoint.Format;
        }
        catch (DataFormatException) { return false; }
    }

    /// <summary>
    /// Creates the folder and a scratch file in it (then deletes it): what writing the file will need.
    /// </summary>
    public static void CheckWritable(string fullPath)
    {
        var dir = Path.GetDirectoryName(fullPath)!;
        try
        {
            Directory.CreateDirectory(dir);
            var probe = AtomicFile.TempPathFor(fullPath);
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1,
                                  FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot write '{fullPath}': {e.Message}", e);
        }
    }

    /// <summary>A run directory: created, and writable.</summary>
    public static void CheckDirectory(string dir) => CheckWritable(Path.Combine(Path.GetFullPath(dir), "probe"));
}
