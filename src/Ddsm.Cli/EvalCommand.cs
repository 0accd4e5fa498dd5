using System.CommandLine;
using Ddsm.Eval;
using Ddsm.IO;
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
        var data = new Option<string>("--data") { Description = "labelled data set (as train --data)", DefaultValueFactory = _ => "fmnist-embedded" };
        var steps = new Option<int>("--steps") { Description = "training steps", DefaultValueFactory = _ => 1500 };
        var outPath = new Option<string>("--out") { Description = "feature net file", DefaultValueFactory = _ => "runs/features.safetensors" };
        var device = Common.Device(); var seed = Common.Seed(); var cache = Common.CacheDir();
        var train = new Command("train-features", "train the LeNet-style feature network on the data set's labels") { data, steps, outPath, device, seed, cache };
        train.SetAction(p => Common.Guard(() =>
        {
            var net = TrainFeatures(p.GetValue(data)!, p.GetValue(cache)!, p.GetValue(steps), p.GetValue(device)!, p.GetValue(seed), p.GetValue(outPath)!);
            net.Dispose();
            return 0;
        }));

        var samples = new Option<string>("--samples") { Description = "raw samples written by `ddsm sample` (.safetensors)", Required = true };
        var features = new Option<string>("--features") { Description = "feature net file", DefaultValueFactory = _ => "runs/features.safetensors" };
        var refData = new Option<string>("--data") { Description = "reference data set", DefaultValueFactory = _ => "fmnist-embedded" };
        var dev2 = Common.Device(); var cache2 = Common.CacheDir();
        var score = new Command("score", "FD, KID and precision/recall of generated samples, with the real-vs-real baseline") { samples, features, refData, dev2, cache2 };
        score.SetAction(p => Common.Guard(() =>
        {
            var be = Common.CreateBackend(p.GetValue(dev2)!);
            using var net = FeatureNet.Load(be, p.GetValue(features)!);
            var ds = Common.LoadData(p.GetValue(refData)!, p.GetValue(cache2)!, net.ImageSize, net.InputChannels);
            var f = SafeTensors.Read(p.GetValue(samples)!);
            var t = f["samples"];
            int n = (int)t.Shape[0];
            var (train, held) = FeatureNetTrainer.Split(ds, Math.Min(n, ds.Count / 2), 7);
            var ev = new Evaluator(net, ReferenceSet.Build(net, train));
            var r = ev.Evaluate(t.ToFloat(), n);
            AnsiConsole.WriteLine(r.WithBaseline(ev.Baseline(held, Math.Min(n, held.Count))));
            return 0;
        }));
        return new Command("eval", "sample-quality metrics") { train, score };
    }

    public static FeatureNet TrainFeatures(string dataSpec, string cache, int steps, string device, ulong seed, string outPath)
    {
        var be = Common.CreateBackend(device);
        var ds = Common.LoadData(dataSpec, cache, 32, 1);
        var (train, held) = FeatureNetTrainer.Split(ds, Math.Max(1, ds.Count / 10), seed + 11);
        AnsiConsole.MarkupLineInterpolated($"feature net: training {steps} steps on {train.Count:N0} images of {ds.Name} ({held.Count:N0} held out)");
        var net = FeatureNetTrainer.Train(be, train, new FeatureNetTrainOptions(Steps: steps, Seed: seed + 1));
        double acc = FeatureNetTrainer.Accuracy(net, held);
        net.Info = net.Info with { HeldOutAccuracy = acc };
        net.Save(outPath);
        AnsiConsole.MarkupLineInterpolated($"feature net: held-out accuracy {acc:P1} → {outPath}");
        return net;
    }
}
