using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Eval;
using MathNet.Numerics.LinearAlgebra;

namespace Ddsm.Tests.Eval;

/// <summary>Shared inputs of the Eval tests: Gaussian samples, random covariances, and ONE feature net
/// trained briefly on the embedded Fashion-MNIST subset (trained once per test run, ~10 s here).</summary>
internal static class EvalTestData
{
    /// <summary>Embedded subset at the model resolution, split 1600 train / 400 held out (seed 3).</summary>
    public static readonly Lazy<(ImageDataset Train, ImageDataset HeldOut)> Split =
        new(() => FeatureNetTrainer.Split(Datasets.EmbeddedFashionMnist().ToResolution(32), 400, 3));

    public static readonly FeatureNetTrainOptions NetOptions = new(Steps: 150, BatchSize: 32, Lr: 3e-3f, Seed: 1);

    private static readonly Lazy<FeatureNet> _net = new(() =>
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var net = FeatureNetTrainer.Train(CpuBackend.Instance, Split.Value.Train, NetOptions, Split.Value.HeldOut);
        TrainSeconds = sw.Elapsed.TotalSeconds;
        return net;
    });

    /// <summary>The shared trained net; never dispose it (it lives for the test run).</summary>
    public static FeatureNet Net => _net.Value;
    public static double TrainSeconds { get; private set; }

    /// <summary>n samples of N(μ, LLᵀ), rows of (n, d).</summary>
    public static FeatureMatrix Gaussian(Rng rng, int n, double[] mean, Matrix<double> chol)
    {
        int d = mean.Length;
        var m = new FeatureMatrix(n, d);
        var z = new double[d];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++) z[j] = rng.NextNormal();
            var row = m.Row(i);
            for (int a = 0; a < d; a++)
            {
                double s = mean[a];
                for (int b = 0; b <= a; b++) s += chol[a, b] * z[b];
                row[a] = s;
            }
        }
        return m;
    }

    /// <summary>A random SPD matrix Q·diag(λ)·Qᵀ with λ uniform in [lo, hi] and Q a random rotation.</summary>
    public static Matrix<double> RandomSpd(Rng rng, int d, double lo, double hi, Matrix<double>? q = null)
    {
        q ??= RandomRotation(rng, d);
        var l = Enumerable.Range(0, d).Select(_ => lo + (hi - lo) * rng.NextDouble()).ToArray();
        return q * Matrix<double>.Build.DiagonalOfDiagonalArray(l) * q.Transpose();
    }

    public static Matrix<double> RandomRotation(Rng rng, int d)
    {
        var g = Matrix<double>.Build.Dense(d, d, (_, _) => rng.NextNormal());
        return g.QR().Q;
    }

    public static double[] RandomVector(Rng rng, int d, double scale = 1) =>
        Enumerable.Range(0, d).Select(_ => scale * rng.NextNormal()).ToArray();

    public static FeatureStats Stats(double[] mean, Matrix<double> cov) =>
        new(1000, mean, cov.ToRowMajorArray());
}
