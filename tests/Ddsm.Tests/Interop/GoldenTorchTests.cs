using Ddsm.Diffusion;
using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.IO;
using Ddsm.Model;
using Ddsm.Training;

namespace Ddsm.Tests.Interop;

/// <summary>
/// llm.c's test_gpt2 for our UNet: each golden file holds a state written once by the PyTorch reference
/// (bench/pytorch/slim_unet.py): golden.safetensors a small class-conditional UNet with every block kind,
/// scale-shift norm and heads of 8 channels at three widths; golden-one-head.safetensors a smaller one built
/// like the DDSM release's (one head that shrinks with the width, no scale-shift). We load the weights and
/// check ε̂ at every width, the losses and every parameter gradient of one
/// sandwich step (widths 1, ½, ¾, gradients accumulated), and a 5-step DDIM trajectory whose width
/// changes along the way. Tolerances: |Δ| ≤ atol + rtol·|ref| element-wise, atol a fraction of the tensor's
/// largest |ref|; float32 reduction-order noise measured at most 1.2e-6 (ε̂), 4.3e-6 (gradients), 2.7e-6
/// (trajectory) of the largest |ref| and 1.1e-7 relative (losses), about 10× under these. A slicing bug is O(1).
/// </summary>
[TestFixture("golden.safetensors")]
[TestFixture("golden-one-head.safetensors")]
public class GoldenTorchTests(string fixture)
{
    private static readonly Backend Cpu = CpuBackend.Instance;
    private const double ForwardRtol = 1e-5, ForwardAtol = 1e-5;
    private const double GradRtol = 1e-4, GradAtol = 5e-5;
    private const double LossRtol = 1e-5;
    private const double TrajectoryRtol = 1e-5, TrajectoryAtol = 3e-5;

    private SafeTensorsFile _golden = null!;
    private SlimUNet _model = null!;
    private int[]? _labels;

    [OneTimeSetUp]
    public void Load()
    {
        _golden = TorchFixtures.Read(fixture);
        _model = new SlimUNet(Cpu, TorchFixtures.Config(_golden), 0);
        _model.LoadState(_model.NamedParameters().ToDictionary(p => p.Name, p => _golden["param." + p.Name].ToFloat()));
        _labels = _golden.Contains("labels") ? _golden["labels"].ToInt64().Select(v => (int)v).ToArray() : null;
    }

    [OneTimeTearDown]
    public void Dispose() => _model.Dispose();

    private Tensor In(string name) => TorchFixtures.Tensor(Cpu, _golden, name);

    [Test]
    public void EpsHatMatchesPyTorchAtEveryWidth()
    {
        foreach (var w in _model.Config.Widths)
        {
            using var scope = new TensorScope();
            using var _ = Tape.NoGrad();
            var eps = _model.Forward(In("pass.0.xt"), In("pass.0.t"), w, _labels);
            TorchFixtures.AssertClose(eps.ToArray(), _golden[$"eps_hat.{Key(w)}"].ToFloat(), $"ε̂ at width {w}",
                ForwardRtol, ForwardAtol);
        }
    }

    [Test]
    public void SandwichStepLossesAndEveryGradientMatchPyTorch()
    {
        var widths = System.Text.Json.JsonSerializer.Deserialize<double[]>(_golden.Metadata["pass_widths"])!;
        var wantLoss = _golden["loss"].ToFloat();
        _model.ZeroGrad();
        for (int p = 0; p < widths.Length; p++)
        {
            using var scope = new TensorScope();
            var (loss, value) = SandwichTrainer.WidthPassLoss(_model, In($"pass.{p}.xt"), In($"pass.{p}.eps"),
                In($"pass.{p}.t"), widths[p], _labels, dropoutSeed: 0, inplaceDistill: false);
            Assert.That(value, Is.EqualTo(wantLoss[p]).Within(LossRtol * wantLoss[p]),
                $"loss of pass {p} (width {widths[p]})");
            Tape.Backward(loss);
        }
        foreach (var (name, param) in _model.NamedParameters())
        {
            Assert.That(param.Grad, Is.Not.Null, $"{name} got no gradient");
            TorchFixtures.AssertClose(param.Grad!.ToArray(), _golden["grad." + name].ToFloat(), $"gradient of {name}",
                GradRtol, GradAtol);
        }
        _model.ZeroGrad();
    }

    [Test]
    public void DdimTrajectoryWithAWidthPerStepMatchesPyTorch()
    {
        var widths = System.Text.Json.JsonSerializer.Deserialize<double[]>(_golden.Metadata["ddim_widths"])!;
        int steps = int.Parse(_golden.Metadata["ddim_steps"], System.Globalization.CultureInfo.InvariantCulture);
        using var scope = new TensorScope();
        var x = In("ddim.x_T");
        var seen = new List<float[]>();
        Sampler.Create(SamplerKind.Ddim).Sample(_model, NoiseSchedule.Linear(1000), new StepStrategy(widths), x,
            new Rng(0), new SamplerOptions(steps), (_, _) => seen.Add(x.ToArray()));
        Assert.That(seen, Has.Count.EqualTo(steps));
        for (int i = 0; i < steps; i++)
            TorchFixtures.AssertClose(seen[i], _golden[$"ddim.step.{i}"].ToFloat(), $"DDIM step {i}",
                TrajectoryRtol, TrajectoryAtol);
    }

    /// <summary>Python's str(float) of a width: 0.5, 0.75, 1.0.</summary>
    private static string Key(double w) => w.ToString("0.0###", System.Globalization.CultureInfo.InvariantCulture);
}
