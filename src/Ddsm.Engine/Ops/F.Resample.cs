namespace Ddsm.Engine;

// The UNet's non-convolutional resampling: nearest ×2 up (ADM's Upsample before its conv) and
// 2×2 average pooling (ADM's Downsample when conv_resample is off).
public static partial class F
{
    /// <summary>Nearest-neighbour ×2: (N, C, H, W) → (N, C, 2H, 2W).</summary>
    public static Tensor Upsample2x(Tensor x)
    {
        const string name = "upsample2x";
        Check.Rank(name, x, 4);
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var be = x.Backend;
        var y = Tensor.Empty(be, n, c, 2 * h, 2 * w);
        // A pure copy: no arithmetic, so no FLOPs (the call is still timed by the profiler).
        using (Profiler.Op(name, 0, be)) be.Upsample2x(x.Buffer, y.Buffer, n * c, h, w);
        if (Tape.Needs(x))
            // Each input feeds 4 outputs: dx += Σ of them = 4·avgpool(dy).
            Tape.Record(name, y, [x], g => AccumulateTemp(be, x.EnsureGrad().Buffer, x.Length, 4f,
                t => be.AvgPool2x(g.Buffer, t, n * c, 2 * h, 2 * w)));
        return y;
    }

    /// <summary>2×2 average pool, stride 2: (N, C, H, W) → (N, C, H/2, W/2); H and W must be even.</summary>
    public static Tensor AvgPool2x(Tensor x)
    {
        const string name = "avg_pool2x";
        Check.Rank(name, x, 4);
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        // Odd sizes would silently drop the last row/column (PyTorch's floor mode); the UNet never
        // wants that, so it is an error here rather than a quiet shape change.
        Check.That(h % 2 == 0 && w % 2 == 0, name, $"H and W must be even, got {ShapeUtil.Str(x.Shape)}");
        var be = x.Backend;
        var y = Tensor.Empty(be, n, c, h / 2, w / 2);
        // 3 adds + 1 multiply per output = 1 FLOP per input element.
        using (Profiler.Op(name, x.Length, be)) be.AvgPool2x(x.Buffer, y.Buffer, n * c, h, w);
        if (Tape.Needs(x))
            // Each output is ¼ of 4 inputs: dx += upsample(dy)/4.
            Tape.Record(name, y, [x], g => AccumulateTemp(be, x.EnsureGrad().Buffer, x.Length, 0.25f,
                t => be.Upsample2x(g.Buffer, t, n * c, h / 2, w / 2)));
        return y;
    }
}
