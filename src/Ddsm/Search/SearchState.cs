using System.Text.Json.Serialization;

namespace Ddsm.Search;

/// <summary>
/// The search's state file (JSON). Only generation-boundary quantities (population, generation,
/// Rng state) and the memo are stored; a run killed mid-generation redoes that generation's
/// random choices from the boundary Rng state, reproducing the same offspring, and finds their
/// objectives in the memo — so the result is exactly the uninterrupted run's and nothing is
/// evaluated twice. Population members are gene strings; their objectives live in the memo.
/// </summary>
internal sealed class SearchState
{
    public const string FormatTag = "ddsm-search-v1";

    public string Format { get; set; } = FormatTag;
    public SearchOptions Options { get; set; } = new();
    /// <summary>Completed generations; −1 before the initial population is evaluated.</summary>
    public int Generation { get; set; } = -1;
    /// <summary>Rng state at the start of the next generation (6 words, see Rng.GetState).</summary>
    public ulong[] Rng { get; set; } = [];
    public List<string> Population { get; set; } = [];
    /// <summary>Gene string → [quality, cost], in evaluation order.</summary>
    public Dictionary<string, double[]> Memo { get; set; } = [];

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        // +∞ marks a failed candidate; it must survive the round trip.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public void Save(string path) => AtomicFile.Write(path, s => JsonSerializer.Serialize(s, this, Json));

    public static SearchState Load(string path)
    {
        SearchState? st;
        try { st = JsonSerializer.Deserialize<SearchState>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new FormatException($"search state '{path}': not a state file ({e.Message})"); }
        if (st is null || st.Format != FormatTag)
            throw new FormatException($"search state '{path}': format '{st?.Format}' is not {FormatTag}");
        if (st.Rng.Length != 6)
            throw new FormatException($"search state '{path}': Rng state has {st.Rng.Length} words, not 6");
        foreach (var (k, v) in st.Memo)
            if (v.Length != 2)
                throw new FormatException($"search state '{path}': memo entry '{k}' has {v.Length} values, not 2");
        foreach (var k in st.Population)
            if (!st.Memo.ContainsKey(k))
                throw new FormatException($"search state '{path}': population member '{k}' has no memo entry");
        st.Options.Validate();
        return st;
    }
}
