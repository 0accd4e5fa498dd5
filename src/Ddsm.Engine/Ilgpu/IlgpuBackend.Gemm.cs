using ILGPU;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Batched GEMM → kernels/Gemm.cs (64×64 tiles; exact FP32 or TF32 tensor cores per ExactFp32).
public sealed partial class IlgpuBackend
{
    private string Mode(string stem) => stem + (ExactFp32 ? "_f32" : "_tf32");

    public override void Gemm(in GemmDesc d, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c)
    {
        if (d.M <= 0 || d.N <= 0 || d.Batch <= 0) return;
        if (d.Batch > 65535) throw new NotSupportedException($"{Name} gemm: batch {d.Batch} > 65535");
        if (Ceil(d.M, Tile.Rows) > 65535)
            throw new NotSupportedException($"{Name} gemm: M {d.M} too large for one launch");
        var args = new GemmArgs
        {
            A = Own(a).View, B = Own(b).View, C = Own(c).View,
            OffsetA = d.OffsetA, OffsetB = d.OffsetB, OffsetC = d.OffsetC,
            StrideA = d.StrideA, StrideB = d.StrideB, StrideC = d.StrideC,
            M = d.M, N = d.N, K = d.K, Lda = d.Lda, Ldb = d.Ldb, Ldc = d.Ldc,
            TransA = d.TransA ? 1 : 0, TransB = d.TransB ? 1 : 0, Alpha = d.Alpha, Beta = d.Beta,
        };
        LaunchTiles(K<GemmArgs>(Mode("gemm")), new Index3D(Ceil(d.N, Tile.Cols), Ceil(d.M, Tile.Rows), d.Batch), args);
    }

    /// <summary>A launch of the tile engine (kernels/TileGemm.cs): 128 threads per 64×64 tile; off the GPU a
    /// TF32 launch also gets the exchange area of the mma emulation.</summary>
    private void LaunchTiles<TArgs>(Launcher<TArgs> kernel, Index3D grid, in TArgs args) where TArgs : struct =>
        Launch(kernel, grid, Tile.Threads, args, !ExactFp32 && !IsCuda ? Tile.EmulationSharedFloats : 0);
}
