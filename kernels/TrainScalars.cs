// A training step's per-step values computed on the device from counters kept there, so that the trainer's
// captured head, width passes and tail (CUDA graphs) replay for every step: a graph bakes its kernel arguments,
// so nothing that changes from step to step may be one. The trainer's step table has one row (row index 0,
// never advanced) holding the counters (step, Adam's update number, the noise stream's position, the pass index,
// the host generator's xoshiro256** state), the values the two kernels here derive from them, and Adam's bias
// corrections (1 − β^t, computed on the host once). train_step_scalars, at the head of a step, derives the step's
// draw seeds, Adam's rate and bias corrections and the EMA weights; train_pass_scalars, at the start of each width
// pass, its dropout seed (the next output of the generator, as the host draws it), noise offset, timestep draw
// offset and loss slot. Integers are stored as exact floats (24-bit pieces), so every backend reads the same bits.
using ILGPU;

namespace Ddsm.Kernels;

/// <summary>
/// The columns of the trainer's step table. Counters: <see cref="Step"/>, <see cref="AdamT"/>,
/// <see cref="Noise"/> (48-bit, two columns), <see cref="Pass"/>, <see cref="Rng"/> (4 words, 3 columns each).
/// Per step: the draw seeds (64-bit, 3 columns), the rate and bias corrections (in <see cref="Lr"/>,
/// <see cref="Lr"/> + 1, + 2: the order Adam's table form reads), the EMA's α = 1 − decay and β = decay. Per pass:
/// the dropout seed, the noise offset (high, low), the timestep draw's offset, the loss slot. From
/// <see cref="Bias"/>: 1 − β1^t for t below the run's first length, then 1 − β2^t (1 beyond each).
/// </summary>
public static class TrainState
{
    public const int Step = 0, AdamT = 2, Noise = 4, Pass = 6, Rng = 7;
    public const int IndexSeed = 19, FlipSeed = 22, LabelSeed = 25, Lr = 28, Bc1 = 29, Bc2 = 30;
    public const int EmaAlpha = 31, EmaBeta = 32;
    public const int DropoutSeed = 33, NoiseOffset = 36, TOffset = 38, LossSlot = 39;
    public const int Bias = 40;
}

/// <summary>The state row of the table whose buffer is State (element 0: the row index, 0).</summary>
public struct TrainStepScalarsArgs
{
    public ArrayView<float> State;
    /// <summary>The run's data key (the draws' <see cref="TrainMath.StepKey"/>).</summary>
    public ulong DataKey;
    public float Lr, EmaDecay;
    /// <summary>Bias1/Bias2: the lengths of the two bias-correction runs; WidthDraws: host draws per step
    /// before the dropout seeds (the sandwich's middle widths).</summary>
    public int WarmupSteps, Bias1, Bias2, WidthDraws;
}

public struct TrainPassScalarsArgs
{
    public ArrayView<float> State;
    /// <summary>Normals one pass draws (its ε).</summary>
    public long PassFloats;
    public int Batch;
}

/// <summary>A row of cells: the table's row on the device, or its host copy (the CPU oracle).</summary>
public interface ICells
{
    float this[int i] { get; set; }
}

/// <summary>The cells of a step table's buffer from <paramref name="start"/> on (a row).</summary>
public readonly struct DeviceCells(ArrayView<float> table, long start) : ICells
{
    public float this[int i]
    {
        get => table[start + i];
        set => table[start + i] = value;
    }

    /// <summary>The table's current row (its index is element 0).</summary>
    public static DeviceCells Current(ArrayView<float> table, int stride) =>
        new(table, 1 + (long)(int)table[0] * stride);
}

/// <summary><see cref="DeviceCells"/> over host memory: the CPU oracle's view of the same table.</summary>
public readonly struct HostCells(float[] table, long start) : ICells
{
    public float this[int i]
    {
        get => table[start + i];
        set => table[start + i] = value;
    }

    public static HostCells Current(float[] table, int stride) => new(table, 1 + (long)(int)table[0] * stride);
}

/// <summary>xoshiro256** as the host's Rng runs it (NextULong), on four words.</summary>
public struct Xoshiro
{
    public ulong S0, S1, S2, S3;

    private static ulong Rotl(ulong x, int k) => (x << k) | (x >> (64 - k));

    public ulong Next()
    {
        ulong result = Rotl(S1 * 5, 7) * 9;
        ulong t = S1 << 17;
        S2 ^= S0; S3 ^= S1; S1 ^= S2; S0 ^= S3;
        S2 ^= t;
        S3 = Rotl(S3, 45);
        return result;
    }
}

/// <summary>The arithmetic of the two kernels, shared with the CPU oracle, and the exact-integer packing.</summary>
public static class TrainMath
{
    private const ulong Low24 = (1UL << 24) - 1;

    /// <summary>A 48-bit integer from columns at, at + 1 (high, low 24 bits).</summary>
    public static ulong Get48<T>(T s, int at) where T : struct, ICells =>
        ((ulong)s[at] << 24) + (ulong)s[at + 1];

    public static void Put48<T>(T s, int at, ulong v) where T : struct, ICells
    {
        s[at] = v >> 24;
        s[at + 1] = v & Low24;
    }

    /// <summary>A 64-bit integer from columns at … at + 2 (16, 24, 24 bits).</summary>
    public static ulong Get64<T>(T s, int at) where T : struct, ICells =>
        ((ulong)s[at] << 48) + ((ulong)s[at + 1] << 24) + (ulong)s[at + 2];

    public static void Put64<T>(T s, int at, ulong v) where T : struct, ICells
    {
        s[at] = v >> 48;
        s[at + 1] = (v >> 24) & Low24;
        s[at + 2] = v & Low24;
    }

    private static Xoshiro LoadRng<T>(T s) where T : struct, ICells => new()
    {
        S0 = Get64(s, TrainState.Rng), S1 = Get64(s, TrainState.Rng + 3), S2 = Get64(s, TrainState.Rng + 6),
        S3 = Get64(s, TrainState.Rng + 9),
    };

    private static void StoreRng<T>(T s, Xoshiro r) where T : struct, ICells
    {
        Put64(s, TrainState.Rng, r.S0);
        Put64(s, TrainState.Rng + 3, r.S1);
        Put64(s, TrainState.Rng + 6, r.S2);
        Put64(s, TrainState.Rng + 9, r.S3);
    }

    /// <summary>
    /// The counter-hash seed of one draw family of a step: 64 bits hashed from (key, step, family), so steps and
    /// families never share a stream (0: indices and timesteps, at disjoint offsets; 1: image flips; 2: labels).
    /// </summary>
    public static ulong StepKey(ulong key, ulong step, int family)
    {
        ulong k = step * 4 + (ulong)family;
        return ((ulong)CounterHash.Of(key, 2 * k) << 32) | CounterHash.Of(key, 2 * k + 1);
    }

    /// <summary>LrSchedule.LinearWarmup's arithmetic: the rate of update t (1-based).</summary>
    public static float WarmupLr(ulong t, int warmupSteps, float lr) =>
        warmupSteps <= 0 || t >= (ulong)warmupSteps ? lr : (float)((double)lr * (long)t / warmupSteps);

    /// <summary>SandwichTrainer.EmaDecayAt's arithmetic: min(decay, (1 + step)/(10 + step)) in float.</summary>
    public static float EmaDecay(long step, float decay)
    {
        float warm = (1f + step) / (10f + step);
        return decay < warm ? decay : warm;
    }

    /// <summary>The head of a step: its scalars from the counters, then the counters moved to the passes.</summary>
    public static void StepScalars<T>(T s, in TrainStepScalarsArgs a) where T : struct, ICells
    {
        ulong step = Get48(s, TrainState.Step), t = Get48(s, TrainState.AdamT) + 1;
        Put64(s, TrainState.IndexSeed, StepKey(a.DataKey, step, 0));
        Put64(s, TrainState.FlipSeed, StepKey(a.DataKey, step, 1));
        Put64(s, TrainState.LabelSeed, StepKey(a.DataKey, step, 2));
        s[TrainState.Lr] = WarmupLr(t, a.WarmupSteps, a.Lr);
        s[TrainState.Bc1] = t < (ulong)a.Bias1 ? s[TrainState.Bias + (int)t] : 1f;
        s[TrainState.Bc2] = t < (ulong)a.Bias2 ? s[TrainState.Bias + a.Bias1 + (int)t] : 1f;
        float decay = EmaDecay((long)step, a.EmaDecay);
        s[TrainState.EmaAlpha] = 1f - decay;
        s[TrainState.EmaBeta] = decay;
        var rng = LoadRng(s);
        for (int i = 0; i < a.WidthDraws; i++) rng.Next();
        StoreRng(s, rng);
        s[TrainState.Pass] = 0f;
        Put48(s, TrainState.Step, step + 1);
        Put48(s, TrainState.AdamT, t);
    }

    /// <summary>The start of a width pass: its scalars, then the counters moved to the next pass.</summary>
    public static void PassScalars<T>(T s, in TrainPassScalarsArgs a) where T : struct, ICells
    {
        int p = (int)s[TrainState.Pass];
        var rng = LoadRng(s);
        Put64(s, TrainState.DropoutSeed, rng.Next());
        StoreRng(s, rng);
        ulong noise = Get48(s, TrainState.Noise);
        Put48(s, TrainState.NoiseOffset, noise);
        Put48(s, TrainState.Noise, noise + (ulong)a.PassFloats);
        s[TrainState.TOffset] = (p + 1) * a.Batch;
        s[TrainState.LossSlot] = p;
        s[TrainState.Pass] = p + 1;
    }
}

public static class TrainScalarKernels
{
    internal static KernelEntry[] Catalog =>
    [
        KernelEntry.Of<TrainStepScalarsArgs>(TrainStepScalars, "train_step_scalars", "step", hot: false,
            "a training step's seeds, rate, bias corrections and EMA weights from the device counters (one thread)"),
        KernelEntry.Of<TrainPassScalarsArgs>(TrainPassScalars, "train_pass_scalars", "step", hot: false,
            "a width pass's dropout seed, noise offset and slots from the device counters (one thread)"),
    ];

    /// <summary>One thread of one group.</summary>
    public static void TrainStepScalars(TrainStepScalarsArgs a)
    {
        if (Dev.GlobalId == 0) TrainMath.StepScalars(new DeviceCells(a.State, 1), a);
    }

    /// <summary>One thread of one group.</summary>
    public static void TrainPassScalars(TrainPassScalarsArgs a)
    {
        if (Dev.GlobalId == 0) TrainMath.PassScalars(new DeviceCells(a.State, 1), a);
    }
}
