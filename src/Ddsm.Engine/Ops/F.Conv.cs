namespace Ddsm.Engine;

public static partial class F
{
    /// <summary>
    /// Slimmable 2-D convolution: x (N, Cin, H, W) with weight (CoutMax, CinMax, K, K) → (N, cout, Ho, Wo).
    /// The kernel uses the prefix weight[:cout, :Cin] (and bias[:cout]) in place, so one weight serves
    /// every width; its gradient lands in the same prefix and the rest of the weight gets none.
    /// padding −1 means K/2 ("same" for odd K at stride 1).
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, int cout, int stride = 1, int padding = -1)
    {
        const string name = "conv2d";
        string Shapes() => $"x {ShapeUtil.Str(x.Shape)}, weight {ShapeUtil.Str(weight.Shape)}" +
                           (bias is null ? "" : $", bias {ShapeUtil.Str(bias.Shape)}") + $", cout {cout}";
        Check.SameBackend(name, x, weight, bias);
        Check.That(x.Rank == 4, name, $"input must be (N, Cin, H, W): {Shapes()}");
        Check.That(weight.Rank == 4, name, $"weight must be (CoutMax, CinMax, K, K): {Shapes()}");
        int n = x.Shape[0], cin = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        int coutMax = weight.Shape[0], cinMax = weight.Shape[1], k = weight.Shape[2];
        Check.That(weight.Shape[3] == k, name, $"kernel must be square: {Shapes()}");
        Check.That(k >= 1, name, $"empty kernel: {Shapes()}");
        Check.That(cin >= 1 && cin <= cinMax, name,
                   $"input channels {cin} exceed the weight's CinMax {cinMax} (or are 0): {Shapes()}");
        Check.That(cout >= 1 && cout <= coutMax, name, $"cout {cout} must be in [1, CoutMax {coutMax}]: {Shapes()}");
        Check.That(stride >= 1, name, $"stride {stride} must be ≥ 1: {Shapes()}");
        if (padding < 0) padding = k / 2;
        if (bias is not null)
            Check.That(bias.Rank == 1 && bias.Shape[0] == coutMax, name,
                       $"bias must be (CoutMax) = ({coutMax}): {Shapes()}");
        var d = new ConvDesc(n, cin, h, w, cout, k, stride, padding, cinMax, coutMax);
        Check.That(d.Ho >= 1 && d.Wo >= 1 && h + 2 * padding >= k && w + 2 * padding >= k, name,
            $"kernel {k} with padding {padding} does not fit the image: {Shapes()}");

        var be = x.Backend;
        var y = Tensor.Empty(be, n, cout, d.Ho, d.Wo);
        using (Profiler.Op(name, d.ForwardFlops, be))
            be.Conv2dForward(d, x.Buffer, weight.Buffer, bias?.Buffer, y.Buffer);

        if (Tape.Needs([x, weight, bias]))
        {
            Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
            Tape.Record(name, y, inputs, g =>
            {
                if (x.RequiresGrad)
                    using (Profiler.Op("conv2d_data.bwd", d.ForwardFlops, be))
                        be.Conv2dBackwardData(d, g.Buffer, weight.Buffer, x.EnsureGrad().Buffer);
                bool wantBias = bias is { RequiresGrad: true };
                if (!weight.RequiresGrad && !wantBias) return;
                long flops = d.ForwardFlops + (wantBias ? (long)n * cout * d.Ho * d.Wo : 0);
                // The contract always writes dW; a frozen weight with a trained bias gets a scratch dW.
                Tensor? scratch = weight.RequiresGrad ? null : Tensor.Zeros(be, weight.Shape);
                try
                {
                    using (Profiler.Op("conv2d_weight.bwd", flops, be))
                        be.Conv2dBackwardWeight(d, x.Buffer, g.Buffer, (scratch ?? weight.EnsureGrad()).Buffer,
                            wantBias ? bias!.EnsureGrad().Buffer : null);
                }
                finally { scratch?.Dispose(); }
            });
        }
        return y;
    }
}
