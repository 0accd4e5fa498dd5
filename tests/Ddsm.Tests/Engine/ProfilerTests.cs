using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

[NonParallelizable]
public class ProfilerTests
{
    [Test]
    public void NestedTimersReportSelfTimeAndCountFlops()
    {
        var be = CpuBackend.Instance;
        Profiler.Reset();
        Profiler.Enabled = true;
        try
        {
            using (Profiler.Op("outer", 0, be))
            {
                Thread.Sleep(30);
                using (Profiler.Op("inner", 1_000_000, be)) Thread.Sleep(60);
            }
        }
        finally { Profiler.Enabled = false; }
        var s = Profiler.Snapshot();
        // Self time: outer ≈ 30 ms (not 90), inner ≈ 60 ms. Sleep overshoots, never undershoots.
        Assert.That(s["inner"].Ms, Is.GreaterThanOrEqualTo(59).And.LessThan(200));
        Assert.That(s["outer"].Ms, Is.GreaterThanOrEqualTo(29).And.LessThan(s["inner"].Ms));
        Assert.That(s["inner"].Flops, Is.EqualTo(1_000_000));
        Assert.That(Profiler.Report(), Does.Contain("inner").And.Contain("outer").And.Contain("total"));
    }

    [Test]
    public void FlopCounterSeparatesForwardAndBackward()
    {
        var be = CpuBackend.Instance;
        var w = Tensor.Parameter(be, "w", [1f, 2f, 3f, 4f], 2, 2);
        try
        {
            using var c = new FlopCounter();
            using (new TensorScope())
            {
                var y = F.MatMul(w, w);                         // 2·2·2·2 = 16 FLOPs
                Tape.Backward(F.Sum(y));                        // sum: 4 FLOPs forward
            }
            Assert.That(c.ByOp["matmul"], Is.EqualTo(16));
            Assert.That(c.Forward, Is.EqualTo(16 + 4));
            Assert.That(c.Backward, Is.EqualTo(32), "two GEMMs of the same size in backward");
        }
        finally { w.Dispose(); }
    }
}
