using System.Security;

namespace Ddsm.Search;

/// <summary>
/// Width-vs-timestep line plot of step strategies as hand-written SVG: axes, ticks, tick labels,
/// axis titles, a title, and a legend when several strategies are overlaid. Each strategy is a
/// step line: timestep t holds its width over [t, t+1), so a single-step change stays visible.
/// </summary>
public static class StrategyPlot
{
    private const double PlotW = 670, H = 380, Left = 70, Right = 20, LegendW = 180, Top = 44, Bottom = 56;
    /// <summary>Top of the width axis: a little above 1 so full-width runs do not hide in the frame.</summary>
    private const double YMax = 1.05;
    private static readonly string[] Colors =
    [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    ];

    public static void WriteSvg(string path, StepStrategy strategy, string title) =>
        WriteSvg(path, [("", strategy)], title);

    public static void WriteSvg(string path, IReadOnlyList<(string Label, StepStrategy Strategy)> series,
                                string title) =>
        AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(ToSvg(series, title)));

    public static string ToSvg(IReadOnlyList<(string Label, StepStrategy Strategy)> series, string title)
    {
        if (series.Count == 0) throw new ArgumentException("strategy plot: no strategies");
        int T = series.Max(s => s.Strategy.T);
        bool legend = series.Count > 1 || !string.IsNullOrEmpty(series[0].Label);
        // The legend sits right of the plot, never over the lines.
        double W = Left + PlotW + Right + (legend ? LegendW : 0);
        double pw = PlotW, ph = H - Top - Bottom;
        double X(double t) => Left + t / T * pw;
        double Y(double w) => Top + (YMax - w) / YMax * ph;   // width axis fixed to [0, 1.05]: plots stay comparable

        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(W)}\" height=\"{F(H)}\" viewBox=\"0 0 " +
                  $"{F(W)} {F(H)}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append($"<rect x=\"0\" y=\"0\" width=\"{F(W)}\" height=\"{F(H)}\" fill=\"white\"/>\n");
        sb.Append($"<text x=\"{F(Left + pw / 2)}\" y=\"{F(Top / 2 + 6)}\" text-anchor=\"middle\" " +
                  $"font-size=\"15\">{Esc(title)}</text>\n");

        // Grid and ticks: width every 0.25 (lines at the paper's k/8 would crowd), timestep at a 1-2-5 step.
        sb.Append("<g class=\"y-axis\" stroke=\"#000\">\n");
        for (int i = 0; i <= 4; i++)
        {
            double w = i / 4.0, y = Y(w);
            sb.Append($"<line x1=\"{F(Left)}\" y1=\"{F(y)}\" x2=\"{F(Left + pw)}\" y2=\"{F(y)}\" stroke=\"#ddd\"/>\n");
            sb.Append($"<line x1=\"{F(Left - 5)}\" y1=\"{F(y)}\" x2=\"{F(Left)}\" y2=\"{F(y)}\"/>\n");
            sb.Append(
                $"<text x=\"{F(Left - 8)}\" y=\"{F(y + 4)}\" text-anchor=\"end\" stroke=\"none\">{F(w)}</text>\n");
        }
        sb.Append("</g>\n<g class=\"x-axis\" stroke=\"#000\">\n");
        double step = NiceStep(T, 8);
        for (double t = 0; t <= T + 1e-9; t += step)
        {
            double x = X(t);
            sb.Append($"<line x1=\"{F(x)}\" y1=\"{F(Top + ph)}\" x2=\"{F(x)}\" y2=\"{F(Top + ph + 5)}\"/>\n");
            sb.Append(
                $"<text x=\"{F(x)}\" y=\"{F(Top + ph + 19)}\" text-anchor=\"middle\" stroke=\"none\">{F(t)}</text>\n");
        }
        sb.Append("</g>\n");
        sb.Append($"<line x1=\"{F(Left)}\" y1=\"{F(Top)}\" x2=\"{F(Left)}\" y2=\"{F(Top + ph)}\" stroke=\"#000\"/>\n");
        sb.Append($"<line x1=\"{F(Left)}\" y1=\"{F(Top + ph)}\" x2=\"{F(Left + pw)}\" y2=\"{F(Top + ph)}\" " +
                  $"stroke=\"#000\"/>\n");
        sb.Append($"<text x=\"{F(Left + pw / 2)}\" y=\"{F(H - 12)}\" text-anchor=\"middle\">timestep t (0 = least " +
                  $"noisy; sampling runs from {T - 1} down to 0)</text>\n");
        sb.Append($"<text x=\"18\" y=\"{F(Top + ph / 2)}\" text-anchor=\"middle\" transform=\"rotate(-90 18 " +
                  $"{F(Top + ph / 2)})\">network width (fraction of full)</text>\n");

        for (int s = 0; s < series.Count; s++)
        {
            var (label, st) = series[s];
            string color = Colors[s % Colors.Length];
            sb.Append($"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{Points(st, X, Y)}\"");
            if (!string.IsNullOrEmpty(label)) sb.Append($" data-label=\"{Esc(label)}\"");
            sb.Append("/>\n");
        }
        if (legend)
        {
            double lx = Left + pw + Right + 6, ly = Top + 8;
            sb.Append($"<g class=\"legend\"><rect x=\"{F(lx - 6)}\" y=\"{F(ly - 4)}\" width=\"{F(LegendW - 10)}\" " +
                      $"height=\"{F(18 * series.Count + 6)}\" fill=\"white\" stroke=\"#999\"/>\n");
            for (int s = 0; s < series.Count; s++)
            {
                double y = ly + 18 * s + 9;
                sb.Append($"<line x1=\"{F(lx)}\" y1=\"{F(y)}\" x2=\"{F(lx + 22)}\" y2=\"{F(y)}\" " +
                          $"stroke=\"{Colors[s % Colors.Length]}\" stroke-width=\"2\"/>");
                sb.Append($"<text x=\"{F(lx + 28)}\" y=\"{F(y + 4)}\">{Esc(series[s].Label)}</text>\n");
            }
            sb.Append("</g>\n");
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>Step-line vertices: one horizontal run per stretch of equal width (T = 1000 stays small).</summary>
    private static string Points(StepStrategy st, Func<double, double> x, Func<double, double> y)
    {
        var sb = new StringBuilder();
        int t0 = 0;
        for (int t = 1; t <= st.T; t++)
        {
            if (t < st.T && st[t] == st[t0]) continue;
            sb.Append(F(x(t0))).Append(',').Append(F(y(st[t0]))).Append(' ')
              .Append(F(x(t))).Append(',').Append(F(y(st[t0]))).Append(' ');
            t0 = t;
        }
        return sb.ToString().TrimEnd();
    }

    /// <summary>
    /// A 1-2-5×10^k tick step giving at most about <paramref name="maxTicks"/> intervals over [0, range].
    /// </summary>
    internal static double NiceStep(double range, int maxTicks)
    {
        if (range <= 0) return 1;
        double raw = range / maxTicks, mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        foreach (var m in new[] { 1.0, 2.0, 5.0, 10.0 })
            if (m * mag >= raw) return Math.Max(1, m * mag);   // timesteps are integers
        return Math.Max(1, 10 * mag);
    }

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
    private static string Esc(string s) => SecurityElement.Escape(s) ?? "";
}
