namespace Ddsm.Engine;

public static partial class F
{
    /// <summary>
    /// Slimmable linear layer: y (N, out) = x (N, in) · W[:out, :in]ᵀ + b[:out], with W stored whole as
    /// (OutMax, InMax) in PyTorch layout and b as (OutMax). The prefix is addressed in place through
    /// the GEMM leading dimension (lda = InMax), so slimming copies nothing, and the gradient lands in
    /// the same prefix of W.grad (ldc = InMax). FLOPs reported: 2·N·in·out (+ N·out for the bias).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias, int outFeatures)
    {
        const string name = "linear";
        Check.SameBackend(name, x, weight, bias);
        Check.Rank(name, x, 2, "x (N, in)");
        Check.Rank(name, weight, 2, "weight (OutMax, InMax)");
        int n = x.Shape[0], inF = x.Shape[1], outMax = weight.Shape[0], inMax = weight.Shape[1];
        Check.That(inF <= inMax, name,
                   $"input width {inF} of x {ShapeUtil.Str(x.Shape)} exceeds weight {ShapeUtil.Str(weight.Shape)} " +
                   $"(InMax {inMax})");
        Check.That(outFeatures > 0 && outFeatures <= outMax, name,
                   $"outFeatures {outFeatures} outside [1, {outMax}] of weight {ShapeUtil.Str(weight.Shape)}");
        Check.That(bias is null || (bias.Rank == 1 && bias.Shape[0] == outMax), name,
            $"bias {ShapeUtil.Str(bias?.Shape ?? [])} must be ({outMax}) for weight {ShapeUtil.Str(weight.Shape)}");
        Check.That(n > 0 && inF > 0, name, $"empty input {ShapeUtil.Str(x.Shape)}");

        var be = x.Backend;
        int outF = outFeatures;
        var y = Tensor.Empty(be, n, outF); // (N, out)
        // Bias as a rank-1 GEMM (ones (N,1) · b[:out] (1,out)): every backend already has a fast,
        // deterministic GEMM, and the same ones vector gives db = onesᵀ·dy in backward.
        var ones = bias is null ? null : Tensor.Full(be, 1f, n); // (N)
        using (Profiler.Op(name, 2L * n * inF * outF + (bias is null ? 0 : (long)n * outF), be))
        {
            float beta0 = 0f;
            if (bias is not null)
            {
                be.Gemm(new GemmDesc(false, false, n, outF, 1, 1f, 0f, 0, 1, 0, outMax, 0, outF), ones!.Buffer,
                        bias.Buffer, y.Buffer);
                beta0 = 1f;
            }
            // y += x (N×in) · W[:out, :in]ᵀ.
            be.Gemm(new GemmDesc(false, true, n, outF, inF, 1f, beta0, 0, inF, 0, inMax, 0, outF), x.Buffer,
                    weight.Buffer, y.Buffer);
        }
        if (!Tape.Needs([x, weight, bias]))
        {
            ones?.Dispose();
            return y;
        }
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        Tape.Record(name, y, inputs, gy =>
        {
            // dx (N×in) += dy (N×out) · W[:out, :in].
            if (Tape.GradOf(x) is { } dx)
                be.Gemm(new GemmDesc(false, false, n, inF, outF, 1f, 1f, 0, outF, 0, inMax, 0, inF), gy.Buffer,
                        weight.Buffer, dx);
            // dW[:out, :in] (ld InMax) += dyᵀ (out×N) · x (N×in).
            if (Tape.GradOf(weight) is { } dw)
                be.Gemm(new GemmDesc(true, false, outF, inF, n, 1f, 1f, 0, outF, 0, inF, 0, inMax), gy.Buffer, x.Buffer,
                        dw);
            // db[:out] += onesᵀ (1×N) · dy (N×out).
            if (Tape.GradOf(bias) is { } db)
                be.Gemm(new GemmDesc(true, false, 1, outF, n, 1f, 1f, 0, 1, 0, outF, 0, outMax), ones!.Buffer,
                        gy.Buffer, db);
        });
        return y;
    }
}
