namespace Ddsm.Search;

/// <summary>A candidate's two objectives, both minimised.</summary>
public readonly record struct Objectives(double Quality, double Cost)
{
    /// <summary>The paper's scalar objective: quality + λ·cost (FD + λ·GFLOPs; λ 0.1 CIFAR-10, 0.25 CelebA).</summary>
    public double Weighted(double lambda) => Quality + lambda * Cost;

    /// <summary>NaN is mapped to +∞ so a failed candidate is dominated instead of poisoning comparisons.</summary>
    public static Objectives Sanitised(double quality, double cost) =>
        new(double.IsNaN(quality) ? double.PositiveInfinity : quality,
            double.IsNaN(cost) ? double.PositiveInfinity : cost);
}

/// <summary>An evaluated genome.</summary>
public sealed record Individual(Genome Genome, Objectives Objectives)
{
    public double Quality => Objectives.Quality;
    public double Cost => Objectives.Cost;
}
