using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The backend's transfer counter counts, on the CPU backend too, every host round trip a device would
/// pay: copies in (FromArray, CopyFrom), copies out (ToArray, Item) and synchronisations; device work
/// (kernels, device copies, fills, the noise draw) counts nothing, and neither do the profiler's own waits.
/// </summary>
[NonParallelizable]
public class TransferCounterTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;

    [Test]
    public void HostRoundTripsAreCountedAndDeviceWorkIsNot()
    {
        using var scope = new TensorScope();
        var t0 = Cpu.Transfers;
        var a = Tensor.FromArray(Cpu, [1f, 2f, 3f], 3);
        a.CopyFrom([4f, 5f, 6f]);
        var d = Cpu.Transfers - t0;
        Assert.That((d.CopiesIn, d.CopiesOut, d.Syncs, d.FloatsIn), Is.EqualTo((2L, 0L, 0L, 6L)));

        t0 = Cpu.Transfers;
        _ = a.ToArray();
        _ = F.Sum(a).Item();
        Cpu.Synchronize();
        d = Cpu.Transfers - t0;
        Assert.That((d.CopiesIn, d.CopiesOut, d.Syncs, d.FloatsOut), Is.EqualTo((0L, 2L, 1L, 4L)));
        Assert.That(d.Total, Is.EqualTo(3));

        t0 = Cpu.Transfers;
        var b = Tensor.Full(Cpu, 2f, 3);
        var c = F.Mul(F.Add(a, b), a.Clone());
        new NoiseStream(1).Fill(c);
        Cpu.Unary(UnaryOp.ClampUnit, c.Buffer, c.Buffer, c.Length);
        Assert.That(Cpu.Transfers - t0, Is.EqualTo(default(TransferCounts)), "device work is not a transfer");
    }

    [Test]
    public void ProfilingWaitsAreNotCounted()
    {
        using var scope = new TensorScope();
        var a = Tensor.Full(Cpu, 1f, 8);
        bool was = Profiler.Enabled;
        Profiler.Enabled = true;
        try
        {
            var t0 = Cpu.Transfers;
            _ = F.Add(a, a);
            Assert.That(Cpu.Transfers - t0, Is.EqualTo(default(TransferCounts)));
        }
        finally { Profiler.Enabled = was; }
    }

    [Test]
    public void CrossEntropyOnDeviceLabelsReadsNothingBack()
    {
        using var scope = new TensorScope();
        var z = Tensor.FromArray(Cpu, [0.5f, -1f, 2f, 0f, 1f, 1f], 2, 3);
        z.RequiresGrad = true;
        var y = Tensor.FromArray(Cpu, [2f, 0f], 2);
        var t0 = Cpu.Transfers;
        var loss = F.CrossEntropy(z, y);
        Tape.Backward(loss);
        Assert.That(Cpu.Transfers - t0, Is.EqualTo(default(TransferCounts)), "forward and backward stay on the device");
        Assert.That(loss.Item(), Is.EqualTo(F.CrossEntropy(z, [2, 0]).Item()));
    }
}
