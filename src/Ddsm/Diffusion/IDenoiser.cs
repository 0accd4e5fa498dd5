using Ddsm.Engine;

namespace Ddsm.Diffusion;

/// <summary>
/// What samplers need from a model: ε̂(x_t, t) at a chosen width. The whole batch shares one
/// timestep (true of all our samplers), so one forward at one width serves it.
/// </summary>
public interface IDenoiser
{
    Backend Backend { get; }
    /// <summary>ε̂ for x (N, C, H, W) at (possibly fractional) timestep t and width fraction.</summary>
    Tensor PredictEps(Tensor x, double t, double width);
}
