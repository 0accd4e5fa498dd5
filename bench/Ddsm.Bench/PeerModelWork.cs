using System.Text.Json.Nodes;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Engine.Optim;
using Ddsm.IO;
using Ddsm.Model;

namespace Ddsm.Bench;

/// <summary>
/// A preset's UNet (seeded weights) with one batch of inputs: x_t, ε and integer timesteps drawn once. When
/// the spec names a "weights" path, the weights and inputs are written there (safetensors: the parameters
/// under their names, the inputs as peer.x / peer.eps / peer.t, the config as metadata) for PyTorch to load,
/// so both sides run the same model on the same batch. Info carries a checksum of ε̂ at the first width in
/// eval mode, which the driver compares with PyTorch's.
/// </summary>
internal abstract class ModelWork : IPeerWork
{
    protected readonly SlimUNet Model;
    protected readonly Tensor X, Eps, T;
    protected readonly double[] Widths;
    public JsonObject Info { get; } = new();

    protected ModelWork(CpuBackend be, JsonObject s)
    {
        var cfg = UNetConfig.Preset((string?)s["preset"] ?? throw new ArgumentException("spec needs 'preset'"));
        int batch = PeerWork.Int(s, "batch");
        Widths = s["widths"]?.AsArray().Select(v => (double)v!).ToArray()
                 ?? throw new ArgumentException("spec needs 'widths'");
        Model = new SlimUNet(be, cfg, (ulong?)s["seed"] ?? 1);
        var rng = new Rng(7);
        // The zero-initialised output convs would make ε̂ ≡ 0 and the checksum prove nothing: give them small
        // values (the arithmetic, and so the timing, does not depend on the values).
        foreach (var p in Model.Parameters().Where(p => p.ToArray().All(v => v == 0f)))
        {
            var a = new float[p.Length];
            rng.FillNormal(a, 0.02f);
            p.CopyFrom(a);
        }
        int[] shape = [batch, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize];
        X = PeerWork.Randn(be, rng, shape);
        Eps = PeerWork.Randn(be, rng, shape);
        var ts = Enumerable.Range(0, batch).Select(_ => (float)rng.NextInt(1000)).ToArray();
        using (TensorScope.Suspend()) T = Tensor.FromArray(be, ts, batch);
        if ((string?)s["weights"] is { } path) Write(path, cfg);
        Info["params"] = Model.ParameterCount;
        Info["forward_gflops"] = Widths.Sum(w => UNetFlops.Forward(cfg, w).Total) * batch / 1e9;
        Info["checksum"] = Checksum();
    }

    private void Write(string path, UNetConfig cfg)
    {
        static SafeTensor Of(string name, Tensor t) =>
            SafeTensor.F32(name, t.ToArray(), t.Shape.Select(d => (long)d).ToArray());
        var tensors = Model.NamedParameters().Select(p => Of(p.Name, p.Param)).ToList();
        tensors.AddRange([Of("peer.x", X), Of("peer.eps", Eps), Of("peer.t", T)]);
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["config"] = cfg.ToJson() });
    }

    /// <summary>[mean ε̂, mean |ε̂|] at the first width, eval mode (no dropout).</summary>
    private JsonArray Checksum()
    {
        using var scope = new TensorScope();
        using var noGrad = Tape.NoGrad();
        var e = Model.Forward(X, T, Widths[0]).ToArray();
        return new JsonArray(e.Average(v => (double)v), e.Average(v => Math.Abs((double)v)));
    }

    public abstract void Run();

    public virtual void Dispose()
    {
        foreach (var t in new[] { X, Eps, T }) t.Dispose();
        Model.Dispose();
    }
}

/// <summary>sample_fwd: one UNet forward at one width, no gradients (one denoising step of a sampler).</summary>
internal sealed class SampleWork(CpuBackend be, JsonObject s) : ModelWork(be, s)
{
    public override void Run()
    {
        using var scope = new TensorScope();
        using var noGrad = Tape.NoGrad();
        Model.Forward(X, T, Widths[0]);
    }
}

/// <summary>
/// train_step: per width a training-mode forward (dropout on), ε-MSE and backward, gradients accumulating;
/// then one Adam step (lr 1e-4, no clipping or decay, as torch.optim.Adam's defaults) and zeroed gradients;
/// with "ema": true also an EMA update of the weights (the sandwich trainer's step).
/// </summary>
internal sealed class TrainWork : ModelWork
{
    private readonly Adam _adam;
    private readonly Ema? _ema;
    private ulong _dropoutSeed;

    public TrainWork(CpuBackend be, JsonObject s) : base(be, s)
    {
        _adam = new Adam(Model.Parameters(), new AdamOptions(1e-4f));
        if ((bool?)s["ema"] == true) _ema = new Ema(Model.Parameters());
    }

    public override void Run()
    {
        foreach (var w in Widths)
        {
            using var scope = new TensorScope();
            var loss = F.MseLoss(Model.Forward(X, T, w, training: true, dropoutSeed: ++_dropoutSeed), Eps);
            Tape.Backward(loss);
        }
        _adam.Step();
        _adam.ZeroGrad();
        _ema?.Update(0.999f);
    }

    public override void Dispose()
    {
        _adam.Dispose();
        _ema?.Dispose();
        base.Dispose();
    }
}
