using Ddsm.Engine.Cpu;
using Ddsm.Engine.Ilgpu;

namespace Ddsm.Runs;

/// <summary>The backend a run computes on, by the name the command line uses (<c>--device</c>).</summary>
public static class Devices
{
    public const string Names = "cpu, cuda, ilgpu-cpu";

    /// <summary>
    /// cpu: the C# SIMD backend; cuda: the ILGPU kernels on an NVIDIA GPU; ilgpu-cpu: the same kernels on
    /// ILGPU's CPU accelerator. <paramref name="tf32"/> puts convolutions and GEMMs on TF32 tensor cores
    /// (GPU backends only).
    /// </summary>
    public static Backend Create(string device, bool tf32 = false)
    {
        var be = device.ToLowerInvariant() switch
        {
            "cpu" => (Backend)CpuBackend.Instance,
            "cuda" => IlgpuBackend.TryCuda(out var reason)
                      ?? throw new NotSupportedException($"--device cuda: no usable GPU: {reason}"),
            "ilgpu-cpu" => IlgpuBackend.CpuAccelerator,
            _ => throw new ArgumentException($"unknown device '{device}' ({Names})"),
        };
        if (be is IlgpuBackend gpu) gpu.ExactFp32 = !tf32;
        else if (tf32) throw new ArgumentException("--tf32 applies to the GPU backends (--device cuda or ilgpu-cpu)");
        return be;
    }
}
