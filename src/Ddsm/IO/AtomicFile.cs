namespace Ddsm.IO;

/// <summary>
/// Write-then-rename so a crash (or an exception in the writer) never leaves a half-written file at
/// the final path: the previous file stays intact until the new one is complete and fsynced.
/// </summary>
public static class AtomicFile
{
    /// <summary>The temporary path used while writing; it never equals the final path.</summary>
    public static string TempPathFor(string path) =>
        $"{path}.tmp-{Convert.ToHexString(Guid.NewGuid().ToByteArray(), 0, 6).ToLowerInvariant()}";

    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = TempPathFor(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);   // fsync: the rename must not overtake the data
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> data)
    {
        byte[] copy = data.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>UTF-8 text (reports, strategies, plans), written atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));
}
