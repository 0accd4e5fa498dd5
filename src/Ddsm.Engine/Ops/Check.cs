namespace Ddsm.Engine;

/// <summary>Argument validation for ops: every failure names the op and the shapes involved.</summary>
internal static class Check
{
    public static void SameBackend(string op, Tensor a, Tensor? b = null, Tensor? c = null, Tensor? d = null)
    {
        foreach (var t in new[] { b, c, d })
            if (t is not null && t.Backend != a.Backend)
                throw new ArgumentException($"{op}: tensors on different devices: {a.Describe()} and {t.Describe()}");
    }

    public static void SameShape(string op, Tensor a, Tensor b)
    {
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
            throw new ArgumentException($"{op}: shape mismatch {ShapeUtil.Str(a.Shape)} vs {ShapeUtil.Str(b.Shape)}");
    }

    public static void Rank(string op, Tensor t, int rank, string what = "input")
    {
        if (t.Rank != rank)
            throw new ArgumentException($"{op}: {what} must have rank {rank}, got {ShapeUtil.Str(t.Shape)}");
    }

    public static void That(bool ok, string op, string message)
    {
        if (!ok) throw new ArgumentException($"{op}: {message}");
    }
}
