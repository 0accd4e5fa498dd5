using Ddsm.Engine;
using Ddsm.Engine.Optim;
using Ddsm.Model;
using Ddsm.StepAdaptive;
using Ddsm.Tests.Model;
using static Ddsm.Tests.StepAdaptive.StepAdaptiveTestUtil;

namespace Ddsm.Tests.StepAdaptive;

public class ChannelPermutationTests
{
    /// <summary>
    /// "test": SlimUNetTests' config (widths ½, 1; concat GroupNorms of 48 channels whose groups of 12
    /// straddle the two concatenated streams). "three-widths" adds ¾ (groups of 3 and 6 at ¾).
    /// "no-scale-shift" adds the embedding before the norm instead of scale-shift.
    /// </summary>
    internal static UNetConfig Cfg(string variant) => variant switch
    {
        "test" => SlimUNetTests.TestConfig,
        "three-widths" => SlimUNetTests.TestConfig with { Widths = [0.5, 0.75, 1.0] },
        "no-scale-shift" => SlimUNetTests.TestConfig with { ScaleShiftNorm = false },
        // The CIFAR-10 and CelebA presets' layouts (4 levels, 2 or 3 res blocks, attention at one or two
        // resolutions, widths k/8) shrunk to 16×16 images, 32 channels, groups of 4 and heads of 8.
        "cifar-like" =>
            UNetConfig.Cifar10 with { ImageSize = 16, ModelChannels = 32, Groups = 4, HeadChannels = 8,
                                      AttentionResolutions = [8] },
        "celeba-like" =>
            UNetConfig.Celeba64 with { ImageSize = 16, ModelChannels = 32, Groups = 4, HeadChannels = 8,
                                       AttentionResolutions = [8, 4] },
        _ => throw new ArgumentException(variant),
    };

    private const double Tol = 1e-5; // relative: max|Δε̂| / max|ε̂|; reordered float sums differ by ~1e-7

    [TestCase("test")]
    [TestCase("three-widths")]
    [TestCase("no-scale-shift")]
    [TestCase("cifar-like")]
    [TestCase("celeba-like")]
    public void RandomFullWidthPlanKeepsTheFullWidthFunction(string variant)
    {
        var cfg = Cfg(variant);
        using var m = new SlimUNet(Cpu, cfg, 1);
        Randomise(m, 2);
        var full = Forward(m, 1.0, 3);
        var narrow = Forward(m, cfg.MinWidth, 3);
        var plan = ChannelPermutation.Random(m, 4);
        Assert.That(plan.IsIdentity(), Is.False);
        ChannelPermutation.Apply(m, plan);
        Assert.That(RelDiff(full, Forward(m, 1.0, 3)), Is.LessThan(Tol));
        // A full-width plan moves whole groups across the narrow prefix: the narrow model is another
        // one (which is what importance ordering exploits).
        Assert.That(RelDiff(narrow, Forward(m, cfg.MinWidth, 3)), Is.GreaterThan(1e-3));
    }

    /// <summary>
    /// Plans restricted to the all-width constraint keep the function at every allowed width: ½ and 1;
    /// ½, ¾ and 1; and k/8 for k = 2..8 in the cifar/celeba-like layouts.
    /// </summary>
    [TestCase("test")]
    [TestCase("three-widths")]
    [TestCase("no-scale-shift")]
    [TestCase("cifar-like")]
    [TestCase("celeba-like")]
    public void AllWidthPlanKeepsEveryWidthsFunction(string variant)
    {
        var cfg = Cfg(variant);
        using var m = new SlimUNet(Cpu, cfg, 1);
        Randomise(m, 2);
        var before = cfg.Widths.Select(w => Forward(m, w, 5)).ToArray();
        var plan = ChannelPermutation.Random(m, 6, allWidths: true);
        Assert.That(plan.IsIdentity(), Is.False);
        Assert.That(plan.Widths, Is.EqualTo(cfg.Widths));
        ChannelPermutation.Apply(m, plan);
        for (int i = 0; i < cfg.Widths.Length; i++)
            Assert.That(RelDiff(before[i], Forward(m, cfg.Widths[i], 5)), Is.LessThan(Tol), $"width {cfg.Widths[i]}");
    }

    /// <summary>
    /// The equality check above is sensitive: moving one channel across a GroupNorm group changes ε̂.
    /// </summary>
    [Test]
    public void CrossingAGroupBoundaryChangesTheFunction()
    {
        using var m = new SlimUNet(Cpu, Cfg("test"), 1);
        Randomise(m, 2);
        var before = Forward(m, 1.0, 3);
        var plan = ChannelPermutation.Random(m, 0);
        var perms = plan.Perms.ToDictionary(kv => kv.Key, kv => Enumerable.Range(0, kv.Value.Length).ToArray());
        // input_blocks.1.0's hidden space: 16 channels in 4 groups of 4; swap channel 0 (group 0) with 4 (group 1).
        perms["input_blocks.1.0:hidden"][0] = 4;
        perms["input_blocks.1.0:hidden"][4] = 0;
        ChannelPermutation.Apply(m, new PermutationPlan(perms, [1.0]));
        Assert.That(RelDiff(before, Forward(m, 1.0, 3)), Is.GreaterThan(1e-3));
    }

    [Test]
    public void PlanMovesWeightsInEverySpace()
    {
        using var m = new SlimUNet(Cpu, Cfg("test"), 1);
        Randomise(m, 2);
        var before = m.StateDict();
        var plan = ChannelPermutation.Random(m, 7);
        foreach (var (name, perm) in plan.Perms)
            Assert.That(perm, Is.Not.EqualTo(Enumerable.Range(0, perm.Length).ToArray()), name);
        ChannelPermutation.Apply(m, plan);
        long moved = 0, total = 0;
        foreach (var (name, p) in m.NamedParameters())
        {
            var a = p.ToArray();
            moved += a.Where((v, i) => v != before[name][i]).Count();
            total += a.Length;
            Assert.That(a.Order(), Is.EqualTo(before[name].Order()), $"{name} holds the same values, reordered");
        }
        TestContext.Out.WriteLine($"moved {moved} of {total} parameter elements");
        Assert.That((double)moved / total, Is.GreaterThan(0.8));
    }

    [Test]
    public void ApplyPermutesEmaShadowsAndAdamMomentsAlike()
    {
        using var m = new SlimUNet(Cpu, Cfg("test"), 1);
        Randomise(m, 2);
        using var ema = new Ema(m.Parameters());
        using var adam = new Adam(m.Parameters());
        foreach (var (p, mo, v) in adam.State)
        {
            mo.CopyFrom(p.ToArray());
            v.CopyFrom(p.ToArray().Select(x => 2 * x).ToArray());
        }
        var before = m.Parameters().Select(p => p.ToArray()).ToList();
        ChannelPermutation.Apply(m, ChannelPermutation.Random(m, 8), ema, adam);
        var ps = m.Parameters();
        Assert.That(ps.Where((p, i) => !p.ToArray().SequenceEqual(before[i])).Count(), Is.GreaterThan(ps.Count / 2));
        for (int i = 0; i < ps.Count; i++)
        {
            var a = ps[i].ToArray();
            Assert.That(ema.Shadow[i].ToArray(), Is.EqualTo(a), ps[i].Name);
            Assert.That(adam.State[i].M.ToArray(), Is.EqualTo(a), ps[i].Name);
            Assert.That(adam.State[i].V.ToArray(), Is.EqualTo(a.Select(x => 2 * x).ToArray()), ps[i].Name);
        }
    }

    /// <summary>
    /// The derived constraints of the fmnist32 supernet (64 channels, 16 groups, decoder concats of
    /// 128+64 and 64+64 and 128+128, widths k/4) in PermutationTree notation.
    /// </summary>
    [Test]
    public void DerivedConstraintsOfFmnist32()
    {
        using var m = new SlimUNet(Cpu, UNetConfig.Fmnist32, 0);
        var full = ChannelPermutation.Spaces(m).ToDictionary(s => s.Name);
        var all = ChannelPermutation.Spaces(m, allWidths: true).ToDictionary(s => s.Name);
        foreach (var s in full.Values)
            TestContext.Out.WriteLine($"{s.Name} ({s.Size}): full {s.Constraint} | all widths " +
                                      $"{all[s.Name].Constraint} | norms {string.Join(" ", s.Norms)}");
        // Hidden space: only its own GroupNorm (groups of 4) — any group to any group, any order inside.
        Assert.That(full["input_blocks.1.0:hidden"].Constraint, Is.EqualTo("16⇄[4]"));
        // …at widths ¼..1 the groups are 1, 2, 3, 4 wide inside prefixes of 16, 32, 48, 64: a block moves only
        // where it is a whole group (or inside one) at every width, e.g. channels 0 and 1, never past 16/32/48.
        Assert.That(all["input_blocks.1.0:hidden"].Constraint, Does.StartWith("2⇄[1]+2×[1]+").And.EndWith("+4⇄[4]"));
        // The 64-channel top stream: read in groups of 4 (its blocks), 8 (concat 64+64 at offset 64) and
        // 12 (concat 128+64 at offset 128: [0,4) straddles into the upsampled stream, so it stays). [16,40)
        // and [40,64) are aligned in all three and trade places; inside them 4-groups that share their
        // 8-group and 12-group trade places.
        Assert.That(full["input_blocks.0:out"].Constraint, Is.EqualTo("2×[4]+2⇄[4]+2⇄(2⇄[4]+2×[4]+2⇄[4])"));
        Assert.That(full["input_blocks.0:out"].Norms, Does.Contain("output_blocks.6.0.in_layers.0:1"));
        // At widths below 1 a skip's channels use the concat weight columns at shifted positions, so every
        // skip channel active at some width < 1 (the first 48, at ¾) is pinned; [48, 64) keeps what full width allows.
        Assert.That(all["input_blocks.0:out"].Constraint, Is.EqualTo("48×[1]+2×[4]+2⇄[4]"));
        // Heads and the time embedding have no GroupNorm: free at full width, nested prefixes at all widths.
        Assert.That(full["middle_block.1:heads"].Constraint, Is.EqualTo("[4]"));
        Assert.That(full["time_embed.2:out"].Constraint, Is.EqualTo("[256]"));
        Assert.That(all["time_embed.2:out"].Constraint, Is.EqualTo("4×[64]"));
    }

    [Test]
    public void BadPlansAreRejected()
    {
        using var m = new SlimUNet(Cpu, Cfg("test"), 1);
        var good = ChannelPermutation.Random(m, 1).Perms;
        var shortPlan = good.ToDictionary(kv => kv.Key, kv => kv.Key == "time_embed.0:out" ? kv.Value[1..] : kv.Value);
        Assert.That(Assert.Throws<ArgumentException>(() =>
            ChannelPermutation.Apply(m, new PermutationPlan(shortPlan, [1.0])))!.Message,
            Does.Contain("time_embed.0:out"));
        var dup = good.ToDictionary(kv => kv.Key,
                                    kv => kv.Key == "time_embed.0:out" ? kv.Value.Select(_ => 0).ToArray() : kv.Value);
        Assert.That(Assert.Throws<ArgumentException>(() =>
            ChannelPermutation.Apply(m, new PermutationPlan(dup, [1.0])))!.Message, Does.Contain("not a permutation"));
        var unknown = new Dictionary<string, int[]>(good) { ["nope"] = [0] };
        Assert.That(Assert.Throws<ArgumentException>(() =>
            ChannelPermutation.Apply(m, new PermutationPlan(unknown, [1.0])))!.Message, Does.Contain("nope"));
    }
}
