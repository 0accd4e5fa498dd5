using System.Globalization;
using System.Xml.Linq;
using Ddsm.Diffusion;
using Ddsm.Search;

namespace Ddsm.Tests.Search;

public class SearchOutputTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Test]
    public void SvgIsWellFormedWithAxesTicksAndAStepPolyline()
    {
        // 3 runs of equal width → 3 horizontal segments of 2 vertices each.
        var s = new StepStrategy(
            [.. Enumerable.Repeat(0.25, 40), .. Enumerable.Repeat(1.0, 30), .. Enumerable.Repeat(0.5, 30)]);
        var doc = XDocument.Parse(StrategyPlot.ToSvg([("", s)], "CIFAR-10 <searched> & co"));
        Assert.That(doc.Root!.Name, Is.EqualTo(Svg + "svg"));
        var poly = doc.Descendants(Svg + "polyline").Single();
        var pts = poly.Attribute("points")!.Value.Split(' ')
            .Select(p => p.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.That(pts.Length, Is.EqualTo(6));
        // Same y within a run, x increasing, and width 1.0 drawn higher (smaller y) than 0.25.
        Assert.That(pts[0][1], Is.EqualTo(pts[1][1]));
        Assert.That(pts.Select(p => p[0]), Is.Ordered);
        Assert.That(pts[2][1], Is.LessThan(pts[0][1]));
        Assert.That(pts[4][1], Is.InRange(pts[2][1], pts[0][1]));
        var texts = doc.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.That(texts, Does.Contain("CIFAR-10 <searched> & co"), "title escaped and read back");
        Assert.That(texts, Does.Contain("0.5").And.Contain("1").And.Contain("0"), "width tick labels");
        Assert.That(texts, Does.Contain("100"), "timestep tick labels up to T");
        Assert.That(texts.Any(t => t.StartsWith("timestep")) && texts.Any(t => t.StartsWith("network width")), Is.True,
                    "axis titles");
        Assert.That(doc.Descendants(Svg + "g").Any(g => (string?)g.Attribute("class") == "legend"), Is.False,
                    "one unlabelled series: no legend");
    }

    [Test]
    public void OverlaidStrategiesGetALegend()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-plot-");
        try
        {
            string path = Path.Combine(dir.FullName, "cmp.svg");
            StrategyPlot.WriteSvg(path,
                                  [("uniform 1.0", StepStrategy.Uniform(1.0, 1000)),
                                   ("searched",
                                    new StepStrategy(
                                        [.. Enumerable.Range(0, 1000).Select(t => t < 300 ? 0.5 : 0.75)]))], "compare");
            var doc = XDocument.Load(path);
            Assert.That(doc.Descendants(Svg + "polyline").Count(), Is.EqualTo(2));
            var legend = doc.Descendants(Svg + "g").Single(g => (string?)g.Attribute("class") == "legend");
            Assert.That(legend.Descendants(Svg + "text").Select(t => t.Value),
                        Is.EqualTo(new[] { "uniform 1.0", "searched" }));
        }
        finally { dir.Delete(true); }
    }

    [Test]
    public void NiceTickStepsAre125()
    {
        Assert.That(StrategyPlot.NiceStep(1000, 8), Is.EqualTo(200));
        Assert.That(StrategyPlot.NiceStep(100, 8), Is.EqualTo(20));
        Assert.That(StrategyPlot.NiceStep(16, 8), Is.EqualTo(2));
        Assert.That(StrategyPlot.NiceStep(3, 8), Is.EqualTo(1), "never below one timestep");
    }

    [Test]
    public void ResultsHoldBestJsonAndParetoCsvColumns()
    {
        var dir = Directory.CreateTempSubdirectory("ddsm-search-out-");
        try
        {
            var obj = new SyntheticObjective(16, 42);
            var s = new EvolutionarySearch(new SearchOptions { T = 16, Widths = SyntheticObjective.Widths,
                                                               Generations = 3, MutationRate = 1.0 / 16, Seed = 2,
                                                               SaveEveryEvaluation = false }, obj);
            s.Run();
            s.WriteResults(dir.FullName);

            var best = StepStrategy.FromText(File.ReadAllText(Path.Combine(dir.FullName, "best.json")));
            Assert.That(best.Widths, Is.EqualTo(s.ToStrategy(s.Best().Genome).Widths));

            var lines = File.ReadAllLines(Path.Combine(dir.FullName, "pareto.csv"));
            Assert.That(lines[0], Is.EqualTo("genes,quality,cost,weighted_score"));
            var front = s.Front();
            Assert.That(lines.Length, Is.EqualTo(front.Count + 1));
            for (int i = 0; i < front.Count; i++)
            {
                var c = lines[i + 1].Split(',');
                Assert.That(c.Length, Is.EqualTo(4));
                Assert.That(c[0], Is.EqualTo(front[i].Genome.Key));
                double q = double.Parse(c[1], CultureInfo.InvariantCulture),
                       cost = double.Parse(c[2], CultureInfo.InvariantCulture);
                Assert.That(q, Is.EqualTo(front[i].Quality));   // round-trip format: exact
                Assert.That(cost, Is.EqualTo(front[i].Cost));
                Assert.That(double.Parse(c[3], CultureInfo.InvariantCulture), Is.EqualTo(q + 0.1 * cost));
            }
            Assert.That(front.Select(i => i.Cost), Is.Ordered, "front listed by cost");
            XDocument.Load(Path.Combine(dir.FullName, "best.svg"));
        }
        finally { dir.Delete(true); }
    }
}
