namespace Ddsm.IO;

/// <summary>
/// Names checkpoints <c>{prefix}{step:D9}{suffix}</c> in one directory and keeps the newest K,
/// ordered by the step in the name (not by mtime, which copies and clock skew break). Temporary files
/// of an interrupted atomic write (<c>….tmp-xxxx</c>) never match the pattern, so they are never
/// mistaken for a checkpoint.
/// </summary>
public sealed class CheckpointRotation
{
    public string Directory { get; }
    public string Prefix { get; }
    public string Suffix { get; }
    public int Keep { get; }

    public CheckpointRotation(string directory, int keep, string prefix = "ckpt-", string suffix = ".safetensors")
    {
        if (keep < 1) throw new ArgumentException($"checkpoints to keep must be ≥ 1, got {keep}");
        (Directory, Keep, Prefix, Suffix) = (directory, keep, prefix, suffix);
    }

    public string PathFor(long step) =>
        Path.Combine(Directory, $"{Prefix}{step.ToString("D9", CultureInfo.InvariantCulture)}{Suffix}");

    /// <summary>Existing checkpoints, oldest first.</summary>
    public IReadOnlyList<(long Step, string Path)> List()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var r = new List<(long, string)>();
        foreach (var f in System.IO.Directory.EnumerateFiles(Directory, Prefix + "*" + Suffix))
        {
            string name = Path.GetFileName(f);
            if (!name.StartsWith(Prefix, StringComparison.Ordinal) || !name.EndsWith(Suffix, StringComparison.Ordinal))
                continue;
            string mid = name[Prefix.Length..^Suffix.Length];
            if (mid.Length > 0 && mid.All(char.IsAsciiDigit) &&
                long.TryParse(mid, NumberStyles.None, CultureInfo.InvariantCulture, out long step))
                r.Add((step, f));
        }
        return r.OrderBy(x => x.Item1).ToList();
    }

    public string? Latest() => List() is { Count: > 0 } l ? l[^1].Path : null;

    /// <summary>Deletes all but the newest <see cref="Keep"/> checkpoints; returns the deleted paths.</summary>
    public IReadOnlyList<string> Prune()
    {
        var all = List();
        var gone = new List<string>();
        for (int i = 0; i < all.Count - Keep; i++)
        {
            File.Delete(all[i].Path);
            gone.Add(all[i].Path);
        }
        return gone;
    }

    /// <summary>Writes the checkpoint for <paramref name="step"/> atomically, then prunes.</summary>
    public string Save(long step, IReadOnlyList<SafeTensor> tensors,
                       IReadOnlyDictionary<string, string>? metadata = null)
    {
        string p = PathFor(step);
        SafeTensors.Write(p, tensors, metadata);
        Prune();
        return p;
    }
}
