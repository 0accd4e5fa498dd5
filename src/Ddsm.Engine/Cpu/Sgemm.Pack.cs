using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.Engine.Cpu;

// Sgemm's packing: op(A) into mr-tall row panels, op(B) into NR-wide column panels, transposes absorbed.
public static unsafe partial class Sgemm
{
    /// <summary>
    /// Packs op(A)[ic:ic+mc, pc:pc+kc] into <paramref name="mr"/>-row panels, each kc steps of mr contiguous
    /// values (rows past mc are zero so the microkernel never branches). mr is the path's panel height.
    /// </summary>
    internal static void PackA(SgemmPath path, bool transA, float* a, int lda, int ic, int mc, int pc, int kc,
        float* dst)
    {
        int mrTile = PanelHeight(path);
        for (int ir = 0; ir < mc; ir += mrTile)
        {
            int mr = Math.Min(mrTile, mc - ir);
            float* d = dst + (long)ir * kc;
            if (transA)
            {
                // op(A)(i, p) = a[p·lda + i]: mr values of one stored row per step (one zmm when full).
                float* s = a + (long)pc * lda + ic + ir;
                if (path == SgemmPath.Avx512 && mr == MR512)
                {
                    for (int p = 0; p < kc; p++, s += lda, d += MR512) Vector512.Store(Vector512.Load(s), d);
                    continue;
                }
                CopyRowsPadded(s, lda, kc, mr, d, mrTile);
            }
            else
            {
                // op(A)(i, p) = a[i·lda + p]: walk mr stored rows in lockstep.
                int r = 0;
                for (; r < mr; r++)
                {
                    float* s = a + (long)(ic + ir + r) * lda + pc;
                    float* dd = d + r;
                    for (int p = 0; p < kc; p++) dd[p * mrTile] = s[p];
                }
                for (; r < mrTile; r++)
                    for (int p = 0; p < kc; p++) d[p * mrTile + r] = 0f;
            }
        }
    }

    /// <summary>
    /// kc rows of <paramref name="count"/> values, <paramref name="ld"/> apart, into rows of
    /// <paramref name="width"/> contiguous values zero-padded past count: an edge panel of A or B.
    /// </summary>
    private static void CopyRowsPadded(float* s, long ld, int kc, int count, float* d, int width)
    {
        for (int p = 0; p < kc; p++, s += ld, d += width)
        {
            new ReadOnlySpan<float>(s, count).CopyTo(new Span<float>(d, count));
            new Span<float>(d + count, width - count).Clear();
        }
    }

    /// <summary>Packs op(B)[pc:pc+kc, jc:jc+nc] into NR-column panels, each kc rows of NR contiguous values.</summary>
    private static void PackB(SgemmPath path, bool transB, float* b, int ldb, int pc, int kc, int jc, int nc,
        float* dst)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* d = dst + (long)jr * kc;
            if (!transB)
            {
                float* s = b + (long)pc * ldb + jc + jr;
                if (nr == NR && path == SgemmPath.Avx512)
                {
                    for (int p = 0; p < kc; p++, s += ldb, d += NR) Vector512.Store(Vector512.Load(s), d);
                }
                else if (nr == NR && path == SgemmPath.Avx2)
                {
                    for (int p = 0; p < kc; p++, s += ldb, d += NR)
                    {
                        Vector256.Store(Vector256.Load(s), d);
                        Vector256.Store(Vector256.Load(s + 8), d + 8);
                    }
                }
                else
                {
                    CopyRowsPadded(s, ldb, kc, nr, d, NR);
                }
            }
            else
            {
                // op(B)(p, j) = b[j·ldb + p]: each stored row is one packed column. Full 8×8 blocks
                // go through an in-register transpose; the rest element by element.
                int p0 = 0;
                if (path != SgemmPath.Portable && nr == NR)
                {
                    for (; p0 + 8 <= kc; p0 += 8)
                        for (int jb = 0; jb < NR; jb += 8)
                            Transpose8x8(b + (long)(jc + jr + jb) * ldb + pc + p0, ldb, d + p0 * NR + jb, NR);
                }
                int j = 0;
                for (; j < nr; j++)
                {
                    float* s = b + (long)(jc + jr + j) * ldb + pc;
                    float* dd = d + j;
                    for (int p = p0; p < kc; p++) dd[p * NR] = s[p];
                }
                for (; j < NR; j++)
                    for (int p = 0; p < kc; p++) d[p * NR + j] = 0f;
            }
        }
    }

    /// <summary>dst[i·ldd + j] = src[j·lds + i] for an 8×8 block (AVX unpack/shuffle/permute network).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, long lds, float* dst, long ldd)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + lds);
        var r2 = Avx.LoadVector256(src + 2 * lds); var r3 = Avx.LoadVector256(src + 3 * lds);
        var r4 = Avx.LoadVector256(src + 4 * lds); var r5 = Avx.LoadVector256(src + 5 * lds);
        var r6 = Avx.LoadVector256(src + 6 * lds); var r7 = Avx.LoadVector256(src + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }
}
