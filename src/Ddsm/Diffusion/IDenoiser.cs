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
    /// <summary>
    /// ε̂ for x (N, C, H, W) at (possibly fractional) timestep t and width fraction. Inside a sampling step t
    /// also names where the step's kernels read it (<see cref="Timestep.Fill"/>): the call must take every
    /// per-step value from there or from device memory, never as a kernel argument, or a replayed step is wrong.
    /// </summary>
    Tensor PredictEps(Tensor x, Timestep t, double width);
    /// <summary>
    /// Which network and width serve a call at (t, width). Two calls with the same route run the same kernels on
    /// the same buffers with the same arguments, apart from the timestep: a sampler captures one step graph per
    /// route and replays it (a model that dispatches by t, like the step-adaptive one, says so here).
    /// </summary>
    (int Model, double Width) Route(double t, double width) => (0, width);
    /// <summary>
    /// Forward FLOPs per image of the <see cref="PredictEps"/> call at (t, width): the work it really runs
    /// (a model that picks its own width per t, or runs two forwards per call, says so here).
    /// </summary>
    long FlopsPerImage(double t, double width);
}
