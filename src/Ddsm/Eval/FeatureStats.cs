namespace Ddsm.Eval;

/// <summary>
/// Mean (d) and covariance (d, d) of a feature set, in double, with the unbiased 1/(N−1) normaliser
/// (numpy's np.cov default, as pytorch-fid uses). Saved as a small safetensors file (F64 "mean",
/// "covariance") so a data set's reference statistics are computed once per feature net.
/// </summary>
public sealed class FeatureStats
{
    public const string Format = "ddsm-featurestats-v1";

    public int Count { get; }
    public int Dim { get; }
    /// <summary>(d)</summary>
    public double[] Mean { get; }
    /// <summary>(d, d) row-major, symmetric.</summary>
    public double[] Covariance { get; }

    public FeatureStats(int count, double[] mean, double[] covariance)
    {
        int d = mean.Length;
        if (d < 1 || covariance.Length != (long)d * d)
            throw new ArgumentException(
                $"feature stats: mean ({d}) and covariance ({covariance.Length} values) do not agree");
        (Count, Dim, Mean, Covariance) = (count, d, mean, covariance);
    }

    public double Trace
    {
        get
        {
            double t = 0;
            for (int i = 0; i < Dim; i++) t += Covariance[i * Dim + i];
            return t;
        }
    }

    public static FeatureStats From(FeatureMatrix x)
    {
        int n = x.Count, d = x.Dim;
        if (n < 2) throw new ArgumentException($"feature stats: need at least 2 samples for a covariance, got {n}");
        var mean = new double[d];
        for (int i = 0; i < n; i++)
        {
            var r = x.Row(i);
            for (int j = 0; j < d; j++) mean[j] += r[j];
        }
        for (int j = 0; j < d; j++) mean[j] /= n;
        var c = Centered(x, mean);   // (N, d)
        var cov = new double[d * d];
        // Upper triangle by rows in parallel (each task owns row a), mirrored after: exactly symmetric.
        Parallel.For(0, d, a =>
        {
            for (int b = a; b < d; b++)
            {
                double s = 0;
                for (int i = 0; i < n; i++) s += c[i * d + a] * c[i * d + b];
                cov[a * d + b] = s / (n - 1);
            }
        });
        for (int a = 0; a < d; a++)
            for (int b = 0; b < a; b++) cov[a * d + b] = cov[b * d + a];
        return new FeatureStats(n, mean, cov);
    }

    /// <summary>x − mean, (N, d) row-major.</summary>
    internal static double[] Centered(FeatureMatrix x, double[] mean)
    {
        int d = x.Dim;
        var c = new double[x.Data.Length];
        for (int i = 0; i < x.Count; i++)
            for (int j = 0; j < d; j++) c[i * d + j] = x.Data[i * d + j] - mean[j];
        return c;
    }

    // ---- file -----------------------------------------------------------------------------------

    internal List<SafeTensor> ToTensors() =>
    [
        new SafeTensor("mean", "F64", [Dim], F64Bytes(Mean)),
        new SafeTensor("covariance", "F64", [Dim, Dim], F64Bytes(Covariance)),
    ];

    internal static FeatureStats FromFile(SafeTensorsFile f, string path)
    {
        DataFormatException.Check(f.Contains("mean") && f.Contains("covariance"), path,
                                  "feature stats need tensors 'mean' and 'covariance'");
        var m = f["mean"];
        var c = f["covariance"];
        DataFormatException.Check(m.DType == "F64" && c.DType == "F64", path,
                                  $"feature stats must be F64 (got {m.DType}, {c.DType})");
        DataFormatException.Check(m.Shape.Length == 1 && m.Shape[0] >= 1 &&
                                  c.Shape.SequenceEqual(new[] { m.Shape[0], m.Shape[0] }), path,
            $"mean ({string.Join(", ", m.Shape)}) and covariance ({string.Join(", ", c.Shape)}) shapes disagree");
        f.Metadata.TryGetValue("count", out var cs);
        DataFormatException.Check(int.TryParse(cs, NumberStyles.Integer, CultureInfo.InvariantCulture, out int count) &&
                                  count >= 2, path,
            $"metadata 'count' missing or < 2 (got '{cs ?? "missing"}')");
        var mean = Doubles(m.Data);
        var cov = Doubles(c.Data);
        DataFormatException.Check(mean.All(double.IsFinite) && cov.All(double.IsFinite), path,
                                  "feature stats hold NaN or Inf");
        return new FeatureStats(count, mean, cov);
    }

    /// <summary>
    /// Writes the statistics with <paramref name="metadata"/> (e.g. data set, feature net fingerprint).
    /// </summary>
    public void Save(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            ["format"] = Format,
            ["count"] = Count.ToString(CultureInfo.InvariantCulture),
        };
        SafeTensors.Write(path, ToTensors(), meta);
    }

    public static (FeatureStats Stats, IReadOnlyDictionary<string, string> Metadata) Load(string path)
    {
        var f = SafeTensors.Read(path);
        f.Metadata.TryGetValue("format", out var fmt);
        DataFormatException.Check(fmt == Format, path,
                                  $"not DDSM feature stats (format '{fmt ?? "missing"}', want '{Format}')");
        return (FromFile(f, path), f.Metadata);
    }

    internal static byte[] F64Bytes(double[] v)
    {
        var b = new byte[v.Length * 8];
        for (int i = 0; i < v.Length; i++)
            System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(8 * i), v[i]);
        return b;
    }

    internal static double[] Doubles(byte[] b)
    {
        var v = new double[b.Length / 8];
        for (int i = 0; i < v.Length; i++)
            v[i] = System.Buffers.Binary.BinaryPrimitives.ReadDoubleLittleEndian(b.AsSpan(8 * i));
        return v;
    }
}
