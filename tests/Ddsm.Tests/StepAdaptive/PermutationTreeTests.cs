using Ddsm.Engine;
using Ddsm.StepAdaptive;
using View = Ddsm.StepAdaptive.PermutationTree.View;

namespace Ddsm.Tests.StepAdaptive;

/// <summary>The tree's promise checked by brute force on random constraint sets, independent of any network.</summary>
public class PermutationTreeTests
{
    /// <summary>
    /// Random views like the UNet's: equal groups of a random size at a random offset (partial groups at
    /// the ends unique, as straddling groups are), a random active prefix, random pinned positions. Every
    /// ordering the tree generates must map each run of each view onto a run of the same kind (a unique
    /// kind: onto itself). Over 300 random cases, ~20 orderings each.
    /// </summary>
    [Test]
    public void EveryGeneratedOrderMapsRunsOntoRunsOfTheSameKind()
    {
        var rng = new Rng(17);
        int nontrivial = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            int n = 4 + rng.NextInt(45);
            var views = new List<View>();
            int nv = 1 + rng.NextInt(4);
            for (int v = 0; v < nv; v++)
            {
                int kind = rng.NextInt(4);
                var labels = new string[n];
                if (kind <= 1)
                {
                    int size = 1 + rng.NextInt(Math.Max(1, n / 2)), off = rng.NextInt(size);
                    for (int p = 0; p < n; p++)
                    {
                        int g = (p + off) / size;
                        bool whole = g * size - off >= 0 && (g + 1) * size - off <= n;
                        labels[p] = whole ? $"g#{g}" : $"s:{v}:{g}";
                    }
                }
                else if (kind == 2)
                {
                    int active = rng.NextInt(n + 1);
                    for (int p = 0; p < n; p++) labels[p] = p < active ? "a" : "x";
                }
                else
                    for (int p = 0; p < n; p++) labels[p] = rng.NextInt(5) == 0 ? $"p:{p}" : "f";
                views.Add(PermutationTree.FromLabels(labels));
            }
            var tree = PermutationTree.Build(0, n, views);
            for (int k = 0; k < 20; k++)
            {
                var perm = tree.Order(null, rng);
                Assert.That(perm.Order(), Is.EqualTo(Enumerable.Range(0, n)), "a permutation");
                if (!perm.SequenceEqual(Enumerable.Range(0, n))) nontrivial++;
                foreach (var view in views)
                    foreach (var run in view.Runs)
                    {
                        // Old positions of the run go to new positions {p : perm[p] ∈ run}.
                        var dest =
                            Enumerable.Range(0, n).Where(p => perm[p] >= run.Start && perm[p] < run.End).ToArray();
                        var target = view.Runs.FirstOrDefault(r => r.Start == dest[0] && r.End == dest[^1] + 1);
                        Assert.That(dest.Length == dest[^1] - dest[0] + 1 && target != default &&
                                    target.Kind == run.Kind, Is.True,
                            $"trial {trial}: run [{run.Start},{run.End}) {run.Kind} went to " +
                            $"{string.Join(",", dest)}; tree {tree.Describe()}");
                        if (view.Runs.Count(r => r.Kind == run.Kind) == 1) Assert.That(target, Is.EqualTo(run));
                    }
            }
        }
        Assert.That(nontrivial, Is.GreaterThan(3000), "the trees allow real permutations, not just the identity");
    }
}
