namespace Ddsm.Search;

/// <summary>
/// The Pareto front as CSV: genes,quality,cost,weighted_score — one row per individual, numbers in
/// invariant culture with round-trip precision. Gene strings are base-36 digits, so never need quoting.
/// </summary>
public static class ParetoCsv
{
    public const string Header = "genes,quality,cost,weighted_score";

    public static string Format(IEnumerable<Individual> front, double lambda)
    {
        var sb = new StringBuilder(Header).Append('\n');
        foreach (var i in front)
            sb.Append(i.Genome.Key).Append(',')
              .Append(i.Quality.ToString("R", CultureInfo.InvariantCulture)).Append(',')
              .Append(i.Cost.ToString("R", CultureInfo.InvariantCulture)).Append(',')
              .Append(i.Objectives.Weighted(lambda).ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        return sb.ToString();
    }

    public static void Write(string path, IEnumerable<Individual> front, double lambda) =>
        AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(Format(front, lambda)));
}
