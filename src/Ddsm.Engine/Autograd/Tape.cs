namespace Ddsm.Engine;

/// <summary>One recorded op: its output, its inputs, and how to push the output's gradient back.</summary>
internal sealed class TapeNode(string op, Tensor output, Tensor[] inputs, Action<Tensor> backward)
{
    public string Op { get; } = op;
    public Tensor Output { get; } = output;
    public Tensor[] Inputs { get; } = inputs;
    public Action<Tensor> Backward { get; } = backward;
}

/// <summary>
/// Reverse-mode autograd as a per-thread tape. Ops append a node when grad mode is on and any input
/// requires a gradient; <see cref="Backward"/> walks the tape newest-first (creation order is a
/// topological order), so no graph search is needed. Leaf gradients accumulate across backward
/// passes until an optimiser zeroes them: the sandwich rule runs 3–4 passes per step.
/// </summary>
public static class Tape
{
    [ThreadStatic] private static List<TapeNode>? _nodes;
    [ThreadStatic] private static int _noGrad;

    private static List<TapeNode> Nodes => _nodes ??= new List<TapeNode>();

    /// <summary>False inside <see cref="NoGrad"/>: nothing recorded will need its inputs kept for a backward.</summary>
    public static bool IsRecording => _noGrad == 0;
    internal static int Count => _nodes?.Count ?? 0;

    /// <summary>Ops inside the returned handle record nothing (sampling, evaluation, EMA updates).</summary>
    public static NoGradHandle NoGrad()
    {
        _noGrad++;
        return new NoGradHandle();
    }

    public readonly struct NoGradHandle : IDisposable
    {
        public void Dispose() => _noGrad--;
    }

    /// <summary>True when an op with these inputs must record itself.</summary>
    public static bool Needs(Tensor a) => _noGrad == 0 && a.RequiresGrad;
    public static bool Needs(Tensor a, Tensor? b) => _noGrad == 0 && (a.RequiresGrad || (b?.RequiresGrad ?? false));
    public static bool Needs(ReadOnlySpan<Tensor?> xs)
    {
        if (_noGrad != 0) return false;
        foreach (var x in xs) if (x is not null && x.RequiresGrad) return true;
        return false;
    }

    internal static void Record(string op, Tensor output, Tensor[] inputs, Action<Tensor> backward)
    {
        output.RequiresGrad = true;
        var node = new TapeNode(op, output, inputs, backward);
        output.GradFn = node;
        Nodes.Add(node);
    }

    internal static void Truncate(int mark)
    {
        var nodes = _nodes;
        if (nodes is null || nodes.Count <= mark) return;
        for (int i = mark; i < nodes.Count; i++) Forget(nodes[i]);
        nodes.RemoveRange(mark, nodes.Count - mark);
    }

    /// <summary>
    /// Back-propagates from a scalar (or from <paramref name="gradient"/> of the same shape), adds
    /// into every leaf's <see cref="Tensor.Grad"/>, frees intermediate gradients, clears the tape.
    /// </summary>
    public static void Backward(Tensor root, Tensor? gradient = null)
    {
        if (root.GradFn is null)
            throw new InvalidOperationException(
                $"backward: {root.Describe()} was not produced by a recorded op (no grad path, or made under NoGrad)");
        if (gradient is null && root.Length != 1)
            throw new ArgumentException($"backward: root {root.Describe()} is not a scalar; pass its gradient");
        var nodes = Nodes;
        var g = root.EnsureGrad();
        if (gradient is null) root.Backend.Fill(g.Buffer, 0, 1, 1f);
        else
        {
            if (gradient.Length != root.Length)
                throw new ArgumentException($"backward: gradient {gradient.Describe()} for root {root.Describe()}");
            root.Backend.Axpby(gradient.Buffer, g.Buffer, root.Length, 1f, 1f);
        }

        try
        {
            using (TensorScope.Suspend())
            {
                for (int i = nodes.Count - 1; i >= 0; i--)
                {
                    var node = nodes[i];
                    var og = node.Output.Grad;
                    if (og is null) continue;
                    foreach (var inp in node.Inputs)
                        if (inp.IsDisposed)
                            throw new ObjectDisposedException(inp.Describe(),
                                                              $"backward through '{node.Op}': an input was disposed " +
                                                              $"before backward (keep it alive until backward, e.g. " +
                                                              $"in the same TensorScope)");
                    using (Profiler.Op(node.Op + ".bwd", 0, root.Backend))
                        node.Backward(og);
                    node.Output.DropGrad();
                }
            }
        }
        finally
        {
            foreach (var n in nodes) Forget(n);
            nodes.Clear();
        }
    }

    private static void Forget(TapeNode n)
    {
        if (n.Output.GradFn == n)
        {
            n.Output.DropGrad();
            n.Output.GradFn = null;
        }
    }

    /// <summary>Adds <paramref name="g"/> into <paramref name="x"/>'s gradient (created zeroed on first use).</summary>
    internal static void Accumulate(Tensor x, Tensor g)
    {
        if (!x.RequiresGrad) return;
        var xg = x.EnsureGrad();
        x.Backend.Axpby(g.Buffer, xg.Buffer, x.Length, 1f, 1f);
    }

    /// <summary>The gradient buffer to accumulate into for an input, or null when it needs none.</summary>
    internal static DeviceBuffer? GradOf(Tensor? x) => x is { RequiresGrad: true } ? x.EnsureGrad().Buffer : null;
}
