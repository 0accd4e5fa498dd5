namespace Ddsm.Diffusion;

/// <summary>
/// What samplers need from a model: ε̂(x_t, t) at a chosen width, and what that costs. The whole batch
/// shares one timestep (true of all our samplers), so one forward at one width serves it.
/// </summary>
public interface IDenoiser
{
    Backend Backend { get; }
    /// <summary>The images it denoises.</summary>
    ImageShape Image { get; }
    /// <summary>ε̂ for x (N, C, H, W) at (possibly fractional) timestep t and width fraction.</summary>
    Tensor PredictEps(Tensor x, double t, double width);
    /// <summary>
    /// Forward FLOPs per image of the <see cref="PredictEps"/> call at (t, width): the work it really runs
    /// (a model that picks its own width per t, or runs two forwards per call, says so here).
    /// </summary>
    long FlopsPerImage(double t, double width);
}
