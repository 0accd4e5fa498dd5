using Ddsm.Engine;
using Ddsm.Search;

namespace Ddsm.Tests.Search;

public class GenomeTests
{
    private static readonly double[] Widths = [0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0];

    [Test]
    public void BlockGenesExpandToConsecutiveTimesteps()
    {
        // T = 10 in blocks of 4: genes cover t 0–3, 4–7, 8–9 (the last block short).
        Assert.That(Genome.GeneCount(10, 4), Is.EqualTo(3));
        var g = new Genome([6, 0, 3], 4);
        var s = g.ToStrategy(10, Widths);
        Assert.That(s.Widths, Is.EqualTo(new[] { 1.0, 1.0, 1.0, 1.0, 0.25, 0.25, 0.25, 0.25, 0.625, 0.625 }));
        Assert.Throws<ArgumentException>(() => g.ToStrategy(13, Widths), "3 genes of 4 cannot cover 13 steps");
        Assert.Throws<ArgumentException>(() => new Genome([7], 1).ToStrategy(1, Widths), "gene past the width list");
    }

    [Test]
    public void PerStepGenomeIsTheStrategyItself()
    {
        var rng = new Rng(5);
        var g = Genome.Random(rng, 50, Widths.Length, 1);
        var s = g.ToStrategy(50, Widths);
        for (int t = 0; t < 50; t++) Assert.That(s[t], Is.EqualTo(Widths[g.Genes[t]]));
        Assert.That(g.Genes.Distinct().Count(), Is.GreaterThan(3), "random genes use several widths");
    }

    [Test]
    public void KeyRoundTripsThroughParse()
    {
        var rng = new Rng(9);
        var g = Genome.Random(rng, 40, 30, 2);   // 30 widths: digits beyond 9 too
        var back = Genome.Parse(g.Key, 2);
        Assert.That(back.Genes, Is.EqualTo(g.Genes));
        Assert.That(back, Is.EqualTo(g));
        Assert.That(g.Key.Length, Is.EqualTo(40));
        Assert.That(Genome.Parse("0a", 1).Genes, Is.EqualTo(new[] { 0, 10 }));
        Assert.Throws<FormatException>(() => Genome.Parse("01-", 1));
        Assert.That(Genome.Uniform(2, 5, 1).Key, Is.EqualTo("22222"));
    }
}
