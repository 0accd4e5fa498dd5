namespace Ddsm.Diffusion;

/// <summary>
/// The per-step scalars of a sampler run as the host computes them before the loop: one row of
/// <see cref="Stride"/> floats per step, then uploaded once as a <see cref="StepTable"/>.
/// </summary>
internal sealed class StepRows(int steps, int stride)
{
    public int Stride => stride;
    public float[] Values { get; } = new float[steps * stride];

    /// <summary>Column <paramref name="col"/> of step <paramref name="step"/>, rounded to float as a kernel
    /// argument would be.</summary>
    public double this[int step, int col]
    {
        set => Values[step * stride + col] = (float)value;
    }

    /// <summary>Reserves a step's <paramref name="count"/> normals and stores their offset in columns col, col + 1.
    /// </summary>
    public void Noise(int step, int col, NoiseStream noise, long count)
    {
        var (high, low) = StepTable.SplitOffset(noise.Reserve(count));
        (Values[step * stride + col], Values[step * stride + col + 1]) = (high, low);
    }
}

/// <summary>
/// The step loop of one sampler run. Its per-step scalars (coefficients, timesteps, noise offsets) live in a
/// <see cref="StepTable"/> on the device, uploaded once before the first step and moved to the next row by a
/// kernel at the end of each step, so a step's kernels take no per-step argument. Each step has a key (its shape:
/// first, last or middle step, and the route of each model call, <see cref="IDenoiser.Route"/>); the batch shape
/// and the guidance are fixed for a run. The first step of a key runs as it is (it may upload labels or load
/// kernels, which a capture refuses), the second is captured as a <see cref="StepGraph"/> and replayed, and every
/// later one only replays it. A step's body gets its step index: it may use it for host decisions only (the
/// route, the shape), since a replay on a device reissues what the capture recorded; its tensors are freed
/// inside the step, and what crosses steps lives in tensors allocated before the loop.
/// </summary>
internal sealed class SamplerSteps : IDisposable
{
    private readonly StepGraphCache _graphs;
    private int _current;

    public StepTable Table { get; }

    public SamplerSteps(Backend backend, StepRows rows, bool graphs)
    {
        _graphs = new StepGraphCache(backend, graphs);
        Table = new StepTable(backend, rows.Values, rows.Stride);
    }

    /// <summary>Column <paramref name="col"/> of the current step's row, as the kernels read it.</summary>
    public StepScalar this[int col] => Table[col];

    /// <summary>The key of a step: its shape and the routes of its model calls.</summary>
    public static string Key(string shape, params (int Model, double Width)[] routes) =>
        shape + string.Concat(routes.Select(r => FormattableString.Invariant($"|{r.Model}@{r.Width:R}")));

    /// <summary>Runs step <paramref name="step"/> (in order: the table's row index follows it).</summary>
    public void Run(int step, string key, Action<int> body)
    {
        _current = step;
        // A backend without real graphs reruns the captured closure: it reads the step being run, not the captured one.
        _graphs.Run(key, () => Once(body, _current));
    }

    private void Once(Action<int> body, int step)
    {
        using (new TensorScope()) body(step);
        Table.Advance();
    }

    public void Dispose()
    {
        _graphs.Dispose();
        Table.Dispose();
    }
}
