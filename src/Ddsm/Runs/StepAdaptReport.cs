namespace Ddsm.Runs;

/// <summary>The step-adaptive run's report.md: the plan, each group's pruning and losses, the comparison.</summary>
public static class StepAdaptReport
{
    public static string Markdown(StepAdaptSession session, StepAdaptiveResult result, StepAdaptComparison? comparison,
        string? table, double seconds)
    {
        var (s, cfg, plan) = (session.Settings, session.BaseConfig, result.Plan);
        var ft = s.Options.FineTune;
        var inv = CultureInfo.InvariantCulture;
        var r = new StringBuilder();
        r.AppendLine("# Step-adaptive training report").AppendLine();
        r.AppendLine(inv, $"Base `{session.BasePath}` (model `{cfg.Name}`, widths {string.Join(", ", cfg.Widths)}); " +
                          $"data {session.Data.Name}; device {session.Backend.Name}; seed {s.Seed}.");
        r.AppendLine(inv, $"Fine-tuning per group: {s.Options.StepsPerGroup} steps of batch {ft.BatchSize}, lr " +
                          $"{ft.Lr}, EMA {ft.EmaDecay}, sandwich over the widths up to the group's; pruning: " +
                          $"{s.Options.Prune}.").AppendLine();
        r.AppendLine("## Plan").AppendLine().AppendLine("```").AppendLine(plan.Describe(result.Groups))
            .AppendLine("```").AppendLine();
        r.AppendLine("Base model ε-MSE per group and width (fixed batches from the training data, same for " +
                     "every cell):").AppendLine();
        r.AppendLine("| group | t | " + string.Join(" | ", plan.LossWidths.Select(w => $"w {w}")) +
                     " | rise at the smallest width |");
        r.AppendLine("|---|---|" + string.Concat(plan.LossWidths.Select(_ => "---:|")) + "---:|");
        var sens = StepAdaptivePlan.PruningSensitivity(plan.BaseLoss);
        foreach (var g in result.Groups.Groups)
            r.AppendLine(inv, $"| {g.Index + 1} | {g.TFirst}–{g.TLast} | " +
                              $"{string.Join(" | ", plan.BaseLoss[g.Index].Select(v => v.ToString("F4", inv)))} | " +
                              $"{sens[g.Index]:P1} |");
        r.AppendLine().AppendLine("## Groups").AppendLine();
        r.AppendLine("ε-MSE at the group's width on the group's timesteps (same fixed batches): the base model's own " +
                     "prefix, importance-ordered, and after fine-tuning (EMA).").AppendLine();
        r.AppendLine(
            "| group | width | pruning | prefix | importance-ordered | fine-tuned | steps | fine-tuning min |");
        r.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|");
        foreach (var g in result.Reports)
            r.AppendLine(inv, $"| {g.Group + 1} | {g.Width} | {g.Pruning} | {g.PrefixLoss:F4} | " +
                              $"{(g.ImportanceLoss is { } il ? il.ToString("F4", inv) : "–")} | {g.FinalLoss:F4} | " +
                              $"{g.Steps} | {g.TrainSeconds / 60:F1} |");
        r.AppendLine();
        if (comparison is not null)
        {
            r.AppendLine("## Comparison").AppendLine();
            var searched = s.Strategy is null ? "" : $"; searched strategy `{s.Strategy}`";
            var hours = comparison.BaseHoursKnown ? "" : " (its metrics.jsonl was not found)";
            r.AppendLine(inv, $"{s.Sampler}, {s.SamplerSteps} steps, N = {s.Count} images per row from the same " +
                              $"noise; features `{s.Features}`{searched}. Training h: the base run's step " +
                              $"time{hours}, plus the groups' fine-tuning for the step-adaptive rows.");
            r.AppendLine().Append(table);
        }
        else
            r.AppendLine("No `--features` given: no sample-quality comparison " +
                         "(run `ddsm eval train-features`, then `--resume --features FILE`).");
        r.AppendLine().AppendLine(inv, $"Grouped checkpoint: `{result.CheckpointPath}` (`ddsm sample --checkpoint` " +
                                       $"takes it). Total time of this invocation: {Durations.Text(seconds)}.");
        return r.ToString();
    }
}
