using System.Collections.Concurrent;

namespace Ddsm.Model;

/// <summary>Forward FLOPs of one UNet evaluation, by kind of op (a multiply-add is 2 FLOPs).</summary>
public readonly record struct FlopBreakdown(long Conv, long Linear, long Attention, long Norm, long Elementwise)
{
    public long Total => Conv + Linear + Attention + Norm + Elementwise;

    /// <summary>Sorts what a <see cref="FlopCounter"/> saw, by op name: the fused GroupNorm (with its SiLU and
    /// scale-shift) is Norm, the linears (the label embedding's one-hot GEMM too) Linear, the rest
    /// element-wise.</summary>
    public static FlopBreakdown FromOps(IReadOnlyDictionary<string, long> byOp)
    {
        long Get(string op) => byOp.GetValueOrDefault(op);
        long conv = Get("conv2d"), lin = Get("linear"), att = Get("attention"), norm = Get("group_norm");
        return new FlopBreakdown(conv, lin, att, norm, byOp.Values.Sum() - conv - lin - att - norm);
    }
}

/// <summary>
/// Forward FLOPs of <see cref="SlimUNet"/> at a width, from the model itself: its forward is run once (per
/// config, width and batch) on the <see cref="MetaBackend"/>, where every op checks its shapes and reports
/// its FLOPs but computes and stores nothing. So there is one description of the topology (the model's
/// constructor and forward) and the count cannot drift from it. Unlike the DDSM release's constants this
/// counts the attention matmuls (4·T²·C per image and block), the norms and the element-wise work.
/// </summary>
public static class UNetFlops
{
    private static readonly ConcurrentDictionary<string, Lazy<SlimUNet>> Models = new();
    private static readonly ConcurrentDictionary<(string Config, double Width, int Batch), FlopBreakdown> Counts =
        new();

    public static FlopBreakdown Forward(UNetConfig cfg, double width, int batch = 1)
    {
        width = cfg.CheckWidth(width);
        var json = cfg.ToJson();
        return Counts.GetOrAdd((json, width, batch), key =>
        {
            var model = Models.GetOrAdd(key.Config,
                                        _ =>
                                            new Lazy<SlimUNet>(() => new SlimUNet(MetaBackend.Instance, cfg, 0))).Value;
            var be = MetaBackend.Instance;
            using var scope = new TensorScope();
            using var counter = new FlopCounter(isolated: true);
            using (Tape.NoGrad())
                model.Forward(Tensor.Zeros(be, batch, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize),
                    Tensor.Zeros(be, batch), width);
            return FlopBreakdown.FromOps(counter.ByOp);
        });
    }
}
