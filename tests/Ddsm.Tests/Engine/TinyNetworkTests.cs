using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Engine.Nn;
using Ddsm.Engine.Optim;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The engine end to end: conv → GroupNorm+SiLU → attention → conv, trained with Adam on a fixed
/// random regression target, must cut its loss by 10× in a few hundred steps.
/// </summary>
public class TinyNetworkTests
{
    private sealed class TinyNet : Module
    {
        private readonly Tensor _w1, _b1, _g, _beta, _wqkv, _bqkv, _w2, _b2;
        public TinyNet(Backend be, Rng r) : base(be)
        {
            _w1 = Param("conv1_weight", [16, 2, 3, 3], Init.DefaultWeight(r));
            _b1 = Param("conv1_bias", [16], Init.DefaultBias(r, 18));
            _g = Param("norm_weight", [16], Init.Ones);
            _beta = Param("norm_bias", [16], Init.Zeros);
            _wqkv = Param("qkv_weight", [48, 16, 1, 1], Init.DefaultWeight(r));
            _bqkv = Param("qkv_bias", [48], Init.DefaultBias(r, 16));
            _w2 = Param("conv2_weight", [2, 16, 3, 3], Init.DefaultWeight(r));
            _b2 = Param("conv2_bias", [2], Init.DefaultBias(r, 144));
        }

        public Tensor Forward(Tensor x)
        {
            int n = x.Shape[0], h = x.Shape[2], w = x.Shape[3];
            var a = F.Conv2d(x, _w1, _b1, 16);
            a = F.GroupNorm(a, _g, _beta, groups: 4, silu: true);
            var qkv = F.Conv2d(a, _wqkv, _bqkv, 48);
            var att = F.Attention(qkv.Reshape(n, 48, h * w), headChannels: 8).Reshape(n, 16, h, w);
            return F.Conv2d(F.Add(a, att), _w2, _b2, 2);
        }
    }

    [Test]
    public void LearnsARandomRegressionTargetTenfold()
    {
        var be = CpuBackend.Instance;
        var r = new Rng(7);
        using var net = new TinyNet(be, r);
        var xs = new float[4 * 2 * 6 * 6]; r.FillNormal(xs);
        var ys = new float[4 * 2 * 6 * 6]; r.FillNormal(ys, 0.5f);
        using var x = Tensor.FromArray(be, xs, 4, 2, 6, 6);
        using var y = Tensor.FromArray(be, ys, 4, 2, 6, 6);
        using var opt = new Adam(net.Parameters(), new AdamOptions(Lr: 1e-2f, ClipNorm: 1f, WarmupSteps: 10));
        double first = 0, last = 0;
        for (int step = 0; step < 300; step++)
        {
            using var scope = new TensorScope();
            var loss = F.MseLoss(net.Forward(x), y);
            Tape.Backward(loss);
            opt.Step();
            opt.ZeroGrad();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        TestContext.Out.WriteLine($"loss {first:F4} -> {last:F5}");
        Assert.That(last, Is.LessThan(first / 10), $"loss {first} -> {last}");
    }

    [Test]
    public void OpsOnDifferentDevicesAreRejected()
    {
        var other = new CpuBackend();
        using var scope = new TensorScope();
        var x = Tensor.Zeros(CpuBackend.Instance, 1, 2, 4, 4);
        var w = Tensor.Zeros(other, 4, 2, 3, 3);
        var ex = Assert.Throws<ArgumentException>(() => F.Conv2d(x, w, null, 4));
        Assert.That(ex!.Message, Does.Contain("conv2d"));
    }
}
