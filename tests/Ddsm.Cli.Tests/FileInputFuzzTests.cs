using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.IO;
using Ddsm.Tests.IO;

namespace Ddsm.Cli.Tests;

/// <summary>
/// Seeded mutation fuzzing of every file the CLI reads (checkpoints, feature nets, sample files, strategy files
/// in JSON and as the DDSM release's plain list), through the real verbs in this process. Every case must end in
/// exit 0, or exit 1 or 2 with exactly one "error: " line on stderr, never a stack trace, and must leave its input
/// file byte for byte as it was. Mutations come from the IO readers' fuzzer (tests/Ddsm.Tests/IO/Fuzz.cs). Files
/// with checksums reject almost every mutation at the checksum, so each kind is also fuzzed as written before
/// checksums: that reaches the checks behind them (shapes, finiteness, config, fingerprint).
/// </summary>
public class FileInputFuzzTests
{
    /// <summary>
    /// Cases per file kind and variant: 8 × 500 = 4,000 in all, about half a minute on the 2-core machine.
    /// </summary>
    private const int Cases = 500;

    private static readonly Lazy<Inputs> Files = new(Inputs.Make);

    private sealed record Inputs(string Dir, string Checkpoint, string FeatureNet, string Samples, string SmallData)
    {
        /// <summary>A tiny model (8×8 images, 1 step), a feature net and samples it scores against 40 images.</summary>
        public static Inputs Make()
        {
            // tmpfs where there is one: each accepted case writes (and fsyncs) its outputs.
            var root = Directory.Exists("/dev/shm")
                ? Path.Combine("/dev/shm", "ddsm-fuzz-" + Guid.NewGuid().ToString("N")[..8])
                : Path.Combine(Shared.Root, "fuzz");
            var dir = Path.Combine(root, "inputs");
            Directory.CreateDirectory(dir);
            var small = Path.Combine(dir, "small.ddsmimg");
            DatasetCache.Write(small,
                               Datasets.EmbeddedFashionMnist().Subset(Enumerable.Range(0, 40).ToArray(), "small"));
            var run = Path.Combine(dir, "tiny");
            // One level of 16 channels at full width only: a 0.3 MB checkpoint (the tiny preset's is 12 MB).
            Ddsm.Ok("train", "--preset", "tiny", "--channels", "16", "--mult", "1", "--widths", "1", "--steps", "1",
                "--batch", "2", "--sandwich-n", "1", "--warmup", "1", "--out", run, "--cache", Shared.Cache);
            var net = Path.Combine(dir, "features.safetensors");
            Ddsm.Ok("eval", "train-features", "--data", "cache:" + small, "--steps", "2", "--out", net, "--cache",
                    Shared.Cache);
            var png = Path.Combine(dir, "samples.png");
            Ddsm.Ok("sample", "--checkpoint", Shared.Trained.Dir, "--steps", "1", "-n", "4", "--out", png);
            return new Inputs(root, Directory.GetFiles(Path.Combine(run, "checkpoints")).Single(), net,
                Path.ChangeExtension(png, ".safetensors"), small);
        }
    }

    /// <summary>The file as written before checksums: the same bytes without the checksum metadata.</summary>
    private static byte[] Unstamped(string path)
    {
        var f = SafeTensors.Read(path);
        var meta = f.Metadata.Where(kv => kv.Key != TensorChecksums.Key).ToDictionary(kv => kv.Key, kv => kv.Value);
        return SafeTensors.Serialize(f.Tensors, meta);
    }

    private static string StrategyJson() => Diffusion.StepStrategy.Uniform(1.0, 1000).ToJson();

    private static string StrategyList() => string.Join("\n", Enumerable.Repeat("1.0", 1000));

    [TestCase("checkpoint", true)]
    [TestCase("checkpoint", false)]
    [TestCase("feature net", true)]
    [TestCase("feature net", false)]
    [TestCase("samples", true)]
    [TestCase("samples", false)]
    [TestCase("strategy json", true)]
    [TestCase("strategy list", true)]
    public void MutatedInputsGiveOneLineErrorsAndAreNeverChanged(string kind, bool stamped)
    {
        var f = Files.Value;
        byte[] valid = kind switch
        {
            "checkpoint" => stamped ? File.ReadAllBytes(f.Checkpoint) : Unstamped(f.Checkpoint),
            "feature net" => stamped ? File.ReadAllBytes(f.FeatureNet) : Unstamped(f.FeatureNet),
            "samples" => stamped ? File.ReadAllBytes(f.Samples) : Unstamped(f.Samples),
            "strategy json" => System.Text.Encoding.UTF8.GetBytes(StrategyJson()),
            _ => System.Text.Encoding.UTF8.GetBytes(StrategyList()),
        };
        var ext = kind.StartsWith("strategy", StringComparison.Ordinal) ? ".txt" : ".safetensors";
        var input = Path.Combine(f.Dir, $"case-{kind.Replace(' ', '-')}{ext}");
        var outPng = Path.Combine(f.Dir, "out", "s.png");
        string[] Args() => kind switch
        {
            "checkpoint" => ["sample", "--checkpoint", input, "--steps", "1", "-n", "1", "--out", outPng],
            "feature net" => ["eval", "score", "--samples", f.Samples, "--features", input, "--cache", Shared.Cache],
            "samples" => ["eval", "score", "--samples", input, "--features", f.FeatureNet, "--cache", Shared.Cache],
            _ =>
            [
                "sample", "--checkpoint", f.Checkpoint, "--steps", "2", "-n", "1", "--strategy", input, "--out", outPng,
            ],
        };
        var others = new[] { f.Checkpoint, f.FeatureNet, f.Samples }.ToDictionary(p => p, File.ReadAllBytes);

        var rng = new Rng((ulong)kind.Length * 7919UL + (stamped ? 1UL : 2UL));
        int ok = 0, usage = 0, bad = 0;
        var usageErrors = new SortedSet<string>(StringComparer.Ordinal);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < Cases; i++)
        {
            var bytes = Fuzz.Mutate(valid, rng, []);
            File.WriteAllBytes(input, bytes);
            var r = Ddsm.Run(Args());
            string where = $"{kind}{(stamped ? "" : " (no checksums)")}: case {i}";
            Assert.That(r.Code, Is.AnyOf(0, 1, 2), $"{where}\n{r}");
            Assert.That(r.Out + r.Err, Does.Not.Contain("   at ").And.Not.Contain("Exception:"),
                        $"{where}: a stack trace\n{r}");
            if (r.Code != 0)
            {
                Assert.That(r.Err, Does.StartWith("error: "), $"{where}\n{r}");
                Assert.That(r.Err.TrimEnd('\n').Split('\n'), Has.Length.EqualTo(1), $"{where}: not one line\n{r}");
            }
            // SequenceEqual, not Is.EqualTo: NUnit compares arrays element by element through object equality.
            Assert.That(File.ReadAllBytes(input).AsSpan().SequenceEqual(bytes), Is.True,
                        $"{where}: the input file changed");
            if (r.Code == 0) ok++;
            else if (r.Code == 1) { usage++; usageErrors.Add(r.Err.Length > 90 ? r.Err[..90] : r.Err.TrimEnd()); }
            else bad++;
        }
        foreach (var (path, before) in others)
            Assert.That(File.ReadAllBytes(path).AsSpan().SequenceEqual(before), Is.True, path + " changed");
        TestContext.Out.WriteLine($"{kind}{(stamped ? "" : " (no checksums)")}: {Cases} cases, {ok} exit 0, {usage} " +
                                  $"exit 1, {bad} exit 2, {sw.Elapsed.TotalSeconds:F1} s");
        foreach (var e in usageErrors.Take(4)) TestContext.Out.WriteLine("  exit 1: " + e);
        Assert.That(usage + bad, Is.GreaterThan(Cases / 20), "the mutations reach the validation");
    }

    [OneTimeTearDown]
    public void RemoveTmpfsCopy()
    {
        if (Files.IsValueCreated)
            try { Directory.Delete(Files.Value.Dir, true); } catch (IOException) { }
    }
}
