namespace Ddsm.Runs;

/// <summary>The search's report.md, and the same body for reports that include a search (the quickstart's).</summary>
public static class SearchReport
{
    public static string Markdown(SearchOutcome o) => "# DDSM search report\n\n" + Body(o, "");

    /// <summary>
    /// What was searched, the comparison table and the files written; <paramref name="dir"/> is the path of the
    /// search's output directory from where the report including it lies ("" in the search's own report).
    /// </summary>
    public static string Body(SearchOutcome o, string dir)
    {
        var (s, opts) = (o.Settings, o.Options);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"Checkpoint `{o.CheckpointPath}` (model `{o.ModelName}`{(o.ModelNote is { } n ? "; " + n : "")}), " +
            $"sampler {s.Sampler} with {s.SamplerSteps} steps, N = {s.Count} images per score, features: " +
            $"`{s.Features}`.");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"Search: population {opts.PopulationSize}, {opts.Generations} generations, {opts.GeneCount} genes of " +
            $"{opts.BlockSize} timesteps, mutation {opts.MutationRate}, λ = {opts.Lambda}; {o.Evaluations} " +
            $"strategies evaluated.");
        sb.AppendLine().Append(StrategyComparison.Markdown(o.Rows, o.Baseline, o.FdSpread)).AppendLine();
        sb.AppendLine($"Files: `{dir}best.json` (strategy), `{dir}pareto.csv` (front), `{dir}best.svg` (width vs " +
                      $"timestep), `{dir}samples.png` (searched strategy).");
        return sb.ToString();
    }
}
