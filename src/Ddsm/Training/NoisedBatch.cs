namespace Ddsm.Training;

/// <summary>
/// The forward process on a host batch: for every image i, t_i uniform in [tFirst, tLast], ε_i ~ N(0, I)
/// and x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε. The draw order (t_i, then ε_i, image by image) is part of the
/// training stream's contract: checkpoints store the RNG, so a resumed run repeats the same batches.
/// </summary>
public static class NoisedBatch
{
    /// <param name="x0">(B, D) clean images.</param>
    /// <param name="xt">(B, D) written: noised images.</param>
    /// <param name="eps">(B, D) written: the noise.</param>
    /// <param name="ts">(B) written: the timesteps.</param>
    public static void Fill(NoiseSchedule schedule, Rng rng, int tFirst, int tLast,
        ReadOnlySpan<float> x0, Span<float> xt, Span<float> eps, Span<float> ts)
    {
        int b = ts.Length, d = x0.Length / b;
        for (int i = 0; i < b; i++)
        {
            int t = tFirst + rng.NextInt(tLast - tFirst + 1);
            ts[i] = t;
            float sa = (float)Math.Sqrt(schedule.AlphaBars[t]), sn = (float)Math.Sqrt(1 - schedule.AlphaBars[t]);
            var e = eps.Slice(i * d, d);
            rng.FillNormal(e);
            for (int j = 0; j < d; j++) xt[i * d + j] = sa * x0[i * d + j] + sn * e[j];
        }
    }
}
