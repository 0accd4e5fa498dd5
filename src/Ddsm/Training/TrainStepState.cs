using Ddsm.Engine.Optim;
using Ddsm.Kernels;

namespace Ddsm.Training;

/// <summary>
/// The trainer's per-step values on the device: a one-row <see cref="StepTable"/> (columns:
/// <see cref="TrainState"/>) holding counters that mirror the host's (the step, Adam's update number, the noise
/// stream's position, the generator's state) and what kernels/TrainScalars.cs derives from them at each step and
/// pass: the draw seeds, Adam's rate and bias corrections, the EMA weights, the dropout seed, the noise offset.
/// So a captured pass takes no per-step argument. The device moves its counters as the host moves its own; the
/// table is uploaded (one copy in) only when they part: at construction, and at the first step after the host
/// state was set from outside (a resume).
/// </summary>
internal sealed class TrainStepState : IDisposable
{
    private readonly StepTable _table;
    private readonly float[] _bias;   // 1 − β1^t (t < _bias1), then 1 − β2^t (t < _bias2)
    private readonly int _bias1, _bias2;
    private ulong[] _synced;          // the host state the device's counters equal

    public TrainStepState(Backend backend, AdamOptions adam, ulong[] host)
    {
        var b1 = BiasRun(adam.Beta1);
        var b2 = BiasRun(adam.Beta2);
        (_bias1, _bias2, _bias) = (b1.Length, b2.Length, [.. b1, .. b2]);
        _synced = host;
        _table = new StepTable(backend, Row(host), TrainState.Bias + _bias.Length);
    }

    public StepTable Table => _table;
    public StepScalar this[int column] => _table[column];
    public int Bias1 => _bias1;
    public int Bias2 => _bias2;

    /// <summary>The host state the device mirrors: step, Adam's update count, noise seed and position, Rng words.
    /// </summary>
    public static ulong[] Host(long step, long adamT, NoiseStream noise, Rng rng)
    {
        var r = rng.GetState();
        return [(ulong)step, (ulong)adamT, noise.Seed, noise.Position, r[0], r[1], r[2], r[3]];
    }

    /// <summary>
    /// Uploads the counters when <paramref name="host"/> is not the state the device holds (one copy in). True when
    /// the noise seed changed (another run's state): graphs that baked it (the noise's seed, the data key) must go;
    /// any other change is read from the table by graphs as they are.
    /// </summary>
    public bool Sync(ulong[] host)
    {
        if (host.AsSpan().SequenceEqual(_synced)) return false;
        _table.Refill(Row(host));
        bool reseeded = host[2] != _synced[2];
        _synced = host;
        return reseeded;
    }

    /// <summary>Notes that a step moved the device's counters to <paramref name="host"/> (no transfer).</summary>
    public void Moved(ulong[] host) => _synced = host;

    private float[] Row(ulong[] host)
    {
        var row = new float[TrainState.Bias + _bias.Length];
        var cells = new HostCells(row, 0);
        foreach (var (col, v) in new[] { (TrainState.Step, host[0]), (TrainState.AdamT, host[1]),
                     (TrainState.Noise, host[3]) })
        {
            if (v >= 1UL << 48) throw new ArgumentOutOfRangeException(nameof(host), $"train state: {v} beyond 2^48");
            TrainMath.Put48(cells, col, v);
        }
        for (int w = 0; w < 4; w++) TrainMath.Put64(cells, TrainState.Rng + 3 * w, host[4 + w]);
        _bias.CopyTo(row, TrainState.Bias);
        return row;
    }

    /// <summary>Cap of a bias-correction run: β so close to 1 that 1 − β^t stays below 1f longer is refused.</summary>
    private const int MaxBiasRun = 1 << 22;

    /// <summary>(float)(1 − β^t) as Adam computes it, for t = 0 … until it rounds to 1 (and stays there).</summary>
    private static float[] BiasRun(float beta)
    {
        var run = new List<float>();
        for (int t = 0; ; t++)
        {
            float v = (float)(1 - Math.Pow(beta, t));
            if (v == 1f) return run.ToArray();
            if (run.Count == MaxBiasRun)
                throw new ArgumentException($"adam: β = {beta} is too close to 1 for the device's bias corrections");
            run.Add(v);
        }
    }

    public void Dispose() => _table.Dispose();
}
