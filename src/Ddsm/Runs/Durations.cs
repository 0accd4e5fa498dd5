namespace Ddsm.Runs;

/// <summary>Durations as people read them in progress lines and reports.</summary>
public static class Durations
{
    /// <summary>
    /// "12.3 s", "4.5 min" or "1.2 h"; "?" when unknown (negative, NaN, infinite: an ETA before any rate).
    /// </summary>
    public static string Text(double seconds) =>
        seconds < 0 || !double.IsFinite(seconds) ? "?" :
        seconds >= 3600 ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:F1} h") :
        seconds >= 60 ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:F1} min") :
        string.Create(CultureInfo.InvariantCulture, $"{seconds:F1} s");
}
