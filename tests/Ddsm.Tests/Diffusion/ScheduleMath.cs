using Ddsm.Diffusion;

namespace Ddsm.Tests.Diffusion;

/// <summary>Schedule quantities the tests use as references (no sampler needs them).</summary>
internal static class ScheduleMath
{
    /// <summary>
    /// ᾱ at fractional t, consistent with <see cref="NoiseSchedule.SigmaToT"/> (log σ linear between steps).
    /// </summary>
    public static double AlphaBarAt(this NoiseSchedule s, double t)
    {
        t = Math.Clamp(t, 0, s.T - 1);
        int lo = (int)Math.Floor(t), hi = Math.Min(lo + 1, s.T - 1);
        double LogSigma(int i) => 0.5 * Math.Log((1 - s.AlphaBars[i]) / s.AlphaBars[i]);
        double ls = LogSigma(lo) + (t - lo) * (LogSigma(hi) - LogSigma(lo));
        return 1 / (1 + Math.Exp(2 * ls));
    }
}
