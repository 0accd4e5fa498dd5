namespace Ddsm.Training;

/// <summary>
/// What one sandwich step takes from the host, staged in one host array and sent in ONE copy: the clean
/// batch x0 (B, D), then per width pass its timesteps t (B) and their coefficients √ᾱ_t, √(1−ᾱ_t) (B each),
/// then the labels' one-hot (B, K+1) for a conditional model. On the device the pieces are split by device
/// copies; the noise ε is drawn there and x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε is formed there, so nothing else of
/// the step crosses to the device.
/// </summary>
public sealed class StepInputs
{
    private readonly int _b, _d, _passes, _classes1;
    private readonly float[] _host;

    /// <param name="classes">K for a conditional model (one-hot width K+1), 0 for an unconditional one.</param>
    public StepInputs(int batch, int imageFloats, int passes, int classes)
    {
        (_b, _d, _passes, _classes1) = (batch, imageFloats, passes, classes > 0 ? classes + 1 : 0);
        _host = new float[(long)_b * _d + 3L * _passes * _b + (long)_b * _classes1];
    }

    private long PassOffset(int p) => (long)_b * _d + 3L * p * _b;
    private long LabelOffset => (long)_b * _d + 3L * _passes * _b;

    /// <summary>The clean batch (B·D), to be written by the data set.</summary>
    public Span<float> X0 => _host.AsSpan(0, _b * _d);

    /// <summary>Timesteps of pass p (B), drawn uniformly in [tFirst, tLast] from the host generator.</summary>
    public Span<float> Timesteps(int p) => _host.AsSpan((int)PassOffset(p), _b);

    /// <summary>Draws pass p's timesteps and writes their coefficients.</summary>
    public void DrawPass(int p, NoiseSchedule schedule, Rng rng, int tFirst, int tLast)
    {
        var row = _host.AsSpan((int)PassOffset(p), 3 * _b);
        for (int i = 0; i < _b; i++)
        {
            int t = tFirst + rng.NextInt(tLast - tFirst + 1);
            row[i] = t;
            row[_b + i] = (float)Math.Sqrt(schedule.AlphaBars[t]);
            row[2 * _b + i] = (float)Math.Sqrt(1 - schedule.AlphaBars[t]);
        }
    }

    /// <summary>Writes the labels' one-hot rows (labels in [0, K]).</summary>
    public void SetLabels(ReadOnlySpan<int> labels)
    {
        var oh = _host.AsSpan((int)LabelOffset, _b * _classes1);
        oh.Clear();
        for (int i = 0; i < _b; i++) oh[i * _classes1 + labels[i]] = 1f;
    }

    /// <summary>The step's tensors on the device after one copy in; they live in the caller's scope.</summary>
    public Device Upload(Backend be, int[] imageShape)
    {
        var all = Tensor.FromArray(be, _host, _host.Length);
        Tensor Part(long offset, params int[] shape)
        {
            var t = Tensor.Empty(be, shape);
            be.Copy(all.Buffer, offset, t.Buffer, 0, t.Length);
            return t;
        }
        var x0 = Part(0, imageShape);
        var passes = new (Tensor T, Tensor SqrtAlphaBar, Tensor SqrtOneMinus)[_passes];
        for (int p = 0; p < _passes; p++)
            passes[p] = (Part(PassOffset(p), _b), Part(PassOffset(p) + _b, _b), Part(PassOffset(p) + 2 * _b, _b));
        var oneHot = _classes1 > 0 ? Part(LabelOffset, _b, _classes1) : null;
        all.Dispose();
        return new Device(x0, passes, oneHot);
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
