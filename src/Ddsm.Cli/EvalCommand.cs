using System.CommandLine;
using Ddsm.Runs;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// <c>ddsm eval train-features</c>: the feature network the metrics use (no Inception weights can be
/// downloaded here); <c>ddsm eval score</c>: FD, KID, precision/recall of a sample file with the
/// real-vs-real baseline at the same N beside it.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var data = Opt.Of<string>("--data", "fmnist-embedded", "labelled data set (as train --data)");
        var steps = Opt.Of<int>("--steps", 1500, "training steps");
        var outPath = Opt.Of<string>("--out", "runs/features.safetensors", "feature net file");
        var device = Common.Device(); var seed = Common.Seed(); var cache = Common.CacheDir();
        var train = new Command("train-features", "train the LeNet-style feature network on the data set's labels")
        {
            data, steps, outPath, device, seed, cache,
        };
        train.SetAction(p => Common.Guard(() =>
        {
            TrainFeatures(p.GetValue(data)!, p.GetValue(cache)!, p.GetValue(steps), p.GetValue(device)!,
                p.GetValue(seed), p.GetValue(outPath)!);
            return 0;
        }));

        var samples = Opt.Required<string>("--samples", "raw samples written by `ddsm sample` (.safetensors)");
        var features = Opt.Of<string>("--features", "runs/features.safetensors", "feature net file");
        var refData = Opt.Of<string?>("--data", "reference data set (default: the one the feature net was trained on)");
        var otherData = Opt.Of<bool>("--other-data",
            "score against --data even though the feature net was trained on another data set");
        var dev2 = Common.Device(); var cache2 = Common.CacheDir();
        var score =
            new Command("score", "FD, KID and precision/recall of generated samples, with the real-vs-real baseline")
        {
            samples, features, refData, otherData, dev2, cache2,
        };
        score.SetAction(p => Common.Guard(() =>
        {
            var (samplesScore, baseline, reference) = Scoring.ScoreFile(Devices.Create(p.GetValue(dev2)!),
                p.GetValue(samples)!, p.GetValue(features)!, p.GetValue(refData), p.GetValue(cache2)!,
                p.GetValue(otherData));
            AnsiConsole.WriteLine(samplesScore.WithBaseline(baseline));
            AnsiConsole.WriteLine($"reference: {reference}; KID is the unscaled MMD² (cubic kernel on the feature " +
                                  $"net's features), 0 for equal distributions");
            return 0;
        }));
        return new Command("eval", "sample-quality metrics") { train, score };
    }

    /// <summary>Trains, saves and describes the feature net.</summary>
    public static void TrainFeatures(string dataSpec, string cache, int steps, string device, ulong seed,
                                     string outPath)
    {
        if (steps <= 0) throw new ArgumentException($"--steps must be positive, got {steps}");
        OutputFiles.Check([outPath], [], force: false);
        using var net =
            FeatureNetRun.Train(Devices.Create(device), dataSpec, cache, steps, seed, outPath, AnsiConsole.WriteLine);
        AnsiConsole.WriteLine($"feature net: held-out accuracy {net.Info.HeldOutAccuracy:P1} → {outPath}");
    }
}
