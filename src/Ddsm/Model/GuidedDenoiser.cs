namespace Ddsm.Model;

/// <summary>
/// Classifier-free guidance (Ho &amp; Salimans): ε̂ = ε_uncond + s·(ε_cond − ε_uncond) with the
/// class-conditional <see cref="SlimUNet"/>. s = 1 is the plain conditional model, s = 0 the
/// unconditional one, s &gt; 1 sharpens towards the class. Both predictions come from ONE forward of
/// a doubled batch [x; x] with labels [y; null] at the step's width: one pass over the weights and
/// twice the rows per GEMM, which is what makes guidance cheap on a GPU.
/// </summary>
public sealed class GuidedDenoiser : IDenoiser
{
    public SlimUNet Model { get; }
    public double Scale { get; }
    private readonly int[] _labels;   // (N) conditional half
    private readonly int[] _doubled;  // (2N) [labels; null class]

    public GuidedDenoiser(SlimUNet model, int[] labels, double scale)
    {
        int k = model.Config.NumClasses;
        if (k <= 0)
            throw new ArgumentException($"guidance: model '{model.Config.Name}' is unconditional (NumClasses = 0)");
        if (labels.Length == 0) throw new ArgumentException("guidance: no labels");
        if (!double.IsFinite(scale)) throw new ArgumentException($"guidance: scale must be finite, got {scale}");
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)k)
                throw new ArgumentException(
                    $"guidance: label {labels[i]} at index {i} outside [0, {k - 1}] of model '{model.Config.Name}'");
        Model = model;
        Scale = scale;
        _labels = (int[])labels.Clone();
        _doubled = [.. labels, .. Enumerable.Repeat(model.NullClass, labels.Length)];
    }

    public Backend Backend => Model.Backend;
    public ImageShape Image => Model.Image;

    /// <summary>Two forwards per image (the conditional and the unconditional half of the doubled batch); the
    /// combining arithmetic is not counted.</summary>
    public long FlopsPerImage(double t, double width) => 2 * Model.FlopsPerImage(t, width);

    public Tensor PredictEps(Tensor x, Timestep t, double width)
    {
        int n = x.Shape[0];
        if (n != _labels.Length)
            throw new ArgumentException($"guidance: batch {n} does not match {_labels.Length} labels");
        long d = x.Length / n;
        // [x; x] (2N, C, H, W): concatenating the flattened batch on dim 1 of a (1, N·D) view.
        var flat = x.Reshape(1, (int)(n * d));
        var xx = F.ConcatChannels(flat, flat).Reshape([2 * n, .. x.Shape[1..]]);
        var tt = t.Fill(x.Backend, 2 * n);
        var y = Model.Forward(xx, tt, width, _doubled).Reshape(1, (int)(2 * n * d));
        var cond = F.SliceChannels(y, 0, (int)(n * d));
        var uncond = F.SliceChannels(y, (int)(n * d), (int)(n * d));
        return F.Add(uncond, F.Scale(F.Sub(cond, uncond), (float)Scale)).Reshape(x.Shape);
    }
}
