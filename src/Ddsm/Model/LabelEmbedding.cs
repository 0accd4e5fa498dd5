using Ddsm.Engine.Nn;

namespace Ddsm.Model;

/// <summary>
/// ADM's class embedding (<c>label_emb</c>), slimmable: K classes plus one NULL class (row K) that
/// classifier-free guidance uses for the unconditional prediction. The lookup is a one-hot (N, K+1)
/// matrix through <see cref="F.Linear"/> without bias, so it reuses the GEMM kernels and their
/// backward on every backend, and the gradient lands in the active prefix like every slim layer.
/// Layout: the weight is stored (Emax, K+1) = PyTorch Linear layout, i.e. the TRANSPOSE of
/// <c>nn.Embedding(K+1, E).weight</c> (K+1, E); transpose when exchanging state dicts with ADM.
/// Initialised N(0, 1) like nn.Embedding.
/// </summary>
public sealed class LabelEmbedding : Module
{
    private readonly Tensor _w; // (Emax, K+1)
    public int Classes { get; }
    public int EmbedMax { get; }
    /// <summary>The row used for "no label" (the last one).</summary>
    public int NullClass => Classes;

    public LabelEmbedding(Backend be, Rng rng, int classes, int embedMax) : base(be)
    {
        if (classes <= 0) throw new ArgumentException($"label_emb: class count must be > 0, got {classes}");
        (Classes, EmbedMax) = (classes, embedMax);
        _w = Param("weight", [embedMax, classes + 1], Init.Normal(rng, 1f));
    }

    /// <summary>(N, outFeatures) embeddings of labels in [0, K] (K = the null class).</summary>
    public Tensor Forward(ReadOnlySpan<int> labels, int outFeatures) => Forward(OneHot(labels), outFeatures);

    /// <summary>(N, outFeatures) embeddings of a one-hot (N, K+1) label matrix on the device.</summary>
    public Tensor Forward(Tensor oneHot, int outFeatures) => F.Linear(oneHot, _w, null, outFeatures);

    private int[]? _cachedLabels;
    private Tensor? _cachedOneHot;

    /// <summary>
    /// The one-hot (N, K+1) matrix of labels in [0, K], on the device. Outside autograd (sampling) the last
    /// one is kept and reused while the labels stay the same, so a guided sampler uploads its labels once,
    /// at its first step, not at every step; while recording a tape each call makes its own (a backward
    /// pass may still need an earlier one).
    /// </summary>
    public Tensor OneHot(ReadOnlySpan<int> labels)
    {
        int n = labels.Length, k1 = Classes + 1;
        if (n == 0) throw new ArgumentException("label_emb: no labels");
        if (!Tape.IsRecording && _cachedOneHot is { } cached && labels.SequenceEqual(_cachedLabels!))
            return cached;
        var oneHot = new float[n * k1]; // (N, K+1)
        for (int i = 0; i < n; i++)
        {
            int y = labels[i];
            if ((uint)y > (uint)Classes)
                throw new ArgumentException($"label_emb: label {y} at index {i} outside [0, {Classes}] ({Classes} " +
                                            $"classes + null class {Classes})");
            oneHot[i * k1 + y] = 1f;
        }
        if (Tape.IsRecording) return Tensor.FromArray(Backend, oneHot, n, k1);
        _cachedOneHot?.Dispose();
        using (TensorScope.Suspend()) _cachedOneHot = Tensor.FromArray(Backend, oneHot, n, k1);
        _cachedLabels = labels.ToArray();
        return _cachedOneHot;
    }

    /// <summary>N rows of the null class, built on the device (a fill and a strided copy, no upload).</summary>
    public Tensor NullOneHot(int n)
    {
        int k1 = Classes + 1;
        var oneHot = Tensor.Zeros(Backend, n, k1);
        using var one = Tensor.Full(Backend, 1f, 1);
        Backend.CopyBlocks(one.Buffer, 0, 0, oneHot.Buffer, Classes, k1, n, 1, accumulate: false);
        return oneHot;
    }

    protected override void DisposeCaches()
    {
        _cachedOneHot?.Dispose();
        _cachedOneHot = null;
    }
}
