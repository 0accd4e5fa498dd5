namespace Ddsm.StepAdaptive;

/// <summary>
/// The permutations of one channel space that leave the network's function unchanged at a chosen set
/// of widths, as a tree. A node covers positions [Start, Start+Length); a leaf's positions may be
/// permuted freely; an internal node's children are contiguous blocks, and children of the same class
/// may be exchanged as rigid blocks (each keeping its own internal order, itself permutable by its
/// subtree). Every permutation generated this way is valid; see <see cref="Build"/> for why.
/// </summary>
public sealed class PermutationTree
{
    public int Start { get; }
    public int Length { get; }
    public IReadOnlyList<PermutationTree> Children { get; }
    /// <summary>Class id per child; equal ids = interchangeable blocks.</summary>
    public IReadOnlyList<int> ClassOf { get; }
    public bool IsLeaf => Children.Count == 0;

    private PermutationTree(int start, int length, List<PermutationTree> children, int[] classOf) =>
        (Start, Length, Children, ClassOf) = (start, length, children, classOf);

    /// <summary>
    /// A partition constraint on the space: contiguous runs covering [0, n). A permutation satisfies it
    /// when it maps every run onto a run of the same kind. Kinds: "g" a GroupNorm group wholly inside
    /// this space (any such group may become any other: GroupNorm treats them alike and its affine
    /// travels with the channels), "a"/"x" active/inactive channels at a width (slimming runs the
    /// prefix), "s:…" a group that straddles into another concatenated space or another part, "p:…" a
    /// channel pinned by a shifted concat position — both unique, so they map onto themselves — and "f"
    /// (not pinned: no constraint of its own).
    /// </summary>
    internal sealed record View(List<(int Start, int End, string Kind)> Runs)
    {
        public IEnumerable<int> Boundaries => Runs.Skip(1).Select(r => r.Start);
    }

    /// <summary>
    /// The views that a space must respect for its permutation to preserve the function at every width
    /// in <paramref name="widths"/>: for each width, the active prefix, and for every GroupNorm that reads
    /// the space (possibly as one part of a channel concatenation) its groups at that width.
    /// </summary>
    internal static List<View> Views(ChannelSpace s, UNetConfig cfg, IReadOnlyList<double> widths)
    {
        var views = new List<View>();
        int d = s.ChannelsPerElement;
        foreach (var w in widths)
        {
            int active = cfg.Channels(s.Size * d, w) / d;
            views.Add(FromLabels(Enumerable.Range(0, s.Size).Select(p => p < active ? "a" : "x").ToArray()));
            foreach (var norm in s.Norms)
            {
                var act = norm.Parts.Select(c => cfg.Channels(c, w)).ToArray();
                int total = act.Sum(), gsz = total / norm.Groups, off = act.Take(norm.PartIndex).Sum(),
                    mine = act[norm.PartIndex];
                var labels = new string[s.Size];
                for (int p = 0; p < s.Size; p++)
                {
                    if (p >= mine) { labels[p] = "x"; continue; }
                    int g = (off + p) / gsz;
                    bool inside = g * gsz >= off && (g + 1) * gsz <= off + mine;
                    labels[p] = inside ? $"g#{g}" : $"s:{norm.Layer}@{norm.PartIndex}:{w}:{g}";
                }
                views.Add(FromLabels(labels));
                if (norm.Parts.Length > 1) views.Add(FromLabels(ConcatPins(norm, act, s.Size)));
            }
        }
        return views;
    }

    /// <summary>
    /// A slimmed layer over a concatenation reads weight columns (and GroupNorm γ/β) by position in the
    /// concatenated ACTIVE channels: at width w part i's channel p sits at position off_w(i) + p, which is
    /// not its full-width position off_1(i) + p once an earlier part is narrower than its full size — at
    /// width w the skip's channels use the columns that hold the first part's channels at full width. Such
    /// a channel's weights are shared between two (space, channel) pairs at different widths; keeping this
    /// width's function then needs both pinned in place. Labels: "p:…" unique (pinned), "f" otherwise.
    /// </summary>
    private static string[] ConcatPins(NormRead norm, int[] act, int size)
    {
        var full = norm.Parts;
        int Off(int[] sizes, int i) => sizes.Take(i).Sum();
        var labels = Enumerable.Repeat("f", size).ToArray();
        int k = norm.PartIndex, myStart = Off(full, k);
        for (int i = 0; i < full.Length; i++)
        {
            int shift = Off(act, i) - Off(full, i);
            if (shift == 0) continue;
            for (int p = 0; p < act[i]; p++)
            {
                if (i == k) labels[p] = $"p:{p}";                        // this space reads a shifted column
                int q = Off(act, i) + p - myStart;                        // … whose full-width owner is here
                if (q >= 0 && q < size) labels[q] = $"p:{q}";
            }
        }
        return labels;
    }

    /// <summary>Runs of equal labels; the kind drops the "#id" that only serves to separate groups.</summary>
    internal static View FromLabels(string[] labels)
    {
        var runs = new List<(int, int, string)>();
        int start = 0;
        for (int p = 1; p <= labels.Length; p++)
            if (p == labels.Length || labels[p] != labels[start])
            {
                var l = labels[start];
                int hash = l.IndexOf('#');
                runs.Add((start, p, hash >= 0 ? l[..hash] : l));
                start = p;
            }
        return new View(runs);
    }

    /// <summary>
    /// Builds the tree over [a, b). Views with no boundary inside are satisfied by anything done inside
    /// (the node lies within one of their runs). The node splits where all remaining ("fine") views have a
    /// boundary, or, if there is no such place, at the boundaries of the fine view with the fewest. Two
    /// children may be exchanged when their signatures match: per fine view, the runs meeting the child at
    /// the same relative positions with the same kind, where a run not wholly inside the child is named by
    /// its absolute extent (so only the SAME run can match it). Then exchanging maps each wholly-inside run
    /// onto a run of the same kind, and each shared run onto itself: every view's runs go onto runs of the
    /// same kind, so the function is kept. A child's own subtree only moves positions within runs it splits
    /// off or exchanges runs in the same way, so the composition is valid at every level. (Conservative: a
    /// valid exchange of blocks that no split isolates is missed.)
    /// </summary>
    internal static PermutationTree Build(int a, int b, IReadOnlyList<View> views)
    {
        var fine = views.Where(v => v.Boundaries.Any(p => p > a && p < b)).ToList();
        if (fine.Count == 0) return new PermutationTree(a, b - a, new(), []);
        var sets = fine.Select(v => v.Boundaries.Where(p => p > a && p < b).ToHashSet()).ToList();
        var cuts = sets.Skip(1).Aggregate(new HashSet<int>(sets[0]), (acc, s) => { acc.IntersectWith(s); return acc; });
        if (cuts.Count == 0) cuts = sets.MinBy(s => s.Count)!;
        var edges = cuts.Append(a).Append(b).Order().ToArray();
        var children = new List<PermutationTree>();
        var classOf = new int[edges.Length - 1];
        var classes = new Dictionary<string, int>();
        for (int i = 0; i + 1 < edges.Length; i++)
        {
            int s = edges[i], e = edges[i + 1];
            children.Add(Build(s, e, fine));
            var sig = string.Join("|", fine.Select(v => string.Join(",",
                v.Runs.Where(r => r.End > s && r.Start < e).Select(r =>
                    r.Start >= s && r.End <= e
                        ? $"{r.Start - s}-{r.End - s}{r.Kind}"
                        : $"{Math.Max(r.Start, s) - s}-{Math.Min(r.End, e) - s}@{r.Start}-{r.End}"))));
            if (!classes.TryGetValue(sig, out classOf[i])) classes[sig] = classOf[i] = classes.Count;
        }
        return new PermutationTree(a, b - a, children, classOf);
    }

    /// <summary>
    /// An allowed ordering: new position p holds old position result[p − Start]. With scores, leaves
    /// sort their positions by descending score and interchangeable blocks sort by descending summed
    /// score (greedy, level by level); with an rng instead, every choice is a uniform shuffle.
    /// </summary>
    public int[] Order(double[]? scores, Rng? rng = null)
    {
        if (IsLeaf)
        {
            var pos = Enumerable.Range(Start, Length).ToArray();
            if (rng is not null) Shuffle(pos, rng);
            else if (scores is not null) pos = pos.OrderByDescending(p => scores[p]).ThenBy(p => p).ToArray();
            return pos;
        }
        var orders = Children.Select(c => c.Order(scores, rng)).ToArray();
        var sums = orders.Select(o => scores is null ? 0 : o.Sum(p => scores[p])).ToArray();
        var assigned = new int[Children.Count];
        foreach (var cls in ClassOf.Distinct())
        {
            var slots = Enumerable.Range(0, Children.Count).Where(i => ClassOf[i] == cls).ToArray();
            var members = slots.ToArray();
            if (rng is not null) Shuffle(members, rng);
            else members = members.OrderByDescending(i => sums[i]).ThenBy(i => i).ToArray();
            for (int k = 0; k < slots.Length; k++) assigned[slots[k]] = members[k];
        }
        return assigned.SelectMany(i => orders[i]).ToArray();
    }

    private static void Shuffle(int[] a, Rng rng)
    {
        for (int i = a.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (a[i], a[j]) = (a[j], a[i]);
        }
    }

    /// <summary>
    /// Compact notation: "[n]" n elements permuted freely; "k⇄X" k consecutive blocks of structure X
    /// that may be exchanged; "k×X" k consecutive blocks of structure X that stay in place; "+" joins.
    /// </summary>
    public string Describe() => Join(Items());

    private static string Join(List<(string Unit, int Count, bool Swap, (PermutationTree?, int) Class)> items) =>
        string.Join("+", items.Select(it =>
    {
        if (it.Count == 1 && !it.Swap) return it.Unit;
        bool simple = it.Unit.StartsWith('[') && it.Unit.IndexOf(']') == it.Unit.Length - 1 || Wrapped(it.Unit);
        return $"{it.Count}{(it.Swap ? "⇄" : "×")}{(simple ? it.Unit : $"({it.Unit})")}";
    }));

    /// <summary>
    /// (unit, count, exchangeable, class) runs: a fixed child's own runs are spliced in (nesting of fixed
    /// blocks says nothing), consecutive equal fixed units merge into "k×U", and consecutive exchangeable
    /// siblings of one class with one structure into "k⇄U".
    /// </summary>
    private List<(string Unit, int Count, bool Swap, (PermutationTree?, int) Class)> Items()
    {
        var items = new List<(string Unit, int Count, bool Swap, (PermutationTree?, int) Class)>();
        if (IsLeaf) { items.Add(($"[{Length}]", 1, false, (null, -1))); return items; }
        for (int i = 0; i < Children.Count; i++)
        {
            bool swap = ClassOf.Count(c => c == ClassOf[i]) > 1;
            var parts = swap ? [(Join(Children[i].Items()), 1, true, (this, ClassOf[i]))] : Children[i].Items();
            foreach (var it in parts)
            {
                var last = items.Count > 0 ? items[^1] : default;
                if (items.Count > 0 && last.Unit == it.Unit && last.Swap == it.Swap &&
                    (!it.Swap || last.Class.Equals(it.Class)))
                    items[^1] = last with { Count = last.Count + it.Count };
                else items.Add(it);
            }
        }
        return items;
    }

    /// <summary>"(…)" whose first parenthesis closes at the very end.</summary>
    private static bool Wrapped(string d)
    {
        if (!d.StartsWith('(')) return false;
        int depth = 0;
        for (int i = 0; i < d.Length; i++)
        {
            depth += d[i] == '(' ? 1 : d[i] == ')' ? -1 : 0;
            if (depth == 0) return i == d.Length - 1;
        }
        return false;
    }
}
