namespace Ddsm.Kernels.Tests;

/// <summary>
/// kernels/Generated/*.g.cs is what kernels/gen writes today (regenerate with `dotnet run --project kernels/gen`).
/// </summary>
[TestFixture]
public class GeneratedCodeTests
{
    [Test]
    public void GeneratedFilesAreUpToDate()
    {
        var dir = Path.Combine(Gen.Program.FindKernelsDir(), "Generated");
        foreach (var (name, text) in Gen.Program.Files())
        {
            var path = Path.Combine(dir, name);
            Assert.That(File.Exists(path), Is.True, $"{path} missing: run `dotnet run --project kernels/gen`");
            Assert.That(File.ReadAllText(path), Is.EqualTo(text),
                        $"{path} is stale: run `dotnet run --project kernels/gen`");
        }
    }

    [Test]
    public void TileLayoutsCoverEveryTileElementOnce()
    {
        // 128 threads × 32 accumulators must cover the 64×64 tile exactly once, in both layouts.
        foreach (var (name, coord) in new (string, Func<int, int, (int, int)>)[]
        {
            ("exact FP32",
             (tid, i) =>
                 { var (dm, dn) = Gen.TileGen.SimtCoord(i); return ((tid >> 4) * 8 + dm, (tid & 15) * 4 + dn); }),
            ("TF32 mma", (tid, i) =>
            {
                int warp = tid >> 5, lane = tid & 31;
                var (dm, dn) = Gen.TileGen.MmaCoord(i);
                return ((warp >> 1) * 32 + (lane >> 2) + dm, (warp & 1) * 32 + 2 * (lane & 3) + dn);
            }),
        })
        {
            var seen = new int[64, 64];
            for (int tid = 0; tid < 128; tid++)
                for (int i = 0; i < 32; i++)
                {
                    var (m, n) = coord(tid, i);
                    seen[m, n]++;
                }
            Assert.That(seen.Cast<int>().All(c => c == 1), Is.True, $"{name}: every element of the tile exactly once");
        }
    }
}
