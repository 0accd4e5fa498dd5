using System.Diagnostics;
using Ddsm.Engine;
using Ddsm.IO;

namespace Ddsm.Tests.IO;

/// <summary>
/// Seeded mutation fuzzing: every case mutates a valid file and feeds it to a reader. Allowed outcomes
/// are a clean read or <see cref="DataFormatException"/>; anything else (IndexOutOfRange, OutOfMemory,
/// InvalidData leaking from a decompressor, …), a case over the time bound, or a case that allocates
/// more than the cap fails the test with the seed and case number, so every failure is reproducible.
/// The time bound is per case (5 s, against a typical few µs); a hung reader fails the test instead of hanging it.
/// </summary>
internal static class Fuzz
{
    public sealed record Stats(int Cases, int Accepted, int Rejected, TimeSpan Elapsed, long MaxAllocated)
    {
        public override string ToString() =>
            $"{Cases} cases: {Accepted} read cleanly, {Rejected} DataFormatException, max {MaxAllocated / 1024} KiB " +
            $"allocated per case, {Elapsed.TotalSeconds:F2} s";
    }

    /// <param name="hot">Offsets of header fields: "lie" mutations overwrite 4 or 8 bytes there with extreme
    /// values.</param>
    public static Stats Run(string what, byte[] valid, Func<byte[], byte[]> mutateHook, Action<byte[]> read, int cases,
        ulong seed, int[]? hot = null, long allocCap = 32 << 20, TimeSpan? bound = null)
    {
        var limit = bound ?? TimeSpan.FromSeconds(5);
        // DDSM_FUZZ_SCALE=20 runs a deeper campaign by hand; the suite itself stays fast at 1.
        if (int.TryParse(Environment.GetEnvironmentVariable("DDSM_FUZZ_SCALE"), out int scale) && scale > 1)
            cases *= scale;
        var rng = new Rng(seed);
        int accepted = 0, rejected = 0;
        long maxAlloc = 0;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            byte[] input = mutateHook(Mutate(valid, rng, hot ?? []));
            Exception? error = null; long allocated = 0;
            var task = Task.Run(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                try { read(input); }
                catch (Exception e) { error = e; }
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            });
            if (!task.Wait(limit))
                Assert.Fail($"{what}: case {i} (seed {seed}) did not finish within {limit.TotalSeconds} s (input " +
                            $"{input.Length} bytes)");
            maxAlloc = Math.Max(maxAlloc, allocated);
            if (error is null) accepted++;
            else if (error is DataFormatException) rejected++;
            else Assert.Fail(
                $"{what}: case {i} (seed {seed}) threw {error.GetType().Name} instead of DataFormatException: {error}");
            Assert.That(allocated, Is.LessThanOrEqualTo(allocCap),
                        $"{what}: case {i} (seed {seed}) allocated {allocated} bytes from a {input.Length}-byte input");
        }
        var stats = new Stats(cases, accepted, rejected, sw.Elapsed, maxAlloc);
        TestContext.Out.WriteLine($"{what}: {stats}");
        // A fuzzer that never gets a rejection is not reaching the validation at all.
        Assert.That(rejected, Is.GreaterThan(cases / 20), $"{what}: too few rejections, mutations are not effective");
        return stats;
    }

    private static readonly ulong[] Extremes =
    [
        0, 1, 0x7F, 0xFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF,
        1UL << 40, 3073, 784, 65536,
    ];

    public static byte[] Mutate(byte[] src, Rng rng, int[] hot)
    {
        var b = new List<byte>(src);
        int rounds = 1 + (rng.NextInt(4) == 0 ? rng.NextInt(3) : 0);   // mostly single mutations, sometimes stacked
        for (int r = 0; r < rounds; r++)
        {
            // Header bytes are where the interesting lies are: half the positions land in the first 64 bytes.
            int Pos(int extra = 0) =>
                b.Count + extra <= 0 ? 0 : rng.NextInt(2) == 0 ? rng.NextInt(Math.Min(64, b.Count + extra))
                    : rng.NextInt(b.Count + extra);
            switch (rng.NextInt(hot.Length > 0 ? 8 : 7))
            {
                case 0:   // bit flips
                    if (b.Count == 0) break;
                    for (int k = 1 + rng.NextInt(8); k > 0; k--) { int p = Pos(); b[p] ^= (byte)(1 << rng.NextInt(8)); }
                    break;
                case 1:   // random bytes
                    if (b.Count == 0) break;
                    for (int k = 1 + rng.NextInt(4); k > 0; k--) b[Pos()] = (byte)rng.NextInt(256);
                    break;
                case 2:   // truncation
                    int cut = rng.NextInt(b.Count + 1);
                    b.RemoveRange(cut, b.Count - cut);
                    break;
                case 3:   // insertion
                {
                    int at = Pos(1), n = 1 + rng.NextInt(16);
                    for (int k = 0; k < n; k++) b.Insert(Math.Min(at, b.Count), (byte)rng.NextInt(256));
                    break;
                }
                case 4:   // deletion of a range
                {
                    if (b.Count == 0) break;
                    int at = Pos(), n = Math.Min(1 + rng.NextInt(32), b.Count - at);
                    b.RemoveRange(at, n);
                    break;
                }
                case 5:   // duplicate a slice elsewhere (repeated chunks / records)
                {
                    if (b.Count < 2) break;
                    int from = rng.NextInt(b.Count), n = Math.Min(1 + rng.NextInt(64), b.Count - from),
                        to = rng.NextInt(b.Count);
                    b.InsertRange(to, b.GetRange(from, n));
                    break;
                }
                case 6:   // an extreme value at a random position
                    WriteValue(b, Pos(), Extremes[rng.NextInt(Extremes.Length)], rng);
                    break;
                default:  // an extreme value in a header field: length / dimension / offset lies
                    WriteValue(b, hot[rng.NextInt(hot.Length)], Extremes[rng.NextInt(Extremes.Length)], rng);
                    break;
            }
        }
        return b.ToArray();
    }

    private static void WriteValue(List<byte> b, int at, ulong v, Rng rng)
    {
        int width = rng.NextInt(2) == 0 ? 4 : 8;
        bool bigEndian = rng.NextInt(2) == 0;
        for (int k = 0; k < width && at + k < b.Count; k++)
        {
            int shift = 8 * (bigEndian ? width - 1 - k : k);
            b[at + k] = (byte)(v >> shift);
        }
    }

    /// <summary>
    /// Runs <paramref name="read"/> and requires a DataFormatException whose message contains
    /// <paramref name="fragment"/>.
    /// </summary>
    public static void Rejects(Action read, string fragment)
    {
        var e = Assert.Throws<DataFormatException>(() => read());
        Assert.That(e!.Message, Does.Contain(fragment).IgnoreCase);
    }
}
