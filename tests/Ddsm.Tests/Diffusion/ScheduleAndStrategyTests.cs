using Ddsm.Diffusion;

namespace Ddsm.Tests.Diffusion;

public class ScheduleAndStrategyTests
{
    [Test]
    public void LinearScheduleMatchesDdpm()
    {
        var s = NoiseSchedule.Linear(1000);
        Assert.That(s.Betas[0], Is.EqualTo(1e-4).Within(1e-12));
        Assert.That(s.Betas[999], Is.EqualTo(0.02).Within(1e-12));
        // ᾱ_999 of DDPM's linear schedule is ≈ 4.04e-5.
        Assert.That(s.AlphaBars[999], Is.EqualTo(4.04e-5).Within(0.05e-5));
        for (int t = 1; t < 1000; t++) Assert.That(s.Snr(t), Is.LessThan(s.Snr(t - 1)));
    }

    [Test]
    public void SigmaToTInvertsAlphaBarAt()
    {
        var s = NoiseSchedule.Cosine(1000);
        foreach (var t in new[] { 0.0, 0.5, 10.25, 500.0, 998.75, 999.0 })
        {
            double ab = s.AlphaBarAt(t);
            Assert.That(s.SigmaToT(Math.Sqrt((1 - ab) / ab)), Is.EqualTo(t).Within(1e-6));
        }
        Assert.That(s.AlphaBarAt(300), Is.EqualTo(s.AlphaBars[300]).Within(1e-12));
    }

    [Test]
    public void StrategyParsesDdsmPlainListJsonAndUniform()
    {
        var plain = StepStrategy.FromText("0.5 0.5, 0.75\n1.0");
        Assert.That(plain.Widths, Is.EqualTo(new[] { 0.5, 0.5, 0.75, 1.0 }));
        var back = StepStrategy.FromText(plain.ToJson());
        Assert.That(back.Widths, Is.EqualTo(plain.Widths));
        Assert.That(StepStrategy.Parse("uniform:0.375", 7).Widths, Is.EqualTo(Enumerable.Repeat(0.375, 7)));
        Assert.Throws<FormatException>(() => StepStrategy.FromText("0.5 abc"));
        Assert.Throws<ArgumentException>(() => StepStrategy.FromText("0.5 1.5"));
        Assert.Throws<FormatException>(() => StepStrategy.FromText("{\"nope\": 1}"));
    }

    [Test]
    public void ResampleKeepsTheShape()
    {
        // DDSM CIFAR-10 shape: 0.5 for the noisiest 53 %, 0.75 next, 1.0 for the last 27 %.
        var w = Enumerable.Range(0, 1000).Select(t => t < 270 ? 1.0 : t < 470 ? 0.75 : 0.5).ToArray();
        var s = new StepStrategy(w).Resample(100);
        Assert.That(s.T, Is.EqualTo(100));
        Assert.That(s[0], Is.EqualTo(1.0));
        Assert.That(s[99], Is.EqualTo(0.5));
        Assert.That(s.Widths.Count(v => v == 1.0), Is.InRange(26, 28));
        Assert.That(s.Resample(1000).Widths.Count(v => v == 0.5), Is.InRange(520, 540));
    }
}
