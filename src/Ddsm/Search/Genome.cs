namespace Ddsm.Search;

/// <summary>
/// One candidate of the search: a gene per block of <see cref="BlockSize"/> consecutive timesteps
/// (block 1 = a gene per timestep), each gene an index into the allowed width list. Blocks shrink the
/// search space T-fold → T/k-fold: with T = 1000 and a 0.001 mutation rate the paper mutates one
/// gene per child on average, and neighbouring steps want nearly the same width anyway.
/// Immutable; <see cref="Key"/> (one base-36 digit per gene) is its identity in memo and state files.
/// </summary>
public sealed class Genome : IEquatable<Genome>
{
    private const string Digits = "0123456789abcdefghijklmnopqrstuvwxyz";
    /// <summary>The most allowed widths a gene can index (one base-36 digit per gene).</summary>
    public const int MaxWidths = 36;

    private readonly int[] _genes;
    public IReadOnlyList<int> Genes => _genes;
    public int BlockSize { get; }
    public string Key { get; }
    public int Length => _genes.Length;

    public Genome(int[] genes, int blockSize)
    {
        if (genes.Length == 0) throw new ArgumentException("genome: no genes");
        if (blockSize < 1) throw new ArgumentException($"genome: block size {blockSize} < 1");
        foreach (var g in genes)
            if (g < 0 || g >= MaxWidths) throw new ArgumentException($"genome: gene {g} outside [0, {MaxWidths})");
        _genes = (int[])genes.Clone();
        BlockSize = blockSize;
        Key = string.Create(_genes.Length, _genes,
                            (span, gs) => { for (int i = 0; i < gs.Length; i++) span[i] = Digits[gs[i]]; });
    }

    /// <summary>Genes needed to cover T timesteps with blocks of k (the last block may be short).</summary>
    public static int GeneCount(int T, int blockSize) => (T + blockSize - 1) / blockSize;

    public static Genome Uniform(int widthIndex, int geneCount, int blockSize) =>
        new(Enumerable.Repeat(widthIndex, geneCount).ToArray(), blockSize);

    public static Genome Random(Rng rng, int geneCount, int widthCount, int blockSize)
    {
        var g = new int[geneCount];
        for (int i = 0; i < g.Length; i++) g[i] = rng.NextInt(widthCount);
        return new Genome(g, blockSize);
    }

    /// <summary>Reads <see cref="Key"/> back (the format of state files).</summary>
    public static Genome Parse(string key, int blockSize)
    {
        var g = new int[key.Length];
        for (int i = 0; i < key.Length; i++)
        {
            int d = Digits.IndexOf(char.ToLowerInvariant(key[i]));
            if (d < 0) throw new FormatException($"genome: '{key[i]}' at {i} is not a base-36 gene digit");
            g[i] = d;
        }
        return new Genome(g, blockSize);
    }

    /// <summary>Expands the blocks: timestep t gets widths[Genes[t / BlockSize]].</summary>
    public StepStrategy ToStrategy(int T, IReadOnlyList<double> widths)
    {
        if (GeneCount(T, BlockSize) != _genes.Length)
            throw new ArgumentException($"genome: {_genes.Length} genes of block {BlockSize} do not cover T = {T} " +
                                        $"(need {GeneCount(T, BlockSize)})");
        var w = new double[T];
        for (int t = 0; t < T; t++)
        {
            int g = _genes[t / BlockSize];
            if (g >= widths.Count)
                throw new ArgumentException($"genome: gene {g} but only {widths.Count} allowed widths");
            w[t] = widths[g];
        }
        return new StepStrategy(w);
    }

    public override string ToString() => Key;
    public bool Equals(Genome? other) => other is not null && other.BlockSize == BlockSize && other.Key == Key;
    public override bool Equals(object? obj) => Equals(obj as Genome);
    public override int GetHashCode() => HashCode.Combine(Key, BlockSize);
}
