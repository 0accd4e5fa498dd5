namespace Ddsm.StepAdaptive;

public enum GroupingMode
{
    /// <summary>
    /// Cut log-SNR's range [log SNR(T−1), log SNR(0)] into G equal intervals (Xu et al.'s grouping by task difficulty).
    /// </summary>
    EqualLogSnr,
    /// <summary>G groups of ⌊T/G⌋ or ⌈T/G⌉ consecutive steps.</summary>
    EqualCount,
}

/// <summary>
/// One group of consecutive timesteps [<see cref="TFirst"/>, <see cref="TLast"/>]. Its log-SNR
/// interval runs from <see cref="LogSnrHigh"/> (at the low-noise end) down to <see cref="LogSnrLow"/>:
/// the nominal equal-width interval under <see cref="GroupingMode.EqualLogSnr"/>, the log-SNR of
/// its end steps under <see cref="GroupingMode.EqualCount"/>.
/// </summary>
public sealed record TimestepGroup(int Index, int TFirst, int TLast, double LogSnrHigh, double LogSnrLow)
{
    public int Count => TLast - TFirst + 1;
    public bool Contains(int t) => t >= TFirst && t <= TLast;
    public double SnrHigh => Math.Exp(LogSnrHigh);
    public double SnrLow => Math.Exp(LogSnrLow);

    public string Describe(int groupCount) => string.Create(CultureInfo.InvariantCulture,
        $"group {Index + 1}/{groupCount}: t {TFirst}–{TLast} ({Count} steps), log-SNR {LogSnrHigh:0.###} … " +
        $"{LogSnrLow:0.###} (SNR {SnrHigh:0.###e0} … {SnrLow:0.###e0})");
}

/// <summary>
/// Partition of t = 0..T−1 into G contiguous groups by log-SNR = log(ᾱ/(1−ᾱ)), for step-adaptive
/// training ("Not All Steps are Equal", Xu et al.). Group 0 holds the least noisy steps (highest SNR);
/// groups are ordered by t. Log-SNR falls monotonically with t, so an SNR interval is a t range.
/// </summary>
public sealed class TimestepGroups
{
    private readonly int[] _groupOf;   // (T,) group index of each timestep
    public IReadOnlyList<TimestepGroup> Groups { get; }
    public GroupingMode Mode { get; }
    public int T => _groupOf.Length;
    public int Count => Groups.Count;

    private TimestepGroups(List<TimestepGroup> groups, int T, GroupingMode mode)
    {
        Groups = groups;
        Mode = mode;
        _groupOf = new int[T];
        foreach (var g in groups) for (int t = g.TFirst; t <= g.TLast; t++) _groupOf[t] = g.Index;
    }

    public int GroupOf(int t)
    {
        if ((uint)t >= (uint)_groupOf.Length)
            throw new ArgumentOutOfRangeException(nameof(t), $"timestep {t} outside [0, {T})");
        return _groupOf[t];
    }

    public string Describe() => string.Join("\n", Groups.Select(g => g.Describe(Count)));

    public static TimestepGroups Build(NoiseSchedule schedule, int groups = 4,
                                       GroupingMode mode = GroupingMode.EqualLogSnr)
    {
        int T = schedule.T;
        if (groups < 1 || groups > T)
            throw new ArgumentException($"timestep groups: {groups} groups for T = {T} (need 1..T)");
        var logSnr = Enumerable.Range(0, T).Select(schedule.LogSnr).ToArray();
        var list = new List<TimestepGroup>(groups);
        if (mode == GroupingMode.EqualCount)
        {
            for (int g = 0; g < groups; g++)
            {
                int first = (int)((long)g * T / groups), last = (int)((long)(g + 1) * T / groups) - 1;
                list.Add(new TimestepGroup(g, first, last, logSnr[first], logSnr[last]));
            }
            return new TimestepGroups(list, T, mode);
        }

        double hi = logSnr[0], lo = logSnr[T - 1], width = (hi - lo) / groups;
        if (!(width > 0)) throw new ArgumentException("timestep groups: log-SNR is constant over t; use EqualCount");
        var member = new int[T];
        for (int t = 0; t < T; t++) member[t] = Math.Min(groups - 1, (int)Math.Floor((hi - logSnr[t]) / width));
        for (int g = 0; g < groups; g++)
        {
            int first = Array.IndexOf(member, g), last = Array.LastIndexOf(member, g);
            if (first < 0)
                throw new ArgumentException($"timestep groups: log-SNR interval {g + 1} of {groups} holds no " +
                                            $"timestep (T = {T}); use fewer groups or EqualCount");
            list.Add(new TimestepGroup(g, first, last, hi - g * width, g == groups - 1 ? lo : hi - (g + 1) * width));
        }
        return new TimestepGroups(list, T, mode);
    }
}
