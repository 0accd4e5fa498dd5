namespace Ddsm.Diffusion;

/// <summary>
/// The step-aware schedule as data: a width fraction for every diffusion timestep t = 0..T−1
/// (index = t, 0 the least noisy). Saved as JSON; also reads the plain list of fractions that the
/// DDSM release ships its searched schedules in (whitespace or comma separated).
/// </summary>
public sealed class StepStrategy
{
    public double[] Widths { get; }
    public int T => Widths.Length;

    public StepStrategy(double[] widths)
    {
        if (widths.Length == 0) throw new ArgumentException("step strategy: no timesteps");
        foreach (var w in widths)
            if (!(w > 0 && w <= 1)) throw new ArgumentException($"step strategy: width {w} outside (0, 1]");
        Widths = widths;
    }

    public double this[int t] => Widths[t];

    /// <summary>Width for a possibly fractional timestep (the nearest integer step's width).</summary>
    public double At(double t) => Widths[Math.Clamp((int)Math.Round(t), 0, T - 1)];

    public static StepStrategy Uniform(double width, int T) => new(Enumerable.Repeat(width, T).ToArray());

    /// <summary>
    /// The same schedule on another number of timesteps: timestep t' of the new strategy takes the
    /// width at the same relative position t'/(T'−1) of this one (nearest step), so a schedule
    /// searched at one setting transfers to another.
    /// </summary>
    public StepStrategy Resample(int newT)
    {
        if (newT <= 0) throw new ArgumentException("step strategy: resample to a positive T");
        var w = new double[newT];
        for (int i = 0; i < newT; i++)
        {
            double pos = newT == 1 ? 0 : (double)i / (newT - 1) * (T - 1);
            w[i] = Widths[(int)Math.Round(pos)];
        }
        return new StepStrategy(w);
    }

    /// <summary>
    /// Parses "uniform:0.5" or a file path (JSON from <see cref="ToJson"/>, or a plain list of
    /// fractions). A strategy of another length is refused, or with <paramref name="resample"/> resampled to
    /// <paramref name="T"/> (a schedule searched for another T keeps its shape, not its meaning per step).
    /// </summary>
    public static StepStrategy Parse(string spec, int T, bool resample = false)
    {
        if (spec.StartsWith("uniform:", StringComparison.OrdinalIgnoreCase))
        {
            if (!double.TryParse(spec.AsSpan(8), NumberStyles.Float, CultureInfo.InvariantCulture, out var w))
                throw new ArgumentException($"step strategy: cannot read width in '{spec}'");
            return Uniform(w, T);
        }
        if (!File.Exists(spec))
            throw new FileNotFoundException($"step strategy file '{spec}' not found (or use uniform:W)", spec);
        var s = FromText(File.ReadAllText(spec), spec);
        if (s.T == T) return s;
        if (!resample)
            throw new ArgumentException($"step strategy {spec} has {s.T} widths but the model's schedule has {T} " +
                                        $"timesteps (--resample stretches it to {T})");
        return s.Resample(T);
    }

    public static StepStrategy FromText(string text, string source = "text")
    {
        var trimmed = text.TrimStart();
        if (trimmed.StartsWith('{'))
        {
            try
            {
                using var doc = JsonDocument.Parse(text);
                var arr = doc.RootElement.GetProperty("widths");
                return new StepStrategy(arr.EnumerateArray().Select(e => e.GetDouble()).ToArray());
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or
                                      FormatException)
            {
                throw new FormatException($"step strategy {source}: not a strategy JSON ({e.Message})");
            }
        }
        var parts = text.Split([' ', '\t', '\r', '\n', ',', '[', ']'], StringSplitOptions.RemoveEmptyEntries);
        var w = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out w[i]))
                throw new FormatException($"step strategy {source}: '{parts[i]}' (entry {i}) is not a number");
        return new StepStrategy(w);
    }

    public string ToJson() =>
        JsonSerializer.Serialize(new { T, widths = Widths }, new JsonSerializerOptions { WriteIndented = false });

    public void Save(string path)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, ToJson());
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Distinct widths, ascending.</summary>
    public double[] DistinctWidths() => Widths.Distinct().Order().ToArray();
}
