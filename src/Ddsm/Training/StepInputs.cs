using Ddsm.Kernels;

namespace Ddsm.Training;

/// <summary>
/// What one sandwich step feeds the model, drawn on the device from the <see cref="ResidentData"/> into buffers
/// that live as long as the trainer (so captured passes find them), with no copy in: the batch's image indices and
/// each pass's timesteps are counter-hash integers, the images (mirrored left-right with probability ½ when
/// flipping), the coefficients √ᾱ_t, √(1−ᾱ_t) and the one-hot labels (the null class with probability p) are row
/// gathers, ε is counter-hash normals. Every seed and offset is read from the trainer's step table
/// (<see cref="TrainStepState"/>), where it is keyed by (run key, step), so a resumed run redraws the same batches.
/// </summary>
internal sealed class StepInputs : IDisposable
{
    private readonly ResidentData _data;
    private readonly TrainStepState _state;
    private readonly int _batch;

    /// <summary>(B, C, H, W) the batch; (B) its indices; (B, K+1) its labels or null.</summary>
    public Tensor X0 { get; }
    public Tensor Index { get; }
    public Tensor? OneHot { get; }
    /// <summary>(B) the current pass's timesteps and coefficients; (B, C, H, W) its noise.</summary>
    public Tensor T { get; }
    public Tensor SqrtAlphaBar { get; }
    public Tensor SqrtOneMinus { get; }
    public Tensor Eps { get; }

    public StepInputs(ResidentData data, TrainStepState state, int batch, int[] imageShape)
    {
        (_data, _state, _batch) = (data, state, batch);
        var be = data.Images.Backend;
        using (TensorScope.Suspend())
        {
            X0 = Tensor.Empty(be, imageShape);
            Eps = Tensor.Empty(be, imageShape);
            Index = Tensor.Empty(be, batch);
            T = Tensor.Zeros(be, batch);
            SqrtAlphaBar = Tensor.Empty(be, batch);
            SqrtOneMinus = Tensor.Empty(be, batch);
            if (data.OneHot is not null) OneHot = Tensor.Empty(be, batch, data.OneHotWidth);
        }
    }

    /// <summary>The step's head: its scalars (train_step_scalars), then its batch, flips and labels.</summary>
    public void DrawBatch(in TrainStepScalarsArgs scalars, bool flip, double labelDropout)
    {
        var be = X0.Backend;
        be.TrainStepScalars(_state.Table, scalars);
        be.UniformIntsStep(Index.Buffer, _batch, _state[TrainState.IndexSeed], 0, null, 0, _data.Count - 1);
        int w = X0.Shape[^1];
        be.GatherRowsStep(new GatherDesc(_batch, _data.ImageFloats, _data.Count, flip ? w : 0), _data.Images.Buffer,
            Index.Buffer, X0.Buffer, _state[TrainState.FlipSeed]);
        if (_data.OneHot is { } table)
            be.GatherRowsStep(new GatherDesc(_batch, _data.OneHotWidth, _data.Count + 1, DropP: (float)labelDropout,
                DropRow: _data.Count), table.Buffer, Index.Buffer, OneHot!.Buffer, _state[TrainState.LabelSeed]);
    }

    /// <summary>
    /// A width pass's draws: its scalars (train_pass_scalars), timesteps (at offset (p+1)·B of the step's index
    /// stream), coefficients and ε (stream <paramref name="noiseSeed"/> at the pass's offset).
    /// </summary>
    public void DrawPass(in TrainPassScalarsArgs scalars, (int First, int Last) t, ulong noiseSeed)
    {
        var be = X0.Backend;
        be.TrainPassScalars(_state.Table, scalars);
        be.UniformIntsStep(T.Buffer, _batch, _state[TrainState.IndexSeed], 0, _state[TrainState.TOffset], t.First,
            t.Last);
        Coefficients(_data.SqrtAlphaBar, SqrtAlphaBar);
        Coefficients(_data.SqrtOneMinusAlphaBar, SqrtOneMinus);
        be.NormalStep(Eps.Buffer, Eps.Length, noiseSeed, _state[TrainState.NoiseOffset],
            _state[TrainState.NoiseOffset + 1]);
    }

    /// <summary>table[t_i] for each of the batch's timesteps.</summary>
    private void Coefficients(Tensor table, Tensor into) =>
        table.Backend.GatherRows(new GatherDesc(_batch, 1, (int)table.Length), table.Buffer, T.Buffer, into.Buffer);

    /// <summary>x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε per image, on the device; a new tensor.</summary>
    public Tensor Noised()
    {
        var be = X0.Backend;
        int b = X0.Shape[0], d = (int)(X0.Length / b);
        var xt = Tensor.Empty(be, X0.Shape);
        using var scaled = Tensor.Empty(be, X0.Shape);
        be.Broadcast(BinaryOp.Mul, X0.Buffer, SqrtAlphaBar.Buffer, xt.Buffer, b, 1, d, bPerOuter: true);
        be.Broadcast(BinaryOp.Mul, Eps.Buffer, SqrtOneMinus.Buffer, scaled.Buffer, b, 1, d, bPerOuter: true);
        be.Binary(BinaryOp.Add, xt.Buffer, scaled.Buffer, xt.Buffer, xt.Length);
        return xt;
    }

    /// <summary>
    /// The counter-hash seed of one draw family of a step (<see cref="TrainMath.StepKey"/>, which the device
    /// computes): 0: indices and timesteps, at disjoint offsets; 1: image flips; 2: labels.
    /// </summary>
    public static ulong StepKey(ulong key, long step, int family) => TrainMath.StepKey(key, (ulong)step, family);

    public void Dispose()
    {
        foreach (var t in new[] { X0, Eps, Index, T, SqrtAlphaBar, SqrtOneMinus }) t.Dispose();
        OneHot?.Dispose();
    }
}
