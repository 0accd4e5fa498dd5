namespace Ddsm.Kernels.Gen;

/// <summary>
/// The unrolled register tiles of the fused attention kernels (kernels/Attention.cs): <c>Rows8</c>, one
/// lane's 8 per-row values (scores, running max and sum, lse, D of the warp's 8 queries or keys); the
/// accumulator tiles <c>AttnTile32/64/128</c>, 8 rows × 1, 2 or 4 channel slots j = lane + 32·jj, which
/// are the head-dim specialisations; and the kernels' per-row steps written out for the 8 rows. Field
/// A{i}{jj} of a tile is row i, channel lane + 32·jj; every method below is generated from those two
/// indices, so the tiles' accumulate, scale and stage cannot disagree.
/// </summary>
public static class AttentionGen
{
    /// <summary>Rows (queries or keys) per warp.</summary>
    public const int Rows = 8;

    /// <summary>The specialisations: largest head dim and channel slots per lane.</summary>
    public static IReadOnlyList<(int MaxDim, int Slots)> Tiles => [(32, 1), (64, 2), (128, 4)];

    private static string A(int i, int jj) => $"A{i}{jj}";

    /// <summary>Row i of 8 held as two Vec4, lo (rows 0..3) and hi (rows 4..7).</summary>
    private static string Part(int i) => (i < 4 ? "lo." : "hi.") + "XYZW"[i % 4];

    private static IEnumerable<int> Each(int n) => Enumerable.Range(0, n);

    /// <summary>A summary comment of several lines.</summary>
    private static void Doc(Code c, params string[] lines)
    {
        c.Line("/// <summary>");
        foreach (var l in lines) c.Line("/// " + l);
        c.Line("/// </summary>");
    }


    public static string Generate()
    {
        var c = new Code();
        c.Line(Code.Header("Register tiles of the attention kernels (see kernels/Attention.cs)."));
        c.Line("using ILGPU;");
        c.Line();
        c.Line("namespace Ddsm.Kernels;");
        c.Line();
        Rows8(c);
        foreach (var (maxDim, slots) in Tiles)
        {
            c.Line();
            Tile(c, maxDim, slots);
        }
        c.Line();
        c.Open("public static partial class AttentionKernels");
        RowSteps(c);
        c.Close();
        return c.ToString();
    }

    private static void Rows8(Code c)
    {
        c.Line("/// <summary>One lane's value for each of its warp's 8 rows (queries or keys).</summary>");
        c.Open("public struct Rows8");
        c.Line("public float " + string.Join(", ", Each(Rows).Select(i => $"R{i}")) + ";");
        c.Line();
        c.Line("/// <summary>Every row = v.</summary>");
        c.Open("public static Rows8 Fill(float v)");
        c.Line("Rows8 r;");
        foreach (int i in Each(Rows)) c.Line($"r.R{i} = v;");
        c.Line("return r;");
        c.Close();
        c.Line();
        c.Line("/// <summary>R_i += (x[at], x[at + 1])_i · y: the same x in every lane, two 16-byte reads.</summary>");
        c.Open("public void Add(ArrayView<Vec4> x, int at, float y)");
        c.Line("Vec4 lo = x[at], hi = x[at + 1];");
        foreach (int i in Each(Rows)) c.Line($"R{i} += {Part(i)} * y;");
        c.Close();
        c.Line();
        c.Line("/// <summary>(x[at], x[at + 1]) = the 8 rows: two 16-byte writes.</summary>");
        c.Open("public readonly void Write(ArrayView<Vec4> x, int at)");
        c.Line("Vec4 lo, hi;");
        foreach (int i in Each(Rows)) c.Line($"{Part(i)} = R{i};");
        c.Line("x[at] = lo;");
        c.Line("x[at + 1] = hi;");
        c.Close();
        c.Line();
        c.Line("/// <summary>R_i = x[at + i] for i &lt; count, else 0 (rows past the end of the sequence).</summary>");
        c.Open("public void Load(ArrayView<float> x, long at, int count)");
        foreach (int i in Each(Rows)) c.Line($"R{i} = count > {i} ? x[at + {i}] : 0f;");
        c.Close();
        c.Line();
        c.Line("/// <summary>x[at + i] = R_i for i &lt; count.</summary>");
        c.Open("public readonly void Store(ArrayView<float> x, long at, int count)");
        foreach (int i in Each(Rows)) c.Line($"if (count > {i}) x[at + {i}] = R{i};");
        c.Close();
        c.Line();
        c.Line("/// <summary>R_i · scale where ok, else NegBig (a masked score).</summary>");
        c.Open("public readonly Rows8 ScaledOrMasked(float scale, bool ok)");
        c.Line("Rows8 r;");
        foreach (int i in Each(Rows)) c.Line($"r.R{i} = ok ? R{i} * scale : Dev.NegBig;");
        c.Line("return r;");
        c.Close();
        c.Line();
        WarpReduce(c, "WarpMax", "maximum", (a, b) => $"MathF.Max({a}, {b})");
        c.Line();
        WarpReduce(c, "WarpSum", "sum", (a, b) => a.Contains('?') ? $"({a}) + {b}" : $"{a} + {b}");
        c.Close();
    }

    /// <summary>
    /// Reduces all 8 rows over the warp's 32 lanes in 9 shuffles (8 butterflies would take 40): at xor 16
    /// each lane keeps half of its rows and sends the partner the other half, so after the xor 16, 8 and 4
    /// steps lane l holds one row, (l / 4) % 8, reduced over 8 lanes; xor 2 and 1 finish it, and 8 shuffles
    /// hand every row's total (from lanes 4r..4r+3) back to all lanes. Fixed order: deterministic, and
    /// every lane gets the same bits.
    /// </summary>
    private static void WarpReduce(Code c, string name, string what, Func<string, string, string> op)
    {
        c.Line($"/// <summary>Each row's {what} over the warp's 32 lanes, to every lane (9 + 8 shuffles).</summary>");
        c.Open($"public readonly Rows8 {name}(int lane)");
        c.Line("// Halving exchange: at xor 16 a lane with bit 4 set keeps rows 4..7 and sends rows 0..3 (its");
        c.Line("// partner the reverse), then likewise at xor 8 and 4; lane l ends with row (l / 4) % 8.");
        c.Line("bool h4 = (lane & 16) != 0, h3 = (lane & 8) != 0, h2 = (lane & 4) != 0;");
        foreach (int k in Each(4))
            c.Line($"float a{k} = {op($"h4 ? R{k + 4} : R{k}", $"Warp.ShuffleXor(h4 ? R{k} : R{k + 4}, 16)")};");
        foreach (int k in Each(2))
            c.Line($"float b{k} = {op($"h3 ? a{k + 2} : a{k}", $"Warp.ShuffleXor(h3 ? a{k} : a{k + 2}, 8)")};");
        c.Line($"float v = {op("h2 ? b1 : b0", "Warp.ShuffleXor(h2 ? b0 : b1, 4)")};");
        c.Line($"v = {op("v", "Warp.ShuffleXor(v, 2)")};");
        c.Line($"v = {op("v", "Warp.ShuffleXor(v, 1)")};");
        c.Line("Rows8 r;");
        foreach (int i in Each(Rows)) c.Line($"r.R{i} = Warp.Shuffle(v, {4 * i});");
        c.Line("return r;");
        c.Close();
    }

    private static void Tile(Code c, int maxDim, int slots)
    {
        string name = $"AttnTile{maxDim}";
        c.Line($"/// <summary>Head dim ≤ {maxDim}: a lane's 8 rows × {slots} channel slot{(slots > 1 ? "s" : "")} " +
               "(A{row}{slot}: channel lane + 32·slot).</summary>");
        c.Open($"public struct {name} : IAttnTile");
        foreach (int i in Each(Rows))
            c.Line("public float " + string.Join(", ", Each(slots).Select(jj => A(i, jj))) + ";");
        c.Line();
        c.Line($"public readonly int MaxDim => {maxDim};");
        c.Line();
        c.Open("public void Scale(Rows8 f)");
        foreach (int i in Each(Rows))
            c.Line(string.Join(" ", Each(slots).Select(jj => $"{A(i, jj)} *= f.R{i};")));
        c.Close();
        c.Line();
        c.Open("public void Accumulate(ArrayView<Vec4> w, ArrayView<float> x, int lane, int d)");
        c.Line("// A slot past d reads row d − 1 (in bounds, no branch in the loop); Stage never stores its sums.");
        foreach (int jj in Each(slots))
            c.Line($"int x{jj} = Math.Min(lane{Code.Plus(32 * jj)}, d - 1) * AttentionKernels.Pitch;");
        c.Open("for (int kk = 0; kk < AttentionKernels.Keys; kk++)");
        c.Line("Vec4 lo = w[2 * kk], hi = w[2 * kk + 1];   // the token's 8 row weights");
        c.Line("float " + string.Join(", ", Each(slots).Select(jj => $"v{jj} = x[x{jj} + kk]")) + ";");
        foreach (int i in Each(Rows))
            c.Line(string.Join(" ", Each(slots).Select(jj => $"{A(i, jj)} += {Part(i)} * v{jj};")));
        c.Close();
        c.Close();
        c.Line();
        c.Open("public readonly void Stage(ArrayView<float> y, int col, int lane, int d, Rows8 f)");
        foreach (int jj in Each(slots))
        {
            c.Open($"if (lane{Code.Plus(32 * jj)} < d)");
            c.Line($"int at = {(jj == 0 ? "lane" : $"(lane + {32 * jj})")} * AttentionKernels.Pitch + col;");
            foreach (int i in Each(Rows)) c.Line($"y[at{Code.Plus(i)}] = {A(i, jj)} * f.R{i};");
            c.Close();
        }
        c.Close();
        c.Close();
    }

    /// <summary>The kernels' per-row steps over the 8 rows: each calls a per-row function of Attention.cs.</summary>
    private static void RowSteps(Code c)
    {
        Doc(c, "OnlineSoftmax of the 8 queries over a key tile (s masked, scaled): the probabilities go to the",
            "lane's token of p; returns the rescale factors.");
        c.Open("private static Rows8 SoftmaxRows(Rows8 s, ref Rows8 m, ref Rows8 l, ArrayView<Vec4> p, int lane)");
        c.Line("var tileMax = s.WarpMax(lane);");
        c.Line("Rows8 e, alpha;");
        foreach (int i in Each(Rows))
            c.Line($"e.R{i} = OnlineSoftmax(s.R{i}, tileMax.R{i}, ref m.R{i}, ref l.R{i}, out alpha.R{i});");
        c.Line("e.Write(p, 2 * lane);");
        c.Line("return alpha;");
        c.Close();
        c.Line();
        c.Line("/// <summary>lse = m + log l and 1/l of the 8 queries (l: the warp's total sums) after the " +
               "last tile.</summary>");
        c.Open("private static void FinishRows(Rows8 m, Rows8 l, out Rows8 lse, out Rows8 inv)");
        foreach (int i in Each(Rows)) c.Line($"lse.R{i} = m.R{i} + MathF.Log(l.R{i}); inv.R{i} = 1f / l.R{i};");
        c.Close();
        c.Line();
        Doc(c, "P and dS (ScoreGrad) of the 8 keys and the lane's query, to its token of p and ds; rows ≥ keys",
            "masked.");
        c.Open("private static void KeyGradRows(Rows8 s, Rows8 dp, int keys, bool queryOk, float lse, float rowDot,",
            "    float scale, ArrayView<Vec4> p, ArrayView<Vec4> ds, int lane)");
        c.Line("Rows8 e, g;");
        foreach (int i in Each(Rows))
            c.Line($"e.R{i} = ScoreGrad(s.R{i}, dp.R{i}, queryOk && keys > {i}, lse, rowDot, scale, out g.R{i});");
        c.Line("e.Write(p, 2 * lane);");
        c.Line("g.Write(ds, 2 * lane);");
        c.Close();
        c.Line();
        Doc(c, "dS (ScoreGrad) of the 8 queries and the lane's key, to its token of ds; rows ≥ queries masked.");
        c.Open("private static void QueryGradRows(Rows8 s, Rows8 dp, int queries, bool keyOk, Rows8 lse, Rows8 rowDot,",
            "    float scale, ArrayView<Vec4> ds, int lane)");
        c.Line("Rows8 g;");
        foreach (int i in Each(Rows))
            c.Line($"ScoreGrad(s.R{i}, dp.R{i}, keyOk && queries > {i}, lse.R{i}, rowDot.R{i}, scale, out g.R{i});");
        c.Line("g.Write(ds, 2 * lane);");
        c.Close();
    }
}
