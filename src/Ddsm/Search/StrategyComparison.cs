using System.Diagnostics;

namespace Ddsm.Search;

/// <summary>
/// One row of the comparison table; <see cref="TrainingHours"/> where rows differ in how they were trained.
/// </summary>
public sealed record ComparisonRow(string Name, double Gflops, double WallMsPerImage, EvalResult Scores,
                                   double? TrainingHours = null);

/// <summary>
/// The table the DDSM claim is judged by: full width, the searched strategy, and the best uniform
/// width of about the searched GFLOPs (the cheapest uniform width costing at least as much), each
/// scored on the same N images from the same noise, beside the real-vs-real baseline at that N and
/// the run-to-run spread (full width sampled from a second seed).
/// </summary>
public static class StrategyComparison
{
    public static (List<ComparisonRow> Rows, EvalResult Baseline, double FdSpread) Run(
        Func<ulong, SamplingEvaluator> makeEvaluator, Evaluator scorer, Data.ImageDataset heldOut, UNetConfig cfg,
        StepStrategy searched, int n, ulong seed, Action<string>? log = null, Action<string, float[]>? onSamples = null)
    {
        var ev = makeEvaluator(seed);
        var T = searched.T;
        var rows = new List<ComparisonRow>();
        ComparisonRow Row(string name, StepStrategy s, SamplingEvaluator e) =>
            Score(name, e, s, scorer, log: log, onSamples: onSamples);
        var full = StepStrategy.Uniform(cfg.MaxWidth, T);
        rows.Add(Row("full width", full, ev));
        rows.Add(Row("searched", searched, ev));
        double target = rows[1].Gflops;
        // Cheapest uniform width whose cost is at least the searched strategy's (else the widest).
        var uniform = cfg.Widths.Select(w => (w, g: ev.Cost(StepStrategy.Uniform(w, T))))
            .Where(p => p.g >= target - 1e-9).OrderBy(p => p.g).Select(p => p.w).DefaultIfEmpty(cfg.MaxWidth).First();
        rows.Add(Row($"uniform {uniform:0.###}", StepStrategy.Uniform(uniform, T), ev));
        var second = Row("full width (seed 2)", full, makeEvaluator(seed + 1000));
        double spread = Math.Abs(second.Scores.Fd - rows[0].Scores.Fd);
        var baseline = scorer.Baseline(heldOut, Math.Min(n, heldOut.Count));
        return (rows, baseline, spread);
    }

    /// <summary>
    /// Samples the evaluator's N images with <paramref name="strategy"/>, scores them, and times and costs them.
    /// </summary>
    public static ComparisonRow Score(string name, SamplingEvaluator ev, StepStrategy strategy, Evaluator scorer,
        double? trainingHours = null, Action<string>? log = null, Action<string, float[]>? onSamples = null)
    {
        log?.Invoke($"scoring {name} …");
        var sw = Stopwatch.StartNew();
        var images = ev.Sample(strategy);
        double ms = sw.Elapsed.TotalMilliseconds / ev.Count;
        onSamples?.Invoke(name, images);
        return new ComparisonRow(name, ev.Cost(strategy), ms, scorer.Evaluate(images, ev.Count), trainingHours);
    }

    public static string Markdown(IEnumerable<ComparisonRow> rows, EvalResult baseline, double spread)
    {
        var list = rows.ToList();
        bool hours = list.Any(r => r.TrainingHours is not null);
        var sb = new StringBuilder();
        sb.AppendLine("| strategy | FD | KID | precision | recall | GFLOPs/image | wall ms/image |" +
                      (hours ? " training h |" : ""));
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|" + (hours ? "---:|" : ""));
        foreach (var r in list)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.Scores.Fd:F3} | {r.Scores.Kid.Mean:G4} ± {r.Scores.Kid.Std:G3} | " +
                $"{r.Scores.PrecisionRecall.Precision:F3} | {r.Scores.PrecisionRecall.Recall:F3} | {r.Gflops:F2} | " +
                $"{r.WallMsPerImage:F1} |") +
                (hours ? (r.TrainingHours is { } h ? string.Create(CultureInfo.InvariantCulture, $" {h:F2} |") : " – |")
                    : ""));
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"| real vs real (held-out, same N) | {baseline.Fd:F3} | {baseline.Kid.Mean:G4} ± {baseline.Kid.Std:G3} " +
            $"| {baseline.PrecisionRecall.Precision:F3} | {baseline.PrecisionRecall.Recall:F3} | – | – |") +
                (hours ? " – |" : ""));
        sb.AppendLine().AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Run-to-run spread of FD (full width, two noise seeds): {spread:F3}.") +
            " KID: the unscaled MMD² (cubic kernel on the feature net's features; 0 for equal distributions, can be " +
            "negative), mean ± std over random subsets.");
        return sb.ToString();
    }
}
