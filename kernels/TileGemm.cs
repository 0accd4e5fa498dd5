// The one block-tile matrix-multiply engine behind Gemm.cs and Conv.cs.
// A group of 128 threads computes a 64×64 tile of C = A·B (A is M×K, B is K×N) over a K range, staging
// 16-deep slices of A and B through shared memory. Operands come from a problem struct (ITileProblem)
// that maps (m, k) / (k, n) to memory and stores results, so one engine serves plain, transposed and
// batched GEMM and the implicit-GEMM convolutions (im2col is index arithmetic in the loader).
//
// Two inner products, chosen at compile time by TMode:
//   Tf32      : tensor cores, mma.sync m16n8k8 TF32 with FP32 accumulation; 4 warps in a 2×2 grid,
//               each owning 32×32 (2 m16 × 4 n8 tiles). ≈1e-3 relative error (10-bit mantissa).
//   ExactFp32 : SIMT FMAs; thread (ty, tx) = (tid/16, tid%16) owns rows ty·8..+8, columns tx·4..+4.
// Both give each thread 32 accumulators (Acc32, kernels/Generated/TileGemm.g.cs).
//
// Why this shape: 64×64×16 keeps 2·16·72·4 B = 9 KB of shared memory and 32 accumulators per thread,
// so many groups fit per SM; shared rows are padded to 72 floats so the mma fragment loads (8 rows ×
// 4 k per instruction: bank 8·t + g) hit 32 distinct banks. The next slice's global loads are issued
// before the current slice's math (register double buffering) so their latency overlaps it.
using ILGPU;
using ILGPU.Runtime;

namespace Ddsm.Kernels;

/// <summary>
/// What the tile engine multiplies: op(A) (M×K) · op(B) (K×N), element accessors called only inside
/// the problem, and where each result goes. Implemented by small structs, so every call inlines.
/// </summary>
internal interface ITileProblem
{
    int M { get; }
    int N { get; }
    /// <summary>True when consecutive k of A are consecutive in memory (else consecutive m are).</summary>
    bool AKContiguous { get; }
    /// <summary>True when consecutive n of B are consecutive in memory (else consecutive k are).</summary>
    bool BNContiguous { get; }
    float A(int m, int k);
    float B(int k, int n);
    /// <summary>Receives C[m, n] (m &lt; M, n &lt; N) once.</summary>
    void Store(int m, int n, float value);
}

/// <summary>
/// Which slice elements a thread stages: element r is (base + r·step), and where it lands in shared memory.
/// </summary>
internal struct SliceMap
{
    public int AM, AK, AStepM, AStepK, ASmem, ASmemStep;
    public int BN, BK, BStepN, BStepK, BSmem, BSmemStep;

    /// <summary>Coalesced: the 16 (or 64) threads that read consecutive addresses take consecutive elements.</summary>
    public static SliceMap For(int tid, bool aKContiguous, bool bNContiguous)
    {
        var s = new SliceMap();
        // 8 elements each of a 64×16 (A) and 16×64 (B) slice: e = tid + r·128.
        if (aKContiguous) { s.AM = tid >> 4; s.AK = tid & 15; s.AStepM = 8; s.AStepK = 0; }
        else { s.AM = tid & 63; s.AK = tid >> 6; s.AStepM = 0; s.AStepK = 2; }
        if (bNContiguous) { s.BN = tid & 63; s.BK = tid >> 6; s.BStepN = 0; s.BStepK = 2; }
        else { s.BN = tid >> 4; s.BK = tid & 15; s.BStepN = 8; s.BStepK = 0; }
        s.ASmem = s.AK * TileGemm.Ld + s.AM;
        s.ASmemStep = s.AStepK * TileGemm.Ld + s.AStepM;
        s.BSmem = s.BK * TileGemm.Ld + s.BN;
        s.BSmemStep = s.BStepK * TileGemm.Ld + s.BStepN;
        return s;
    }
}

/// <summary>The tile engine's launch shape, for the host side.</summary>
public static class Tile
{
    /// <summary>Rows (M) and columns (N) of C per group, and threads per group.</summary>
    public const int Rows = 64, Cols = 64, Threads = 128;
    /// <summary>Dynamic shared floats a TF32 launch needs where mma.sync is emulated (not on CUDA).</summary>
    public const int EmulationSharedFloats = 4 * 512;
}

internal static partial class TileGemm
{
    public const int Bm = Tile.Rows, Bn = Tile.Cols, Bk = 16, Threads = Tile.Threads, Ld = 72;

    /// <summary>
    /// Computes the tile C[m0..m0+64, n0..n0+64) over k in [kBegin, kEnd) and stores it through the
    /// problem. All 128 threads of the group must call it (it contains barriers).
    /// </summary>
    public static void Run<TP, TMode>(ref TP p, int m0, int n0, int kBegin, int kEnd)
        where TP : struct, ITileProblem
        where TMode : struct, IMathMode
    {
        var As = SharedMemory.Allocate<float>(Bk * Ld);   // (k, m) slice of A
        var Bs = SharedMemory.Allocate<float>(Bk * Ld);   // (k, n) slice of B
        // Fragment exchange area of the TF32 emulation: dynamic shared memory that the backend requests
        // (Tile.EmulationSharedFloats) only off the GPU, so GPU launches carry no dead allocation.
        var X = SharedMemory.GetDynamic<float>();
        int tid = Group.IdxX;
        var map = SliceMap.For(tid, p.AKContiguous, p.BNContiguous);
        var acc = new Acc32();
        var st = new Stage16();
        if (kBegin < kEnd) LoadStage(ref p, m0, n0, kBegin, kEnd, map, ref st);
        for (int k0 = kBegin; k0 < kEnd; k0 += Bk)
        {
            StoreStage<TMode>(As, Bs, map, ref st);
            Group.Barrier();
            if (k0 + Bk < kEnd) LoadStage(ref p, m0, n0, k0 + Bk, kEnd, map, ref st);   // in flight during the math
            if (default(TMode).Tf32) MmaSlice(As, Bs, X, tid >> 5, tid & 31, ref acc);
            else FmaSlice(As, Bs, tid >> 4, tid & 15, ref acc);
            Group.Barrier();
        }
        if (default(TMode).Tf32) StoreMma(ref p, m0, n0, tid, ref acc);
        else StoreSimt(ref p, m0, n0, tid, ref acc);
    }

    private static float LoadA<TP>(ref TP p, int m, int k, int kEnd) where TP : struct, ITileProblem =>
        m < p.M && k < kEnd ? p.A(m, k) : 0f;

    private static float LoadB<TP>(ref TP p, int n, int k, int kEnd) where TP : struct, ITileProblem =>
        n < p.N && k < kEnd ? p.B(k, n) : 0f;

    private static void Put<TP>(ref TP p, int m, int n, float v) where TP : struct, ITileProblem
    {
        if (m < p.M && n < p.N) p.Store(m, n, v);
    }

    private static float Operand<TMode>(float x) where TMode : struct, IMathMode =>
        default(TMode).Tf32 ? Dev.RoundTf32(x) : x;

    private static uint Bits(float x) => Interop.FloatAsInt(x);
}
