using System.Text.Json.Serialization;

namespace Ddsm.Search;

[JsonConverter(typeof(JsonStringEnumConverter<SearchMode>))]
public enum SearchMode
{
    /// <summary>NSGA-II on (quality, cost); the weighted score only picks the final "best" off the front.</summary>
    Pareto,
    /// <summary>Single objective: tournament and survival on quality + λ·cost.</summary>
    Weighted,
}

/// <summary>
/// Everything that defines a search run; saved in the state file so that a resume cannot silently
/// continue with different settings. Defaults are the DDSM paper's (population 50, 10 generations,
/// mutation rate 0.001, λ = 0.1 as for CIFAR-10).
/// </summary>
public sealed record SearchOptions
{
    /// <summary>Diffusion timesteps the strategy covers.</summary>
    public int T { get; init; } = 1000;
    /// <summary>Allowed widths (a gene indexes this list), e.g. UNetConfig.Widths.</summary>
    public double[] Widths { get; init; } = [0.25, 0.5, 0.75, 1.0];
    /// <summary>Consecutive timesteps sharing one gene (1 = a gene per timestep).</summary>
    public int BlockSize { get; init; } = 1;
    public int PopulationSize { get; init; } = 50;
    public int Generations { get; init; } = 10;
    /// <summary>Per-gene probability of replacing it by another allowed width.</summary>
    public double MutationRate { get; init; } = 0.001;
    /// <summary>Probability a parent pair is recombined by single-point crossover (else copied).</summary>
    public double CrossoverRate { get; init; } = 0.9;
    /// <summary>λ of the weighted score quality + λ·cost (paper: 0.1 CIFAR-10, 0.25 CelebA).</summary>
    public double Lambda { get; init; } = 0.1;
    public SearchMode Mode { get; init; } = SearchMode.Pareto;
    public ulong Seed { get; init; } = 0;
    /// <summary>
    /// Rewrite the state file after every new evaluation, not only after every generation, so a
    /// kill mid-generation loses no evaluation (each costs minutes of sampling; the write is cheap).
    /// </summary>
    public bool SaveEveryEvaluation { get; init; } = true;

    public int GeneCount => Genome.GeneCount(T, BlockSize);

    public void Validate()
    {
        if (T < 1) throw new ArgumentException($"search: T = {T} < 1");
        if (Widths.Length < 1 || Widths.Length > Genome.MaxWidths)
            throw new ArgumentException($"search: {Widths.Length} widths (need 1..{Genome.MaxWidths})");
        foreach (var w in Widths)
            if (!(w > 0 && w <= 1)) throw new ArgumentException($"search: width {w} outside (0, 1]");
        if (BlockSize < 1 || BlockSize > T)
            throw new ArgumentException($"search: block size {BlockSize} outside [1, T = {T}]");
        if (PopulationSize < 2) throw new ArgumentException($"search: population {PopulationSize} < 2");
        if (Generations < 0) throw new ArgumentException($"search: generations {Generations} < 0");
        if (!(MutationRate >= 0 && MutationRate <= 1))
            throw new ArgumentException($"search: mutation rate {MutationRate} outside [0, 1]");
        if (!(CrossoverRate >= 0 && CrossoverRate <= 1))
            throw new ArgumentException($"search: crossover rate {CrossoverRate} outside [0, 1]");
        if (!(Lambda >= 0) || double.IsInfinity(Lambda))
            throw new ArgumentException($"search: λ = {Lambda} must be finite and ≥ 0");
    }
}

/// <summary>
/// A progress report: after each real evaluation (memo hits are not reported) and after each
/// completed generation (<see cref="GenerationDone"/>; generation 0 = the initial population).
/// Best = the lowest weighted score quality + λ·cost among all candidates evaluated so far.
/// </summary>
public readonly record struct SearchProgress(
    int Generation, int Generations, bool GenerationDone, int Evaluations, double BestQuality, double BestCost,
    double BestScore);
