namespace Ddsm.Diffusion;

/// <summary>
/// The timestep of a denoiser call: its value on the host (what picks a width or a group, and what a host-side
/// denoiser computes with) and, inside a sampling step, the step-table column the step's kernels read it from,
/// so that a replayed step (<see cref="StepGraph"/>) runs at the current step's timestep.
/// </summary>
public readonly record struct Timestep(double Value, StepScalar? OnDevice = null)
{
    public static implicit operator Timestep(double value) => new(value);

    /// <summary>(n) copies of the timestep on the device: read from the step table when it has a column, else
    /// filled with the host value (the same float either way).</summary>
    public Tensor Fill(Backend backend, int n)
    {
        if (OnDevice is not { } scalar) return Tensor.Full(backend, (float)Value, n);
        var t = Tensor.Empty(backend, n);
        backend.FillStep(t.Buffer, n, scalar);
        return t;
    }
}
