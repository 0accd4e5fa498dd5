using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

public class AutogradTests
{
    private static readonly Backend Cpu = CpuBackend.Instance;

    [Test]
    public void GradientsAccumulateAcrossBackwardPasses()
    {
        var w = Tensor.Parameter(Cpu, "w", [1f, 2f, 3f], 3);
        try
        {
            for (int pass = 0; pass < 3; pass++)
            {
                using var scope = new TensorScope();
                Tape.Backward(F.Sum(F.Square(w)));   // d/dw Σw² = 2w
            }
            Assert.That(w.Grad!.ToArray(), Is.EqualTo(new[] { 6f, 12f, 18f }));
            w.ZeroGrad();
            Assert.That(w.Grad!.ToArray(), Is.EqualTo(new[] { 0f, 0f, 0f }));
        }
        finally { w.Dispose(); }
    }

    [Test]
    public void NoGradRecordsNothing()
    {
        var w = Tensor.Parameter(Cpu, "w", [1f, 2f], 2);
        using var scope = new TensorScope();
        Tensor y;
        using (Tape.NoGrad()) y = F.Sum(F.Square(w));
        Assert.That(y.RequiresGrad, Is.False);
        Assert.Throws<InvalidOperationException>(() => Tape.Backward(y));
        w.Dispose();
    }

    [Test]
    public void ScopeDisposesTemporariesButNotParametersOrEscapees()
    {
        var w = Tensor.Parameter(Cpu, "w", [1f, 2f], 2);
        Tensor kept, temp;
        using (new TensorScope())
        {
            temp = F.Square(w);
            kept = TensorScope.Escape(F.Add(w, w));
        }
        Assert.That(temp.IsDisposed, Is.True);
        Assert.That(kept.IsDisposed, Is.False);
        Assert.That(w.IsDisposed, Is.False);
        Assert.That(kept.ToArray(), Is.EqualTo(new[] { 2f, 4f }));
        kept.Dispose(); w.Dispose();
    }

    [Test]
    public void DiamondGraphSumsBothPaths()
    {
        var x = Tensor.Parameter(Cpu, "x", [0.5f, -1.5f], 2);
        using (new TensorScope())
        {
            var a = F.Square(x);               // x²
            var y = F.Sum(F.Mul(a, x));        // x³ through two paths into x
            Tape.Backward(y);
        }
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 3 * 0.25f, 3 * 2.25f }).Within(1e-6));
        x.Dispose();
    }

    [Test]
    public void UseAfterDisposeIsAClearError()
    {
        Tensor t;
        using (new TensorScope()) t = Tensor.Zeros(Cpu, 2);
        var ex = Assert.Throws<ObjectDisposedException>(() => t.ToArray());
        Assert.That(ex!.Message, Does.Contain("(2)"));
    }

    [Test]
    public void RngStateRoundTripsExactly()
    {
        var a = new Rng(42);
        a.NextNormal();                       // leaves a spare in the state
        var s = a.GetState();
        var x = Enumerable.Range(0, 5).Select(_ => a.NextNormal()).ToArray();
        var b = new Rng(7);
        b.SetState(s);
        var y = Enumerable.Range(0, 5).Select(_ => b.NextNormal()).ToArray();
        Assert.That(y, Is.EqualTo(x));
    }
}
