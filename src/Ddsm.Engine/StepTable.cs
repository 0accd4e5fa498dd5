namespace Ddsm.Engine;

/// <summary>
/// A scalar that changes from step to step, read by the kernel from device memory: column
/// <see cref="Column"/> of the current row of a <see cref="StepTable"/>. Passing one instead of a float is
/// what lets a captured step (<see cref="Backend.CaptureStep"/>) be replayed for the next step.
/// </summary>
public readonly record struct StepScalar(StepTable Table, int Column)
{
    public DeviceBuffer Buffer => Table.Buffer;
    public int Stride => Table.Stride;
}

/// <summary>
/// The per-step scalars of a loop (a sampler run): one row of <see cref="Stride"/> floats per step, uploaded
/// once before the loop, and the current row's index kept on the device (element 0 of <see cref="Buffer"/>,
/// an integer as a float), moved on by <see cref="Advance"/> at the end of each step. Layout and kernels:
/// kernels/StepScalars.cs.
/// </summary>
public sealed class StepTable : IDisposable
{
    /// <summary>Floats hold integers exactly below 2^24: the row index, and each half of a noise offset.</summary>
    public const int ExactInt = 1 << 24;

    public DeviceBuffer Buffer { get; }
    public int Stride { get; }
    public int Rows { get; }
    private bool _disposed;

    /// <param name="rows">Row-major, <paramref name="stride"/> floats per step; row 0 is read first.</param>
    public StepTable(Backend backend, ReadOnlySpan<float> rows, int stride)
    {
        if (stride < 1 || rows.Length == 0 || rows.Length % stride != 0)
            throw new ArgumentException($"step table: {rows.Length} values are not whole rows of {stride}");
        Rows = rows.Length / stride;
        if (Rows >= ExactInt) throw new ArgumentException($"step table: {Rows} rows (at most {ExactInt - 1})");
        Stride = stride;
        Buffer = backend.Allocate(rows.Length + 1);
        Refill(rows);
    }

    /// <summary>
    /// Overwrites the rows (as many as the table holds) and moves back to row 0: one copy in, into the same buffer,
    /// so graphs captured over the table stay valid.
    /// </summary>
    public void Refill(ReadOnlySpan<float> rows)
    {
        if (rows.Length != Rows * Stride)
            throw new ArgumentException($"step table: refill with {rows.Length} values for {Rows} rows of {Stride}");
        var staged = new float[rows.Length + 1];   // [row index 0, rows…]: the loop's one copy in
        rows.CopyTo(staged.AsSpan(1));
        Buffer.Backend.CopyIn(Buffer, 0, staged);
    }

    public StepScalar this[int column] => column >= 0 && column < Stride ? new(this, column)
        : throw new ArgumentOutOfRangeException(nameof(column), $"step table: column {column} of {Stride}");

    /// <summary>Queues the move to the next row (a one-thread kernel: no transfer).</summary>
    public void Advance() => Buffer.Backend.AdvanceStep(Buffer);

    /// <summary>A noise-stream offset as the two exact 24-bit halves <see cref="Backend.NormalStep"/> reads.</summary>
    public static (float High, float Low) SplitOffset(ulong offset)
    {
        if (offset >= (ulong)ExactInt * ExactInt)
            throw new ArgumentOutOfRangeException(nameof(offset), $"noise offset {offset} beyond 2^48");
        return (offset >> 24, offset & (ExactInt - 1));
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Buffer.Backend.Free(Buffer);
    }
}
