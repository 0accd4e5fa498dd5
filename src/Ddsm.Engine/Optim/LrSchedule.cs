namespace Ddsm.Engine.Optim;

/// <summary>Learning-rate schedules as pure functions of the step, so a resumed run gets the same rates.</summary>
public static class LrSchedule
{
    /// <summary>
    /// Linear warm-up from 0 to <paramref name="lr"/>: the rate for the <paramref name="step"/>-th update
    /// (1-based) is lr·min(1, step / warmupSteps). The first update already moves (lr/warmupSteps,
    /// not 0: a zero-rate step would only advance Adam's moments), and update number warmupSteps is the
    /// first at the full rate (DDPM's 5000-step warm-up). warmupSteps ≤ 0 means no warm-up.
    /// </summary>
    public static float LinearWarmup(long step, int warmupSteps, float lr)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), $"lr schedule: step is 1-based, got {step}");
        if (warmupSteps <= 0 || step >= warmupSteps) return lr;
        return (float)((double)lr * step / warmupSteps);
    }
}
