namespace Ddsm.Engine;

/// <summary>
/// Device memory owned by one backend. Holds <see cref="Length"/> float32 elements.
/// The CPU backend wraps a pooled managed array; the CUDA backend a device pointer.
/// </summary>
public abstract class DeviceBuffer
{
    public abstract Backend Backend { get; }
    /// <summary>Number of float32 elements usable.</summary>
    public abstract long Length { get; }
}

/// <summary>
/// The backend contract: memory (allocate, free, copy in, copy out) plus one call per kernel family.
/// It is deliberately small and shape-explicit: every call gets raw buffers and a descriptor, never a
/// Tensor, so that a backend knows nothing about autograd, scopes or diffusion.
///
/// Backward passes that are plain compositions of forward calls are not part of it: the op layer
/// (Ops/F.*.cs, helpers in F.Compose.cs) builds them from Binary, Unary, Broadcast, Axpby, Gemm,
/// Upsample2x, AvgPool2x and friends, so a new backend implements fewer kernels and every backend
/// gets the same gradients by construction. Backward kernels remain only where fusion is the point:
/// convolution, GroupNorm, attention (and the fused Adam step).
///
/// Conventions every implementation follows (the CPU backend is the oracle for the others):
/// <list type="bullet">
/// <item>Layouts are contiguous row-major; images are NCHW.</item>
/// <item>Forward kernels overwrite their outputs. The element-wise ones (Axpby, Binary, Unary,
/// Broadcast) also work in place: their output may be the very buffer of an input, which is what lets
/// the compositions run on one scratch buffer.</item>
/// <item><b>Backward kernels accumulate</b> (+=) into every gradient buffer they are given; a null
/// gradient buffer means "not needed". The autograd layer zero-fills gradients when it creates them,
/// which is what lets gradients accumulate across several backward passes (the sandwich rule).</item>
/// <item>Slimming: a weight is passed whole (its max shape in the descriptor) and the kernel uses the
/// prefix given by the active counts, without copies; its gradient lands in the same prefix.</item>
/// </list>
/// </summary>
public abstract class Backend : IDisposable
{
    public abstract string Name { get; }

    // ---- memory ---------------------------------------------------------------------------
    /// <summary>Uninitialised memory for <paramref name="count"/> floats (pooled where possible).</summary>
    public abstract DeviceBuffer Allocate(long count);
    public abstract void Free(DeviceBuffer buffer);
    /// <summary>Host → device copy (counted in <see cref="Transfers"/>).</summary>
    public void CopyIn(DeviceBuffer dst, long dstOffset, ReadOnlySpan<float> src)
    {
        _transfers.CountIn(src.Length);
        CopyInCore(dst, dstOffset, src);
    }

    /// <summary>
    /// Device → host copy; waits for the queued work it depends on (counted in <see cref="Transfers"/>).
    /// </summary>
    public void CopyOut(DeviceBuffer src, long srcOffset, Span<float> dst)
    {
        _transfers.CountOut(dst.Length);
        CopyOutCore(src, srcOffset, dst);
    }

    /// <summary>Waits for all queued work (no-op on CPU); counted in <see cref="Transfers"/>.</summary>
    public void Synchronize()
    {
        _transfers.CountSync();
        SynchronizeCore();
    }

    /// <summary>The profiler's own waits around timed ops: not the program's, so not counted.</summary>
    internal void SynchronizeUncounted() => SynchronizeCore();

    protected abstract void CopyInCore(DeviceBuffer dst, long dstOffset, ReadOnlySpan<float> src);
    protected abstract void CopyOutCore(DeviceBuffer src, long srcOffset, Span<float> dst);
    protected virtual void SynchronizeCore() { }
    /// <summary>dst[dstOff + i] = src[srcOff + i] (device to device, same backend).</summary>
    public abstract void Copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count);

    private readonly TransferCounter _transfers = new();
    /// <summary>
    /// Host round trips so far: copies in, copies out, synchronisations. Counted here, for every backend
    /// alike (the CPU backend's copies are memcpys, but on a device each would be a transfer or a stall),
    /// so a test on the CPU says what a step would cost a GPU.
    /// </summary>
    public TransferCounts Transfers => _transfers.Snapshot();

    // ---- element-wise (n elements from offset 0 unless stated) ------------------------------
    public abstract void Fill(DeviceBuffer x, long offset, long count, float value);
    /// <summary>y = alpha·x + beta·y; x may be y (then y = (alpha+beta)·y).</summary>
    public abstract void Axpby(DeviceBuffer x, DeviceBuffer y, long n, float alpha, float beta);
    /// <summary>Element-wise z = a op b (all n long); z may alias a or b.</summary>
    public abstract void Binary(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z, long n);
    /// <summary>y = f(x) element-wise; y may alias x.</summary>
    public abstract void Unary(UnaryOp op, DeviceBuffer x, DeviceBuffer y, long n);
    /// <summary>
    /// Broadcast over a (outer, mid, inner) view of a: z[o,m,i] = a[o,m,i] op b[bo,m], with bo = o when
    /// b has one row per outer index (<paramref name="bPerOuter"/>) and 0 otherwise; z may alias a.
    /// Used for "h + emb[:, :, None, None]", per-channel scales, and scaling by a device scalar
    /// (outer 1, mid 1, inner n) without reading it on the host.
    /// </summary>
    public abstract void Broadcast(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z,
        int outer, int mid, int inner, bool bPerOuter);
    /// <summary>
    /// Strided block copy: for r in [0,rows): dst[dstOff + r·dstStride + j] (+)= src[srcOff + r·srcStride + j],
    /// j in [0,len). Concatenation and slicing on channels are this.
    /// </summary>
    public abstract void CopyBlocks(DeviceBuffer src, long srcOffset, long srcStride,
        DeviceBuffer dst, long dstOffset, long dstStride, int rows, long len, bool accumulate);

    // ---- reductions ------------------------------------------------------------------------
    /// <summary>out[0] = Σ x (deterministic order).</summary>
    public abstract void Sum(DeviceBuffer x, long n, DeviceBuffer result);
    /// <summary>out[0] = Σ x².</summary>
    public abstract void SumSquares(DeviceBuffer x, long n, DeviceBuffer result);
    /// <summary>out[0] = Σ (a−b)² (the un-normalised MSE).</summary>
    public abstract void SquaredError(DeviceBuffer a, DeviceBuffer b, long n, DeviceBuffer result);

    // ---- matrix multiply ----------------------------------------------------------------------
    /// <summary>
    /// Batched row-major GEMM: C_b = alpha·op(A_b)·op(B_b) + beta·C_b for b in [0,batch),
    /// op(A) is M×K, op(B) is K×N. Offsets and strides in elements. Deterministic (same inputs, same
    /// bits): the op layer's reductions (bias and broadcast gradients, against a ones vector) are GEMMs.
    /// </summary>
    public abstract void Gemm(in GemmDesc d, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c);

    // ---- convolution (slimmable) ------------------------------------------------------------
    /// <summary>y (N,Cout,Ho,Wo) = conv(x (N,Cin,H,W), w[:Cout,:Cin]) + bias[:Cout].</summary>
    public abstract void Conv2dForward(in ConvDesc d, DeviceBuffer x, DeviceBuffer w, DeviceBuffer? bias,
                                       DeviceBuffer y);
    /// <summary>dx (N,Cin,H,W) += convᵀ(dy, w[:Cout,:Cin]).</summary>
    public abstract void Conv2dBackwardData(in ConvDesc d, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer dx);
    /// <summary>dw[:Cout,:Cin] += Σ x ⋆ dy; dbias[:Cout] += Σ dy (dbias may be null).</summary>
    public abstract void Conv2dBackwardWeight(in ConvDesc d, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dw,
                                              DeviceBuffer? dbias);

    // ---- normalisation (slimmable, fused) ---------------------------------------------------
    /// <summary>
    /// y = act((xhat·γ[:C] + β[:C])·(1+scale) + shift), xhat normalised per (n, group) over C/G channels × S.
    /// scale/shift are (N, C) or null; act is identity or SiLU. mean/rstd (N, G) are written for backward.
    /// </summary>
    public abstract void GroupNormForward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer y, DeviceBuffer mean, DeviceBuffer rstd);
    /// <summary>Accumulates dx, dγ[:C], dβ[:C], dscale, dshift (any may be null except dx).</summary>
    public abstract void GroupNormBackward(in GroupNormDesc d, DeviceBuffer x, DeviceBuffer gamma, DeviceBuffer beta,
        DeviceBuffer? scale, DeviceBuffer? shift, DeviceBuffer mean, DeviceBuffer rstd, DeviceBuffer dy,
        DeviceBuffer? dx, DeviceBuffer? dgamma, DeviceBuffer? dbeta, DeviceBuffer? dscale, DeviceBuffer? dshift);

    // ---- attention --------------------------------------------------------------------------
    /// <summary>
    /// Multi-head self-attention over T tokens. qkv is (N, 3·C, T) in ADM's "legacy" head-major order:
    /// channels [h·3d, h·3d+d) are q of head h, the next d are k, the next d are v (so a channel prefix
    /// keeps whole heads: the slimmable cut). out is (N, C, T); lse (N·heads, T) is the row
    /// log-sum-exp kept for backward. Scale 1/√d.
    /// </summary>
    public abstract void AttentionForward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse);
    /// <summary>dqkv += ∂out/∂qkv · dout.</summary>
    public abstract void AttentionBackward(in AttentionDesc d, DeviceBuffer qkv, DeviceBuffer output, DeviceBuffer lse,
        DeviceBuffer dout, DeviceBuffer dqkv);

    // ---- resampling ---------------------------------------------------------------------------
    /// <summary>y (N,C,2H,2W) = nearest-neighbour ×2 of x (N,C,H,W).</summary>
    public abstract void Upsample2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w);
    /// <summary>y (N,C,H/2,W/2) = 2×2 average pool of x (N,C,H,W).</summary>
    public abstract void AvgPool2x(DeviceBuffer x, DeviceBuffer y, int nc, int h, int w);

    // ---- misc -------------------------------------------------------------------------------
    /// <summary>
    /// out (N, dim): [cos(t·f_0..f_{h-1}), sin(t·f_0..)] with f_j = exp(−ln(maxPeriod)·j/h), h = dim/2
    /// (ADM's timestep_embedding; an odd dim gets a zero last column).
    /// </summary>
    public abstract void TimestepEmbedding(DeviceBuffer t, DeviceBuffer output, int n, int dim, float maxPeriod);
    /// <summary>
    /// Inverted dropout with a counter-based hash RNG so every backend draws the same mask:
    /// keep[i] = hash(seed, i) ≥ p·2³², y = keep ? x/(1−p) : 0. mask (n) receives 0 or 1/(1−p).
    /// </summary>
    public abstract void Dropout(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p, ulong seed);
    /// <summary>
    /// y[i] = z(seed, offset + i) ~ N(0, 1) for i in [0, n): Box–Muller on two counter-hashed uniforms
    /// (<see cref="Ddsm.Kernels.CounterHash.Normal"/>), so every backend draws the same normals for a
    /// (seed, offset) with no generator state on the device: noise is drawn where it is used.
    /// </summary>
    public abstract void Normal(DeviceBuffer y, long n, ulong seed, ulong offset);

    /// <summary>
    /// y[i] = lo + ⌊hash(seed, offset + i)·(hi − lo + 1) / 2³²⌋ as floats, i in [0, n): integers uniform in
    /// [lo, hi] from the counter hash (<see cref="Ddsm.Kernels.GatherMath.UniformInt"/>), the same on every backend
    /// (a training step's batch indices and timesteps, drawn where they are used). |lo|, |hi| &lt; 2²⁴.
    /// </summary>
    public abstract void UniformInts(DeviceBuffer y, long n, ulong seed, ulong offset, int lo, int hi);
    /// <summary>
    /// dst (Rows, RowLength) = rows index[r] of src (SrcRows, RowLength) (index holds row numbers as floats),
    /// each row drawn from the counter hash keyed by d.Seed (<see cref="Ddsm.Kernels.GatherMath"/>): mirrored
    /// within segments of FlipSegment columns with probability ½ (0: never), replaced by row DropRow with
    /// probability DropP (0: never). A resident data set's batch with its flips, its labels with their dropout.
    /// </summary>
    public abstract void GatherRows(in GatherDesc d, DeviceBuffer src, DeviceBuffer index, DeviceBuffer dst);

    // ---- per-step scalars (kernels/StepScalars.cs) -------------------------------------------
    // The few ops of a sampling step whose scalars change from step to step, reading them from the current row of
    // a StepTable in device memory instead of taking them as arguments, so a captured step replays correctly.
    // Each computes what its plain twin (Axpby, Fill, Normal) computes with those values as arguments.
    /// <summary>y = α·x + β·y with α, β from the step table (one table for both); x may be y.</summary>
    public abstract void AxpbyStep(DeviceBuffer x, DeviceBuffer y, long n, StepScalar alpha, StepScalar beta);
    /// <summary>x[0, count) = the table's value.</summary>
    public abstract void FillStep(DeviceBuffer x, long count, StepScalar value);
    /// <summary>
    /// <see cref="Normal"/> at offset high·2^24 + low, both read from the table (<see cref="StepTable.SplitOffset"/>).
    /// </summary>
    public abstract void NormalStep(DeviceBuffer y, long n, ulong seed, StepScalar offsetHigh, StepScalar offsetLow);
    /// <summary>Moves a step table (<see cref="StepTable.Buffer"/>) to its next row: element 0 += 1.</summary>
    public abstract void AdvanceStep(DeviceBuffer table);

    // The training step's (kernels/StepDraws.cs, TrainScalars.cs, Adam.cs): draws whose 64-bit seed is read from
    // three columns of the table (TrainMath.Get64), a copy to a slot read there, Adam's table form, and the two
    // one-thread kernels that compute a step's and a pass's values from the counters of the trainer's table.
    /// <summary><see cref="UniformInts"/> with the seed at <paramref name="seed"/> (3 columns) and the offset
    /// <paramref name="offset"/> plus the value at <paramref name="offsetAdd"/> when given.</summary>
    public abstract void UniformIntsStep(DeviceBuffer y, long n, StepScalar seed, ulong offset, StepScalar? offsetAdd,
        int lo, int hi);
    /// <summary><see cref="GatherRows"/> with the draws' seed at <paramref name="seed"/> (3 columns; d.Seed unused).
    /// </summary>
    public abstract void GatherRowsStep(in GatherDesc d, DeviceBuffer src, DeviceBuffer index, DeviceBuffer dst,
        StepScalar seed);
    /// <summary><see cref="Dropout"/> with the seed (the value at <paramref name="seed"/>, 3 columns) ⊕ salt.</summary>
    public abstract void DropoutStep(DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, long n, float p,
        StepScalar seed, ulong salt);
    /// <summary><see cref="Copy"/> to dstOffset + (the value at <paramref name="slot"/>)·scale.</summary>
    public abstract void CopyStep(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count,
        StepScalar slot, long scale);
    /// <summary>
    /// The guarded <see cref="AdamStep(DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, long, in AdamHyper,
    /// DeviceBuffer)"/> with h.Lr, h.BiasCorrection1, h.BiasCorrection2 replaced by the values at
    /// <paramref name="lr"/> and the two columns after it.
    /// </summary>
    public abstract void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h, DeviceBuffer guard, StepScalar lr);
    /// <summary>
    /// A training step's values from the counters of a one-row table
    /// (<see cref="Ddsm.Kernels.TrainMath.StepScalars"/>).
    /// </summary>
    public abstract void TrainStepScalars(StepTable state, in Ddsm.Kernels.TrainStepScalarsArgs a);
    /// <summary>A width pass's values from the counters (<see cref="Ddsm.Kernels.TrainMath.PassScalars"/>).</summary>
    public abstract void TrainPassScalars(StepTable state, in Ddsm.Kernels.TrainPassScalarsArgs a);

    /// <summary>The one table two step scalars share (a kernel reads both from one buffer).</summary>
    protected static StepTable OneTable(StepScalar a, StepScalar b) =>
        ReferenceEquals(a.Table, b.Table) ? a.Table
            : throw new ArgumentException("step scalars of one call must come from one step table");

    // ---- step graphs -------------------------------------------------------------------------
    private long _graphsCaptured, _graphsReplayed;

    /// <summary>
    /// Captures one step of a loop without running it; <see cref="StepGraph.Replay"/> runs it (the first time
    /// too). Host copies inside <paramref name="step"/> are refused where the capture is real, and buffers it
    /// frees are held by the graph. See <see cref="StepGraph"/>.
    /// </summary>
    public StepGraph CaptureStep(Action step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var (replay, release) = CaptureCore(step);
        Interlocked.Increment(ref _graphsCaptured);
        return new StepGraph(this, replay, release);
    }

    /// <summary>How this backend replays a step: here by running it again (nothing to capture).</summary>
    protected virtual (Action Replay, Action? Release) CaptureCore(Action step) => (step, null);

    /// <summary>What a replay is here ("CUDA graph", "recorded launches", "re-run step"), for reports.</summary>
    public virtual string StepGraphKind => "re-run step";

    public StepGraphCounts StepGraphs =>
        new(Interlocked.Read(ref _graphsCaptured), Interlocked.Read(ref _graphsReplayed));

    internal void CountReplay() => Interlocked.Increment(ref _graphsReplayed);

    // ---- losses -----------------------------------------------------------------------------
    /// <summary>
    /// Per row i of logits (N, K) and its label y_i (labels (N) hold integers as floats): loss[i] =
    /// −log softmax(z_i)[y_i] and dlogits[i] = softmax(z_i) − onehot(y_i) (overwritten), the gradient of
    /// loss[i] that the op layer scales in its backward. Stable (max subtracted), in double.
    /// </summary>
    public abstract void CrossEntropy(DeviceBuffer logits, DeviceBuffer labels, DeviceBuffer loss,
        DeviceBuffer dlogits, int n, int k);

    // ---- optimiser --------------------------------------------------------------------------
    /// <summary>
    /// One Adam(W) step over n elements: g = grad·gradScale; m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²;
    /// p −= lr·(m/bc1 / (√(v/bc2) + eps) + wd·p).
    /// </summary>
    public abstract void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h);
    /// <summary>
    /// The same step with the gradient scale h.GradScale·guard[Scale], and no change at all while guard[Diverged]
    /// is set (<see cref="Ddsm.Kernels.ClipGuard"/>'s layout): clipping and the non-finite stop without a read.
    /// </summary>
    public abstract void AdamStep(DeviceBuffer param, DeviceBuffer grad, DeviceBuffer m, DeviceBuffer v, long n,
        in AdamHyper h, DeviceBuffer guard);
    /// <summary>
    /// guard (<see cref="Ddsm.Kernels.ClipGuard.Length"/>) = the global norm √Σ values[0..sumCount) (summed in
    /// double in index order), the clip scale min(1, clipNorm / (norm + 1e-6)) (1 when clipNorm ≤ 0), and the
    /// diverged flag set (sticky) when the norm or any of values[sumCount..count) is not finite.
    /// </summary>
    public abstract void GradientGuard(DeviceBuffer values, int sumCount, int count, DeviceBuffer guard,
        float clipNorm);

    public virtual void Dispose() { GC.SuppressFinalize(this); }
    public override string ToString() => Name;
}

public enum BinaryOp { Add, Sub, Mul }

/// <summary>
/// Element-wise maps. SiLUGrad is SiLU's derivative σ(x)·(1 + x·(1 − σ(x))), a forward map so that
/// SiLU's backward is a composition. ClampUnit clips to the data range [−1, 1] (the samplers' x̂0
/// clipping, on the device). The CUDA kernels switch on these integer values.
/// </summary>
public enum UnaryOp { SiLU, Square, Exp, SiLUGrad, ClampUnit }

public readonly record struct GemmDesc(
    bool TransA, bool TransB, int M, int N, int K,
    float Alpha, float Beta,
    long OffsetA, int Lda, long OffsetB, int Ldb, long OffsetC, int Ldc,
    int Batch = 1, long StrideA = 0, long StrideB = 0, long StrideC = 0)
{
    public long Flops => 2L * M * N * K * Batch;
}

/// <summary>
/// A slimmable 2-D convolution. Cin/Cout are the active counts; CinMax/CoutMax the weight's stored
/// shape (CoutMax, CinMax, K, K). Square kernel, equal stride and padding on both axes.
/// </summary>
public readonly record struct ConvDesc(
    int N, int Cin, int H, int W, int Cout, int K, int Stride, int Pad, int CinMax, int CoutMax)
{
    public int Ho => (H + 2 * Pad - K) / Stride + 1;
    public int Wo => (W + 2 * Pad - K) / Stride + 1;
    public long ForwardFlops => 2L * N * Cout * Ho * Wo * Cin * K * K;
}

/// <summary>GroupNorm over C active channels (γ/β stored for CMax) in G groups, S = H·W.</summary>
public readonly record struct GroupNormDesc(int N, int C, int S, int G, int CMax, float Eps, bool SiLU)
{
    public int ChannelsPerGroup => C / G;
}

/// <summary>Self-attention: N batch, Heads active heads of HeadDim channels, T tokens.</summary>
public readonly record struct AttentionDesc(int N, int Heads, int HeadDim, int T)
{
    public int C => Heads * HeadDim;
    public long ForwardFlops => 4L * N * Heads * T * (long)T * HeadDim;
}

public readonly record struct AdamHyper(
    float Lr, float Beta1, float Beta2, float Eps, float WeightDecay,
    float BiasCorrection1, float BiasCorrection2, float GradScale);

/// <summary>A row gather (<see cref="Backend.GatherRows"/>): shapes, and the per-row draws keyed by Seed.</summary>
public readonly record struct GatherDesc(int Rows, int RowLength, int SrcRows, int FlipSegment = 0, ulong Seed = 0,
    float DropP = 0f, int DropRow = 0);
