namespace Ddsm.Eval;

/// <summary>
/// N feature vectors of dimension d, row-major (N, d) in double: every statistic downstream (means,
/// covariances, kernel sums, distances) accumulates thousands of terms, where float loses digits.
/// </summary>
public sealed class FeatureMatrix
{
    public int Count { get; }
    public int Dim { get; }
    /// <summary>(N, d) row-major.</summary>
    public double[] Data { get; }

    public FeatureMatrix(int count, int dim) : this(count, dim, new double[checked((long)count * dim)]) { }

    public FeatureMatrix(int count, int dim, double[] data)
    {
        if (count < 0 || dim < 1) throw new ArgumentException($"features: invalid shape ({count}, {dim})");
        if (data.Length != (long)count * dim)
            throw new ArgumentException(
                $"features: ({count}, {dim}) needs {(long)count * dim} values, got {data.Length}");
        (Count, Dim, Data) = (count, dim, data);
    }

    public static FeatureMatrix FromFloats(ReadOnlySpan<float> values, int count, int dim)
    {
        var m = new FeatureMatrix(count, dim);
        m.SetRows(0, values);
        return m;
    }

    public Span<double> Row(int i) => Data.AsSpan(checked(i * Dim), Dim);

    /// <summary>Copies float rows (k, d) into rows [start, start + k).</summary>
    public void SetRows(int start, ReadOnlySpan<float> rows)
    {
        if (rows.Length % Dim != 0 || start < 0 || start + rows.Length / Dim > Count)
            throw new ArgumentException($"features: {rows.Length} values at row {start} do not fit ({Count}, {Dim})");
        var dst = Data.AsSpan(start * Dim, rows.Length);
        for (int i = 0; i < rows.Length; i++) dst[i] = rows[i];
    }

    /// <summary>The rows at <paramref name="indices"/>, in that order.</summary>
    public FeatureMatrix Rows(ReadOnlySpan<int> indices)
    {
        var m = new FeatureMatrix(indices.Length, Dim);
        for (int i = 0; i < indices.Length; i++) Row(indices[i]).CopyTo(m.Row(i));
        return m;
    }

    /// <summary>The first <paramref name="n"/> rows.</summary>
    public FeatureMatrix Take(int n) =>
        n >= Count ? this : new FeatureMatrix(n, Dim, Data.AsSpan(0, n * Dim).ToArray());
}
