namespace Ddsm.Engine;

/// <summary>
/// Host round trips of a backend up to a moment: copies host → device, device → host, explicit
/// synchronisations, and the floats moved. Subtract two snapshots to get what a step did.
/// </summary>
public readonly record struct TransferCounts(long CopiesIn, long CopiesOut, long Syncs, long FloatsIn, long FloatsOut)
{
    /// <summary>Copies either way plus synchronisations: each is a stall (or an ordering point) on a device.</summary>
    public long Total => CopiesIn + CopiesOut + Syncs;

    public static TransferCounts operator -(TransferCounts a, TransferCounts b) =>
        new(a.CopiesIn - b.CopiesIn, a.CopiesOut - b.CopiesOut, a.Syncs - b.Syncs,
            a.FloatsIn - b.FloatsIn, a.FloatsOut - b.FloatsOut);

    public static TransferCounts operator +(TransferCounts a, TransferCounts b) =>
        new(a.CopiesIn + b.CopiesIn, a.CopiesOut + b.CopiesOut, a.Syncs + b.Syncs,
            a.FloatsIn + b.FloatsIn, a.FloatsOut + b.FloatsOut);

    public override string ToString() =>
        $"{CopiesIn} in ({FloatsIn * 4:N0} B), {CopiesOut} out ({FloatsOut * 4:N0} B), {Syncs} syncs";
}

/// <summary>The counters behind <see cref="Backend.Transfers"/> (thread-safe: kernels may copy from workers).</summary>
internal sealed class TransferCounter
{
    private long _in, _out, _syncs, _floatsIn, _floatsOut;

    public void CountIn(long floats)
    {
        Interlocked.Increment(ref _in);
        Interlocked.Add(ref _floatsIn, floats);
    }

    public void CountOut(long floats)
    {
        Interlocked.Increment(ref _out);
        Interlocked.Add(ref _floatsOut, floats);
    }

    public void CountSync() => Interlocked.Increment(ref _syncs);

    public TransferCounts Snapshot() => new(Interlocked.Read(ref _in), Interlocked.Read(ref _out),
        Interlocked.Read(ref _syncs), Interlocked.Read(ref _floatsIn), Interlocked.Read(ref _floatsOut));
}
