using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Model;

/// <summary>Forward FLOPs of one UNet evaluation, by kind of op.</summary>
public readonly record struct FlopBreakdown(long Conv, long Linear, long Attention, long Norm, long Elementwise)
{
    public long Total => Conv + Linear + Attention + Norm + Elementwise;
    public static FlopBreakdown operator +(FlopBreakdown a, FlopBreakdown b) =>
        new(a.Conv + b.Conv, a.Linear + b.Linear, a.Attention + b.Attention, a.Norm + b.Norm, a.Elementwise + b.Elementwise);
    public static FlopBreakdown operator *(long k, FlopBreakdown a) =>
        new(k * a.Conv, k * a.Linear, k * a.Attention, k * a.Norm, k * a.Elementwise);
}

/// <summary>
/// Analytic forward FLOPs of <see cref="SlimUNet"/> at a width, walking the same structure and using
/// the same per-op formulas the engine's ops report (a multiply-add is 2 FLOPs). Unlike the DDSM
/// release's constants this counts the attention matmuls (4·T²·C per image and block), the norms
/// and the element-wise work; a test pins it to the op counter on a real forward.
/// </summary>
public static class UNetFlops
{
    public static FlopBreakdown Forward(UNetConfig cfg, double width, int batch = 1)
    {
        cfg.CheckWidth(width);
        long n = batch;
        int Ch(int c) => cfg.Channels(c, width);
        int ch = cfg.ModelChannels, embMax = cfg.TimeEmbedChannels, e = Ch(embMax);
        long conv = 0, lin = 0, att = 0, norm = 0, ew = 0;

        // time embedding: sinusoid, linear, SiLU, linear, and SiLU(emb) shared by the ResBlocks
        ew += 2 * n * ch;
        lin += 2 * n * ch * e + n * e;
        ew += 4 * n * e;
        lin += 2 * n * (long)e * e + n * e;
        if (cfg.NumClasses > 0)
        {
            lin += LabelEmbedding.Flops(cfg.NumClasses, batch, e);   // one-hot GEMM
            ew += n * e;                                                // emb + label_emb(y)
        }
        ew += 4 * n * e;

        void Conv(long cin, long cout, long pixelsOut, int k) => conv += 2 * n * cout * pixelsOut * cin * k * k;
        void Res(int inMax, int outMax, int cin, long s)
        {
            int cout = Ch(outMax);
            norm += 14 * n * cin * s;                         // GN + SiLU
            Conv(cin, cout, s, 3);
            if (cfg.ScaleShiftNorm)
            {
                lin += 2 * n * (long)e * 2 * outMax + n * 2L * outMax;   // full 2·outMax projection, then sliced
                norm += 16 * n * cout * s;                    // GN + scale-shift + SiLU
            }
            else
            {
                lin += 2 * n * (long)e * cout + n * cout;
                ew += n * cout * s;                           // h + emb
                norm += 14 * n * cout * s;
            }
            Conv(cout, cout, s, 3);
            if (inMax != outMax) Conv(cin, cout, s, 1);
            ew += n * cout * s;                               // skip + h
        }
        void Attn(int cMax, long s)
        {
            int c = Ch(cMax);
            norm += 10 * n * c * s;
            Conv(c, 3 * c, s, 1);
            att += 4 * n * s * s * c;                         // QKᵀ and P·V over all heads
            Conv(c, c, s, 1);
            ew += n * c * s;
        }

        int res = cfg.ImageSize;
        long S() => (long)res * res;
        Conv(cfg.ImageChannels, Ch(ch), S(), 3);
        var skips = new Stack<int>();
        skips.Push(ch);
        int cur = ch;
        for (int level = 0; level < cfg.ChannelMult.Length; level++)
        {
            for (int r = 0; r < cfg.NumResBlocks; r++)
            {
                int outCh = ch * cfg.ChannelMult[level];
                Res(cur, outCh, Ch(cur), S());
                cur = outCh;
                if (cfg.AttentionResolutions.Contains(res)) Attn(cur, S());
                skips.Push(cur);
            }
            if (level != cfg.ChannelMult.Length - 1)
            {
                res /= 2;
                Conv(Ch(cur), Ch(cur), S(), 3);               // stride-2 conv, output pixels
                skips.Push(cur);
            }
        }
        Res(cur, cur, Ch(cur), S());
        Attn(cur, S());
        Res(cur, cur, Ch(cur), S());
        for (int level = cfg.ChannelMult.Length - 1; level >= 0; level--)
        {
            for (int i = 0; i <= cfg.NumResBlocks; i++)
            {
                int skip = skips.Pop(), outCh = ch * cfg.ChannelMult[level];
                Res(cur + skip, outCh, Ch(cur) + Ch(skip), S());   // concat: no FLOPs
                cur = outCh;
                if (cfg.AttentionResolutions.Contains(res)) Attn(cur, S());
                if (level > 0 && i == cfg.NumResBlocks)
                {
                    res *= 2;
                    Conv(Ch(cur), Ch(cur), S(), 3);           // nearest ×2 (no FLOPs), then conv
                }
            }
        }
        norm += 14 * n * Ch(cur) * S();
        Conv(Ch(cur), cfg.ImageChannels, S(), 3);
        return new FlopBreakdown(conv, lin, att, norm, ew);
    }

    /// <summary>
    /// Total forward FLOPs per image of sampling with a strategy: the sampler is run on a one-element
    /// stand-in whose "model" records the width of every call, so the count follows the sampler's
    /// real call pattern (Heun's two evaluations per step included). <paramref name="forwardsPerEvaluation"/>
    /// is 2 under classifier-free guidance (<see cref="GuidedDenoiser.ForwardsPerEvaluation"/>: the
    /// conditional and the unconditional half of one doubled batch); Evaluations stays the sampler's NFE.
    /// </summary>
    public static (double Gflops, int Evaluations) StrategyGflops(UNetConfig cfg, NoiseSchedule schedule, StepStrategy strategy,
        SamplerKind kind, SamplerOptions options, int forwardsPerEvaluation = 1)
    {
        if (forwardsPerEvaluation < 1) throw new ArgumentException($"forwards per evaluation must be ≥ 1, got {forwardsPerEvaluation}");
        var rec = new WidthRecorder();
        using (var scope = new TensorScope())
        {
            var x = Tensor.Zeros(CpuBackend.Instance, 1, 1, 1, 1);
            Sampler.Create(kind).Sample(rec, schedule, strategy, x, new Rng(0), options with { ClipDenoised = false });
        }
        var perWidth = new Dictionary<double, long>();
        long total = 0;
        foreach (var w in rec.Widths)
        {
            if (!perWidth.TryGetValue(w, out var f)) perWidth[w] = f = forwardsPerEvaluation * Forward(cfg, w).Total;
            total += f;
        }
        return (total / 1e9, rec.Widths.Count);
    }

    private sealed class WidthRecorder : IDenoiser
    {
        public List<double> Widths { get; } = new();
        public Backend Backend => CpuBackend.Instance;
        public Tensor PredictEps(Tensor x, double t, double width)
        {
            Widths.Add(width);
            return Tensor.Zeros(x.Backend, x.Shape);
        }
    }
}
