namespace Ddsm.Kernels.Gen;

/// <summary>
/// The unrolled parts of the 64×64×16 block-tile GEMM engine (kernels/TileGemm.cs): the register
/// structs, the global→register→shared staging of one 16-deep slice, the two inner products (exact
/// FP32 FMAs, TF32 mma.sync) and the two epilogues. Accumulator i of a thread is element (m, n) of the
/// tile as <see cref="SimtCoord"/> / <see cref="MmaCoord"/> say; epilogues and inner products are
/// generated from the same two functions, so they cannot disagree.
/// </summary>
public static class TileGen
{
    private const int Acc = 32, Loads = 8;

    private static string C(int i) => $"C{i:D2}";

    /// <summary>Exact FP32: thread (ty, tx) = (tid / 16, tid % 16) owns rows ty·8 + i/4, columns tx·4 + i%4.</summary>
    public static (int dm, int dn) SimtCoord(int i) => (i / 4, i % 4);

    /// <summary>
    /// TF32 tensor cores: 4 warps in a 2×2 grid each own 32×32 = 2 m16 × 4 n8 mma tiles; accumulator i
    /// is tile (mt, nt) = ((i/4)/4, (i/4)%4), register r = i%4, which PTX's m16n8k8 f32 layout puts at
    /// row g + 8·(r/2), column 2t + r%2 (g = lane/4, t = lane%4). Relative to (warpRow·32 + g,
    /// warpCol·32 + 2t).
    /// </summary>
    public static (int dm, int dn) MmaCoord(int i)
    {
        int tile = i / 4, r = i % 4, mt = tile / 4, nt = tile % 4;
        return (mt * 16 + (r >= 2 ? 8 : 0), nt * 8 + (r & 1));
    }

    public static string Generate()
    {
        var c = new Code();
        c.Line(Code.Header("Register tiles of the block-tile GEMM engine (see kernels/TileGemm.cs)."));
        c.Line("using ILGPU;");
        c.Line("using ILGPU.Runtime.Cuda;");
        c.Line();
        c.Line("namespace Ddsm.Kernels;");
        c.Line();
        c.Line("/// <summary>One thread's 32 accumulators of a 64×64 tile (which element each is: TileGemm's " +
               "epilogues).</summary>");
        c.Open("public struct Acc32");
        for (int i = 0; i < Acc; i += 8)
            c.Line("public float " + string.Join(", ", Enumerable.Range(i, 8).Select(C)) + ";");
        c.Close();
        c.Line();
        c.Line("/// <summary>One thread's share of a 64×16 slice of A and a 16×64 slice of B on its way to shared " +
               "memory.</summary>");
        c.Open("public struct Stage16");
        c.Line("public float " + string.Join(", ", Enumerable.Range(0, Loads).Select(r => $"A{r}")) + ";");
        c.Line("public float " + string.Join(", ", Enumerable.Range(0, Loads).Select(r => $"B{r}")) + ";");
        c.Close();
        c.Line();
        c.Open("internal static partial class TileGemm");
        LoadStage(c);
        c.Line();
        StoreStage(c);
        c.Line();
        FmaSlice(c);
        c.Line();
        MmaSlice(c);
        c.Line();
        Epilogue(c, "StoreSimt", "exact FP32",
            ["int m = m0 + (tid >> 4) * 8, n = n0 + (tid & 15) * 4;"], SimtCoord);
        c.Line();
        Epilogue(c, "StoreMma", "TF32 mma",
            ["int warp = tid >> 5, lane = tid & 31;",
             "int m = m0 + (warp >> 1) * 32 + (lane >> 2), n = n0 + (warp & 1) * 32 + 2 * (lane & 3);"], MmaCoord);
        c.Close();
        return c.ToString();
    }

    private static void LoadStage(Code c)
    {
        c.Line("/// <summary>This thread's 8 + 8 elements of the slice at k0 (zero outside the problem or past " +
               "kEnd).</summary>");
        c.Open(
            "private static void LoadStage<TP>(ref TP p, int m0, int n0, int k0, int kEnd, SliceMap s, ref Stage16 st)",
            "    where TP : struct, ITileProblem");
        for (int r = 0; r < Loads; r++)
            c.Line($"st.A{r} = LoadA(ref p, m0 + s.AM + {r} * s.AStepM, k0 + s.AK + {r} * s.AStepK, kEnd);");
        for (int r = 0; r < Loads; r++)
            c.Line($"st.B{r} = LoadB(ref p, n0 + s.BN + {r} * s.BStepN, k0 + s.BK + {r} * s.BStepK, kEnd);");
        c.Close();
    }

    private static void StoreStage(Code c)
    {
        c.Line("/// <summary>Writes the staged elements to the (k, m) / (k, n) shared tiles, rounded to TF32 in that " +
               "mode.</summary>");
        c.Open("private static void StoreStage<TMode>(ArrayView<float> As, ArrayView<float> Bs, SliceMap s, ref " +
               "Stage16 st)",
            "    where TMode : struct, IMathMode");
        for (int r = 0; r < Loads; r++)
            c.Line($"As[s.ASmem + {r} * s.ASmemStep] = Operand<TMode>(st.A{r});");
        for (int r = 0; r < Loads; r++)
            c.Line($"Bs[s.BSmem + {r} * s.BSmemStep] = Operand<TMode>(st.B{r});");
        c.Close();
    }

    private static void FmaSlice(Code c)
    {
        c.Line("/// <summary>Exact FP32: acc += As[:, rows]ᵀ · Bs[:, cols] over the 16-deep slice, 8×4 outer " +
               "products per k.</summary>");
        c.Open("private static void FmaSlice(ArrayView<float> As, ArrayView<float> Bs, int ty, int tx, ref Acc32 c)");
        c.Open("for (int k = 0; k < Bk; k++)");
        c.Line("int ao = k * Ld + ty * 8, bo = k * Ld + tx * 4;");
        c.Line("float " + string.Join(", ", Enumerable.Range(0, 8).Select(i => $"a{i} = As[ao + {i}]")) + ";");
        c.Line("float " + string.Join(", ", Enumerable.Range(0, 4).Select(j => $"b{j} = Bs[bo + {j}]")) + ";");
        for (int i = 0; i < Acc; i++)
        {
            var (dm, dn) = SimtCoord(i);
            c.Line($"c.{C(i)} += a{dm} * b{dn};");
        }
        c.Close();
        c.Close();
    }

    private static void MmaSlice(Code c)
    {
        c.Line("/// <summary>");
        c.Line("/// TF32: acc += the warp's 32×32 block over the 16-deep slice as 2 k8 steps × 2 m16 × 4 n8 mma.sync.");
        c.Line(
            "/// Fragments (PTX ISA, m16n8k8 .tf32): a0 (g, t) a1 (g+8, t) a2 (g, t+4) a3 (g+8, t+4); b0 (k t, n g)");
        c.Line("/// b1 (k t+4, n g). Shared rows are 72 floats, so each fragment load hits 32 distinct banks. Off the");
        c.Line("/// GPU the same fragments go to <see cref=\"EmulateMma\"/>, which applies the documented layout.");
        c.Line("/// </summary>");
        c.Open("private static void MmaSlice(ArrayView<float> As, ArrayView<float> Bs, ArrayView<float> x, int warp, " +
               "int lane, ref Acc32 c)");
        c.Line("int g = lane >> 2, t = lane & 3, wm = (warp >> 1) * 32 + g, wn = (warp & 1) * 32 + g;");
        c.Open("for (int kk = 0; kk < Bk; kk += 8)");
        c.Line("int r0 = (kk + t) * Ld, r4 = r0 + 4 * Ld;");
        for (int mt = 0; mt < 2; mt++)
            c.Line($"uint a{mt}0 = Bits(As[r0 + wm + {mt * 16}]), a{mt}1 = Bits(As[r0 + wm + {mt * 16 + 8}]), " +
                   $"a{mt}2 = Bits(As[r4 + wm + {mt * 16}]), a{mt}3 = Bits(As[r4 + wm + {mt * 16 + 8}]);");
        for (int nt = 0; nt < 4; nt++)
            c.Line($"uint b{nt}0 = Bits(Bs[r0 + wn + {nt * 8}]), b{nt}1 = Bits(Bs[r4 + wn + {nt * 8}]);");
        c.Open("if (CudaAsm.IsSupported)");
        for (int mt = 0; mt < 2; mt++)
            for (int nt = 0; nt < 4; nt++)
            {
                int b = (mt * 4 + nt) * 4;
                c.Line($"Mma.M16N8K8(ref c.{C(b)}, ref c.{C(b + 1)}, ref c.{C(b + 2)}, ref c.{C(b + 3)}, " +
                       $"a{mt}0, a{mt}1, a{mt}2, a{mt}3, b{nt}0, b{nt}1);");
            }
        c.Close();
        c.Open("else");
        c.Line("EmulateMma(x, warp, lane, " + string.Join(", ", Frags()) + ", ref c);");
        c.Close();
        c.Close();
        c.Close();
        c.Line();
        EmulateMma(c);
    }

    private static IEnumerable<string> Frags() =>
        Enumerable.Range(0, 2).SelectMany(mt => Enumerable.Range(0, 4).Select(r => $"a{mt}{r}"))
            .Concat(Enumerable.Range(0, 4).SelectMany(nt => Enumerable.Range(0, 2).Select(r => $"b{nt}{r}")));

    /// <summary>
    /// The 8 mma.sync of one k8 step, computed from the same fragments without tensor cores: every lane
    /// publishes its fragments in the warp's exchange area, then reads the A rows and B columns its
    /// accumulators need where the documented layout says they are (2 warp barriers per step, where
    /// emulating each instruction with shuffles would take 256).
    /// </summary>
    private static void EmulateMma(Code c)
    {
        c.Line("/// <summary>");
        c.Line("/// The 8 mma.sync of MmaSlice from the same fragments, for accelerators without tensor cores: each");
        c.Line("/// lane writes its fragments to the warp's 512-float exchange area x, then reads the A rows and B");
        c.Line("/// columns of its accumulators where the PTX fragment layout puts them. Products of TF32 values are");
        c.Line("/// exact in FP32, as in the tensor core; only the summation order may differ.");
        c.Line("/// </summary>");
        c.Open("private static void EmulateMma(ArrayView<float> x, int warp, int lane, " +
               string.Join(", ", Frags().Select(f => "uint " + f)) + ", ref Acc32 c)");
        c.Line("int o = warp * 512;   // A fragments [mt][reg][lane] at o, B fragments [nt][reg][lane] at o + 256");
        for (int mt = 0; mt < 2; mt++)
            for (int r = 0; r < 4; r++)
                c.Line($"x[o + {(mt * 4 + r) * 32} + lane] = Interop.IntAsFloat(a{mt}{r});");
        for (int nt = 0; nt < 4; nt++)
            for (int r = 0; r < 2; r++)
                c.Line($"x[o + {256 + (nt * 2 + r) * 32} + lane] = Interop.IntAsFloat(b{nt}{r});");
        c.Line("Warp.Barrier();");
        c.Line("int g = lane >> 2, t = lane & 3;");
        c.Open("for (int k = 0; k < 4; k++)");
        c.Line("// A[mt][row][k]: lane (row % 8)·4 + k, register a0 (row < 8) or a1; column k + 4: a2 / a3.");
        c.Line("// B[nt][k][col]: lane col·4 + k, register b0; row k + 4: b1.");
        for (int mt = 0; mt < 2; mt++)
            c.Line($"float p{mt}g = x[o + {(mt * 4 + 0) * 32} + g * 4 + k], p{mt}g8 = x[o + {(mt * 4 + 1) * 32} + g " +
                   $"* 4 + k], q{mt}g = x[o + {(mt * 4 + 2) * 32} + g * 4 + k], q{mt}g8 = x[o + {(mt * 4 + 3) * 32} " +
                   $"+ g * 4 + k];");
        for (int nt = 0; nt < 4; nt++)
            c.Line($"float u{nt}0 = x[o + {256 + (nt * 2) * 32} + 8 * t + k], u{nt}1 = x[o + {256 + (nt * 2) * 32} + " +
                   $"8 * t + 4 + k], v{nt}0 = x[o + {256 + (nt * 2 + 1) * 32} + 8 * t + k], v{nt}1 = x[o + " +
                   $"{256 + (nt * 2 + 1) * 32} + 8 * t + 4 + k];");
        for (int i = 0; i < Acc; i++)
        {
            int tile = i / 4, r = i % 4, mt = tile / 4, nt = tile % 4;
            string row = r >= 2 ? "g8" : "g";
            int col = r & 1;
            c.Line($"c.{C(i)} += p{mt}{row} * u{nt}{col} + q{mt}{row} * v{nt}{col};");
        }
        c.Close();
        c.Line("Warp.Barrier();   // the area is rewritten by the next step");
        c.Close();
    }

    private static void Epilogue(Code c, string name, string what, string[] prologue, Func<int, (int dm, int dn)> coord)
    {
        c.Line($"/// <summary>Hands every accumulator of the {what} layout to the problem's Store (inside the " +
               $"problem only).</summary>");
        c.Open($"private static void {name}<TP>(ref TP p, int m0, int n0, int tid, ref Acc32 c)",
            "    where TP : struct, ITileProblem");
        foreach (var l in prologue) c.Line(l);
        for (int i = 0; i < Acc; i++)
        {
            var (dm, dn) = coord(i);
            c.Line($"Put(ref p, m{Code.Plus(dm)}, n{Code.Plus(dn)}, c.{C(i)});");
        }
        c.Close();
    }
}
