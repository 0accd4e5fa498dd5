using Ddsm.Engine.Optim;

namespace Ddsm.StepAdaptive;

/// <summary>One channel space as <see cref="ChannelPermutation.Spaces"/> lists it.</summary>
/// <param name="Constraint">The allowed permutations in <see cref="PermutationTree.Describe"/> notation.</param>
/// <param name="Norms">GroupNorm layers that read the space (":k" = as part k of a concatenation).</param>
public sealed record SpaceInfo(string Name, int Size, int ChannelsPerElement, string Constraint,
                               IReadOnlyList<string> Norms);

/// <summary>
/// Per space, new position p takes old position Perm[p]. <see cref="Widths"/> are the widths whose
/// function the plan preserves exactly (the full width only, or every allowed width).
/// </summary>
public sealed record PermutationPlan(IReadOnlyDictionary<string, int[]> Perms, IReadOnlyList<double> Widths);

/// <summary>
/// Function-preserving channel permutation of a <see cref="SlimUNet"/> (for importance pruning of the
/// slimmable prefix): every space of <see cref="ChannelGraph"/> gets one permutation, applied to every
/// row/column that indexes it.
///
/// Exact constraint, per space π and per preserved width w (a plan keeps the function at all of them):
/// (1) prefix: π maps the active prefix [0, round(C·w)) onto itself;
/// (2) GroupNorm: for every GroupNorm reading the space (alone, or as part k of a skip concatenation), at
///     width w its input is the concatenation of the parts' active prefixes, cut into G equal contiguous
///     groups; π must map each group lying wholly inside this space onto such a group (GroupNorm treats
///     groups alike and γ/β travel with their channels), and each group straddling into the other
///     concatenated part onto itself;
/// (3) concat shift: a slimmed layer over a concatenation indexes weight columns and γ/β by position in the
///     ACTIVE concatenation, so at w &lt; 1 the skip part's channel p uses position round(C_h·w) + p, which
///     at full width belongs to channel round(C_h·w) + p of the first part. Those channels of both spaces are
///     pinned (π(p) = p) for every preserved w whose shift is non-zero.
/// At the full width only, (1) and (3) are void and (2) lets whole groups trade places wherever all
/// GroupNorms reading the space agree (e.g. hidden spaces: any permutation of the G groups and within each);
/// at all widths, (1)+(2) nest groups of sizes C·w/G inside prefixes, so only blocks aligned with the groups
/// of every width can move, and (3) pins every skip channel active at some w &lt; 1.
/// <see cref="PermutationTree"/> generates permutations satisfying all of these (conservatively where the
/// constraints do not nest). Attention heads are permuted as whole units (their 3d qkv rows in ADM's legacy
/// [q,k,v]-per-head layout and their d proj_out columns), subject to (1) on heads; channels within a head are
/// left in place.
/// </summary>
public static class ChannelPermutation
{
    /// <summary>Widths a plan preserves: just the largest (default) or all allowed.</summary>
    public static double[] PreservedWidths(UNetConfig cfg, bool allWidths) =>
        allWidths ? cfg.Widths.ToArray() : [cfg.MaxWidth];

    public static IReadOnlyList<SpaceInfo> Spaces(SlimUNet model, bool allWidths = false)
    {
        var g = Graph(model);
        var widths = PreservedWidths(model.Config, allWidths);
        return g.Spaces.Select(s =>
            new SpaceInfo(s.Name, s.Size, s.ChannelsPerElement, Tree(s, model.Config, widths).Describe(),
                          s.Norms.Select(n => n.Parts.Length > 1 ? $"{n.Layer}:{n.PartIndex}" : n.Layer).ToList()))
                              .ToList();
    }

    /// <summary>The allowed-permutation tree of every space, by name.</summary>
    public static IReadOnlyDictionary<string, PermutationTree> Trees(SlimUNet model, bool allWidths = false)
    {
        var widths = PreservedWidths(model.Config, allWidths);
        return Graph(model).Spaces.ToDictionary(s => s.Name, s => Tree(s, model.Config, widths));
    }

    /// <summary>
    /// Orders every space by descending importance within what preserves the function at the
    /// preserved widths (so the prefix a narrow width keeps holds the most important blocks allowed).
    /// </summary>
    public static PermutationPlan Compute(SlimUNet model, ImportanceScores scores, bool allWidths = false)
    {
        var perms = new Dictionary<string, int[]>();
        foreach (var (name, tree) in Trees(model, allWidths))
        {
            if (!scores.BySpace.TryGetValue(name, out var s) || s.Length != tree.Length)
                throw new ArgumentException($"channel permutation: no scores of length {tree.Length} for space {name}");
            perms[name] = tree.Order(s);
        }
        return new PermutationPlan(perms, PreservedWidths(model.Config, allWidths));
    }

    /// <summary>A uniformly random choice at every level of every space's tree (for tests).</summary>
    public static PermutationPlan Random(SlimUNet model, ulong seed, bool allWidths = false)
    {
        var rng = new Rng(seed);
        var perms = Trees(model, allWidths).ToDictionary(kv => kv.Key, kv => kv.Value.Order(null, rng));
        return new PermutationPlan(perms, PreservedWidths(model.Config, allWidths));
    }

    /// <summary>
    /// Permutes the model's parameters in place, and the same way the EMA shadows and Adam moments
    /// of those parameters when given (so training and sampling continue in the permuted basis).
    /// </summary>
    public static void Apply(SlimUNet model, PermutationPlan plan, Ema? ema = null, Adam? adam = null)
    {
        var g = Graph(model);
        var byParam = new Dictionary<string, List<(SpaceUse Use, int[] Perm)>>();
        foreach (var s in g.Spaces)
        {
            if (!plan.Perms.TryGetValue(s.Name, out var perm)) continue;
            CheckPerm(s, perm);
            foreach (var u in s.Uses)
            {
                if (!byParam.TryGetValue(u.Param, out var list)) byParam[u.Param] = list = new();
                list.Add((u, perm));
            }
        }
        var unknown = plan.Perms.Keys.Except(g.Spaces.Select(s => s.Name)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"channel permutation: unknown spaces {string.Join(", ", unknown)}");

        var companions = new Dictionary<Tensor, List<Tensor>>(ReferenceEqualityComparer.Instance);
        if (ema is not null)
            for (int i = 0; i < ema.Parameters.Count; i++) Companions(companions, ema.Parameters[i]).Add(ema.Shadow[i]);
        if (adam is not null)
            foreach (var (p, m, v) in adam.State)
            {
                Companions(companions, p).Add(m);
                Companions(companions, p).Add(v);
            }

        foreach (var (name, p) in model.NamedParameters())
        {
            if (!byParam.TryGetValue(name, out var uses)) continue;
            var targets = new List<Tensor> { p };
            if (companions.TryGetValue(p, out var extra)) targets.AddRange(extra);
            foreach (var t in targets)
            {
                var a = t.ToArray();
                foreach (var (u, perm) in uses) a = Permute(a, t.Shape, u, perm);
                t.CopyFrom(a);
            }
        }
    }

    private static List<Tensor> Companions(Dictionary<Tensor, List<Tensor>> d, Tensor p)
    {
        if (!d.TryGetValue(p, out var l)) d[p] = l = new();
        return l;
    }

    private static void CheckPerm(ChannelSpace s, int[] perm)
    {
        if (perm.Length != s.Size)
            throw new ArgumentException(
                $"channel permutation: space {s.Name} has {s.Size} elements, plan {perm.Length}");
        var seen = new bool[perm.Length];
        foreach (var v in perm)
        {
            if ((uint)v >= (uint)perm.Length || seen[v])
                throw new ArgumentException($"channel permutation: plan for {s.Name} is not a permutation");
            seen[v] = true;
        }
    }

    /// <summary>New index Offset + p·Unit + r along the axis takes old index Offset + perm[p]·Unit + r.</summary>
    private static float[] Permute(float[] a, int[] shape, SpaceUse u, int[] perm)
    {
        int axis = u.Axis == SpaceAxis.Rows ? 0 : 1;
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        int n = shape[axis];
        var r = (float[])a.Clone();
        for (long o = 0; o < outer; o++)
            for (int p = 0; p < perm.Length; p++)
                for (int k = 0; k < u.Unit; k++)
                {
                    long dst = (o * n + u.Offset + (long)p * u.Unit + k) * inner,
                         src = (o * n + u.Offset + (long)perm[p] * u.Unit + k) * inner;
                    Array.Copy(a, src, r, dst, inner);
                }
        return r;
    }

    internal static ChannelGraph Graph(SlimUNet model)
    {
        var g = ChannelGraph.Build(model.Config);
        g.CheckAgainst(model);
        return g;
    }

    internal static PermutationTree Tree(ChannelSpace s, UNetConfig cfg, IReadOnlyList<double> widths) =>
        PermutationTree.Build(0, s.Size, PermutationTree.Views(s, cfg, widths));
}
