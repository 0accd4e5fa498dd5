using Ddsm.Kernels;

namespace Ddsm.Training;

/// <summary>
/// What one sandwich step feeds the model, drawn on the device from the <see cref="ResidentData"/>, with no
/// copy in: the batch's image indices and each pass's timesteps are counter-hash integers
/// (<see cref="Backend.UniformInts"/>), the images (mirrored left-right with probability ½ when flipping), the
/// coefficients √ᾱ_t, √(1−ᾱ_t) and the one-hot labels (the null class with probability p) are row gathers
/// (<see cref="Backend.GatherRows"/>). Every draw is keyed by (run key, step), so a resumed run redraws the same
/// batches without carrying generator state.
/// </summary>
public static class StepInputs
{
    /// <summary>The step's draws; they live in the caller's scope.</summary>
    /// <param name="key">The run's data key (the trainer derives it from its checkpointed noise seed).</param>
    public static Device Draw(ResidentData data, long step, ulong key, int batch, int passes, (int First, int Last) t,
        int[] imageShape, bool flip, double labelDropout)
    {
        var be = data.Images.Backend;
        var idx = Tensor.Empty(be, batch);
        be.UniformInts(idx.Buffer, batch, StepKey(key, step, 0), 0, 0, data.Count - 1);
        var x0 = Tensor.Empty(be, imageShape);
        int w = imageShape[^1];
        be.GatherRows(new GatherDesc(batch, data.ImageFloats, data.Count, flip ? w : 0, StepKey(key, step, 1)),
            data.Images.Buffer, idx.Buffer, x0.Buffer);
        var drawn = new (Tensor T, Tensor SqrtAlphaBar, Tensor SqrtOneMinus)[passes];
        for (int p = 0; p < passes; p++)
        {
            var tp = Tensor.Empty(be, batch);
            be.UniformInts(tp.Buffer, batch, StepKey(key, step, 0), (ulong)(p + 1) * (ulong)batch, t.First, t.Last);
            drawn[p] = (tp, Coefficients(data.SqrtAlphaBar, tp, batch), Coefficients(data.SqrtOneMinusAlphaBar, tp,
                batch));
        }
        Tensor? oneHot = null;
        if (data.OneHot is { } table)
        {
            oneHot = Tensor.Empty(be, batch, data.OneHotWidth);
            be.GatherRows(new GatherDesc(batch, data.OneHotWidth, data.Count + 1, Seed: StepKey(key, step, 2),
                DropP: (float)labelDropout, DropRow: data.Count), table.Buffer, idx.Buffer, oneHot.Buffer);
        }
        return new Device(x0, drawn, oneHot);
    }

    /// <summary>table[t_i] for each of the batch's timesteps.</summary>
    private static Tensor Coefficients(Tensor table, Tensor t, int batch)
    {
        var c = Tensor.Empty(table.Backend, batch);
        table.Backend.GatherRows(new GatherDesc(batch, 1, (int)table.Length), table.Buffer, t.Buffer, c.Buffer);
        return c;
    }

    /// <summary>
    /// The counter-hash seed of one draw family of a step: 64 bits hashed from (key, step, family), so steps and
    /// families never share a stream (0: indices and timesteps, at disjoint offsets; 1: image flips; 2: labels).
    /// </summary>
    public static ulong StepKey(ulong key, long step, int family)
    {
        ulong k = (ulong)step * 4 + (ulong)family;
        return ((ulong)CounterHash.Of(key, 2 * k) << 32) | CounterHash.Of(key, 2 * k + 1);
    }

    /// <summary>
    /// x0 (B, C, H, W), per pass (t, √ᾱ_t, √(1−ᾱ_t)) each (B), the one-hot labels (B, K+1) or null.
    /// </summary>
    public sealed record Device(Tensor X0, (Tensor T, Tensor SqrtAlphaBar, Tensor SqrtOneMinus)[] Passes,
        Tensor? OneHot)
    {
        /// <summary>x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε per image, on the device; a new tensor.</summary>
        public Tensor Noised(int pass, Tensor eps)
        {
            var be = X0.Backend;
            int b = X0.Shape[0], d = (int)(X0.Length / b);
            var (_, sa, sn) = Passes[pass];
            var xt = Tensor.Empty(be, X0.Shape);
            using var scaled = Tensor.Empty(be, X0.Shape);
            be.Broadcast(BinaryOp.Mul, X0.Buffer, sa.Buffer, xt.Buffer, b, 1, d, bPerOuter: true);
            be.Broadcast(BinaryOp.Mul, eps.Buffer, sn.Buffer, scaled.Buffer, b, 1, d, bPerOuter: true);
            be.Binary(BinaryOp.Add, xt.Buffer, scaled.Buffer, xt.Buffer, xt.Length);
            return xt;
        }
    }
}
