namespace Ddsm.Diffusion;

/// <summary>
/// Discrete-time variance-preserving schedule: x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε for t = 0..T−1
/// (index 0 is the least noisy step, as in ADM). Everything is kept in double; samplers convert.
/// For continuous-σ samplers (EDM) the schedule also maps σ ↔ fractional t by interpolating log σ
/// between the integer steps, as k-diffusion does for discrete models.
/// </summary>
public sealed class NoiseSchedule
{
    /// <summary>Diffusion steps: t runs over 0..T−1.</summary>
    public int T => Betas.Length;
    /// <summary>"linear" or "cosine": what a checkpoint records, and what <see cref="ByName"/> rebuilds.</summary>
    public string Kind { get; }
    /// <summary>β_t, the noise variance each step adds.</summary>
    public double[] Betas { get; }
    /// <summary>ᾱ_t = Π_{s ≤ t} (1 − β_s), the signal variance left at step t.</summary>
    public double[] AlphaBars { get; }
    private readonly double[] _logSigmas;

    private NoiseSchedule(string kind, double[] betas)
    {
        Kind = kind;
        Betas = betas;
        AlphaBars = new double[T];
        double a = 1;
        for (int t = 0; t < T; t++) { a *= 1 - betas[t]; AlphaBars[t] = a; }
        _logSigmas = AlphaBars.Select(ab => 0.5 * Math.Log((1 - ab) / ab)).ToArray();
    }

    /// <summary>DDPM's linear β from 1e-4 to 0.02 scaled to T (ADM's get_named_beta_schedule("linear")).</summary>
    public static NoiseSchedule Linear(int T = 1000)
    {
        double scale = 1000.0 / T, b0 = scale * 1e-4, b1 = scale * 0.02;
        return new NoiseSchedule("linear",
                                 Enumerable.Range(0, T).Select(i => T == 1 ? b0 : b0 + (b1 - b0) * i / (T - 1))
                                     .ToArray());
    }

    /// <summary>Nichol & Dhariwal's cosine schedule, β clipped at 0.999.</summary>
    public static NoiseSchedule Cosine(int T = 1000)
    {
        static double F(double u) => Math.Pow(Math.Cos((u + 0.008) / 1.008 * Math.PI / 2), 2);
        var betas = new double[T];
        for (int i = 0; i < T; i++) betas[i] = Math.Min(1 - F((i + 1.0) / T) / F((double)i / T), 0.999);
        return new NoiseSchedule("cosine", betas);
    }

    public static NoiseSchedule ByName(string name, int T) => name switch
    {
        "linear" => Linear(T),
        "cosine" => Cosine(T),
        _ => throw new ArgumentException($"unknown noise schedule '{name}' (linear, cosine)"),
    };

    /// <summary>Signal-to-noise ratio ᾱ/(1−ᾱ) at integer t.</summary>
    public double Snr(int t) => AlphaBars[t] / (1 - AlphaBars[t]);
    public double LogSnr(int t) => Math.Log(Snr(t));

    /// <summary>σ = √((1−ᾱ)/ᾱ), the noise level of x_t/√ᾱ (the EDM variable), at t = 0 and T − 1.</summary>
    public double SigmaMin => Math.Exp(_logSigmas[0]);
    public double SigmaMax => Math.Exp(_logSigmas[T - 1]);

    /// <summary>Fractional timestep whose interpolated log σ equals log σ (clamped to [0, T−1]).</summary>
    public double SigmaToT(double sigma)
    {
        double ls = Math.Log(sigma);
        if (ls <= _logSigmas[0]) return 0;
        if (ls >= _logSigmas[T - 1]) return T - 1;
        int lo = 0, hi = T - 1;                  // log σ increases with t
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (_logSigmas[mid] <= ls) lo = mid; else hi = mid;
        }
        double w = (ls - _logSigmas[lo]) / (_logSigmas[hi] - _logSigmas[lo]);
        return lo + w;
    }
}
