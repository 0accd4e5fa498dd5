namespace Ddsm.Engine;

// Timestep embedding and dropout: the two UNet ops that are neither convolutions nor norms.
public static partial class F
{
    /// <summary>
    /// ADM's sinusoidal timestep embedding: t (N) float timesteps → (N, dim) =
    /// [cos(t·f_0 … t·f_{h−1}), sin(t·f_0 … t·f_{h−1})] with f_j = maxPeriod^(−j/h), h = dim/2; an odd
    /// dim gets a zero last column. Records no gradient: timesteps are data, never trained.
    /// </summary>
    public static Tensor TimestepEmbedding(Tensor t, int dim, float maxPeriod = 10000f)
    {
        const string name = "timestep_embedding";
        Check.Rank(name, t, 1, "timesteps");
        Check.That(dim >= 1, name, $"dim must be ≥ 1, got {dim}");
        Check.That(float.IsFinite(maxPeriod) && maxPeriod > 0f, name,
                   $"maxPeriod must be finite and > 0, got {maxPeriod}");
        int n = t.Shape[0];
        var be = t.Backend;
        var y = Tensor.Empty(be, n, dim);
        // One multiply plus one cos or sin per element, counted as 2.
        using (Profiler.Op(name, 2L * n * dim, be)) be.TimestepEmbedding(t.Buffer, y.Buffer, n, dim, maxPeriod);
        return y;
    }

    /// <summary>
    /// Inverted dropout: each element is kept with probability 1−p and scaled by 1/(1−p), so E[y] = x.
    /// The mask comes from a counter hash of (<paramref name="seed"/>, element index), identical on
    /// every backend; callers pass a fresh seed per call (e.g. from their step's Rng) and the same
    /// seed to reproduce a mask. The mask lives in the current scope until backward, where dx += mask·dy.
    /// <para>When <paramref name="training"/> is false or p is 0 the result is a <b>view</b> of x
    /// (<see cref="Tensor.Reshape"/> to the same shape): no copy, no kernel, shared refcounted storage,
    /// so the caller owns and may dispose it exactly like any other op result without harming x, and
    /// gradients still flow through it to x.</para>
    /// </summary>
    public static Tensor Dropout(Tensor x, float p, ulong seed, bool training) =>
        Dropout(x, p, training, (be, y, mask) => be.Dropout(x.Buffer, y, mask, x.Length, p, seed));

    /// <summary>
    /// <see cref="Dropout(Tensor, float, ulong, bool)"/> with the seed read on the device: the value at
    /// <paramref name="seed"/> (three columns of a step table) ⊕ <paramref name="salt"/>, so that a captured training
    /// pass draws the next step's mask when replayed.
    /// </summary>
    public static Tensor Dropout(Tensor x, float p, StepScalar seed, ulong salt, bool training) =>
        Dropout(x, p, training, (be, y, mask) => be.DropoutStep(x.Buffer, y, mask, x.Length, p, seed, salt));

    private static Tensor Dropout(Tensor x, float p, bool training, Action<Backend, DeviceBuffer, DeviceBuffer> launch)
    {
        const string name = "dropout";
        // Written so that NaN fails too.
        Check.That(p >= 0f && p < 1f, name, $"p must be in [0, 1), got {p} for {ShapeUtil.Str(x.Shape)}");
        if (!training || p == 0f) return x.Reshape(x.Shape);

        var be = x.Backend;
        var y = Tensor.Empty(be, x.Shape);
        var mask = Tensor.Empty(be, x.Shape); // 0 or 1/(1−p) per element
        using (Profiler.Op(name, x.Length, be)) launch(be, y.Buffer, mask.Buffer);
        if (Tape.Needs(x))
            Tape.Record(name, y, [x], g => AccumulateTemp(be, x.EnsureGrad().Buffer, x.Length, 1f,
                t => be.Binary(BinaryOp.Mul, mask.Buffer, g.Buffer, t, x.Length)));
        else
            mask.Dispose(); // nothing will read it; free it now rather than at scope end
        return y;
    }
}
