using System.Numerics.Tensors;

namespace Ddsm.Engine.Cpu;

/// <summary>A pooled managed array. Only the first <see cref="Length"/> elements are meaningful.</summary>
public sealed class CpuBuffer(CpuBackend backend, float[] array, long length) : DeviceBuffer
{
    public override Backend Backend => backend;
    public override long Length => length;
    public float[] Array { get; } = array;
    public Span<float> Span => Array.AsSpan(0, (int)length);
}

/// <summary>
/// The C# backend: the reference every other backend is tested against, and fast in its own right
/// (SIMD GEMM under the convolutions, System.Numerics.Tensors for element-wise work, Parallel.For
/// across images). The class is split by kernel family over CpuBackend.*.cs files.
/// </summary>
public sealed partial class CpuBackend : Backend
{
    /// <summary>The process-wide CPU backend (stateless apart from the pool, so one is enough).</summary>
    public static CpuBackend Instance { get; } = new();

    private readonly Dictionary<long, Stack<float[]>> _pool = new();
    private readonly object _poolGate = new();
    private long _pooledFloats;
    /// <summary>Pool cap: beyond this, freed arrays go to the GC instead of the pool.</summary>
    public long PoolLimitFloats { get; set; } = 1L << 30; // 4 GiB

    public override string Name => "cpu";

    /// <summary>Threads used by kernels (defaults to the machine's cores).</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;
    internal ParallelOptions Par => new() { MaxDegreeOfParallelism = Threads };

    // ---- memory --------------------------------------------------------------------------------
    public override DeviceBuffer Allocate(long count)
    {
        if (count < 0 || count > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(count), $"cpu: cannot allocate {count} floats");
        float[]? a = null;
        lock (_poolGate)
        {
            if (_pool.TryGetValue(count, out var st) && st.Count > 0)
            {
                a = st.Pop();
                _pooledFloats -= count;
            }
        }
        a ??= GC.AllocateUninitializedArray<float>((int)count);
        return new CpuBuffer(this, a, count);
    }

    public override void Free(DeviceBuffer buffer)
    {
        var b = Cast(buffer);
        lock (_poolGate)
        {
            if (_pooledFloats + b.Length > PoolLimitFloats) return;
            if (!_pool.TryGetValue(b.Length, out var st)) _pool[b.Length] = st = new Stack<float[]>();
            st.Push(b.Array);
            _pooledFloats += b.Length;
        }
    }

    /// <summary>
    /// Drops every pooled array (memory back to the GC). Kernel scratch stays: it is per thread, bounded by the
    /// largest call, and a kernel may hold a pointer into it (see <see cref="Scratch"/>).
    /// </summary>
    public void TrimPool()
    {
        lock (_poolGate) { _pool.Clear(); _pooledFloats = 0; }
    }

    protected override void CopyInCore(DeviceBuffer dst, long dstOffset, ReadOnlySpan<float> src)
    {
        using var timer = Profiler.Kernel("copy_in");
        src.CopyTo(Cast(dst).Array.AsSpan((int)dstOffset, src.Length));
    }

    protected override void CopyOutCore(DeviceBuffer src, long srcOffset, Span<float> dst)
    {
        using var timer = Profiler.Kernel("copy_out");
        Cast(src).Array.AsSpan((int)srcOffset, dst.Length).CopyTo(dst);
    }

    public override void Copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count)
    {
        using var timer = Profiler.Kernel("copy");
        Cast(src).Array.AsSpan((int)srcOffset, (int)count).CopyTo(Cast(dst).Array.AsSpan((int)dstOffset, (int)count));
    }

    internal static CpuBuffer Cast(DeviceBuffer b) =>
        b as CpuBuffer ?? throw new ArgumentException($"cpu backend got a buffer of backend '{b.Backend.Name}'");

    internal static Span<float> S(DeviceBuffer b, long n) => Cast(b).Array.AsSpan(0, (int)n);
    internal static Span<float> S(DeviceBuffer b, long offset, long n) => Cast(b).Array.AsSpan((int)offset, (int)n);
    internal static float[] A(DeviceBuffer b) => Cast(b).Array;

    /// <summary>Runs body over [0,n) in contiguous chunks, in parallel only when the work is large.</summary>
    internal void Chunked(long n, Action<int, int> body, long grain = 1 << 16)
    {
        int chunks = (int)Math.Min(Threads * 4L, Math.Max(1, n / grain));
        if (chunks <= 1) { body(0, (int)n); return; }
        long per = (n + chunks - 1) / chunks;
        Parallel.For(0, chunks, Par, c =>
        {
            long lo = c * per, hi = Math.Min(n, lo + per);
            if (lo < hi) body((int)lo, (int)(hi - lo));
        });
    }

    // ---- element-wise --------------------------------------------------------------------------
    public override void Fill(DeviceBuffer x, long offset, long count, float value)
    {
        using var timer = Profiler.Kernel("fill");
        S(x, offset, count).Fill(value);
    }

    public override void Axpby(DeviceBuffer x, DeviceBuffer y, long n, float alpha, float beta)
    {
        using var timer = Profiler.Kernel("axpby");
        var xa = A(x); var ya = A(y);
        // In place (x is y) the general branch below would read y after scaling it.
        if (xa == ya) (alpha, beta) = (alpha + beta, 0f);
        Chunked(n, (lo, len) =>
        {
            var xs = xa.AsSpan(lo, len); var ys = ya.AsSpan(lo, len);
            if (beta == 0f) TensorPrimitives.Multiply(xs, alpha, ys);
            else if (beta == 1f && alpha == 1f) TensorPrimitives.Add(xs, ys, ys);
            else if (beta == 1f) TensorPrimitives.MultiplyAdd(xs, alpha, ys, ys);
            else
            {
                TensorPrimitives.Multiply(ys, beta, ys);
                TensorPrimitives.MultiplyAdd(xs, alpha, ys, ys);
            }
        });
    }

    public override void Binary(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z, long n)
    {
        using var timer = Profiler.Kernel("binary");
        var aa = A(a); var ba = A(b); var za = A(z);
        Chunked(n, (lo, len) =>
        {
            var xs = aa.AsSpan(lo, len); var ys = ba.AsSpan(lo, len); var zs = za.AsSpan(lo, len);
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(xs, ys, zs); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(xs, ys, zs); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(xs, ys, zs); break;
                default: throw new ArgumentOutOfRangeException(nameof(op));
            }
        });
    }

    public override void Unary(UnaryOp op, DeviceBuffer x, DeviceBuffer y, long n)
    {
        using var timer = Profiler.Kernel("unary");
        var xa = A(x); var ya = A(y);
        Chunked(n, (lo, len) =>
        {
            var xs = xa.AsSpan(lo, len); var ys = ya.AsSpan(lo, len);
            // Each map reads an element before writing it, so y may be x.
            switch (op)
            {
                // VecMath's SiLU, the one the fused GroupNorm uses (TensorPrimitives.Exp is scalar here).
                case UnaryOp.SiLU: xs.CopyTo(ys); VecMath.SiLUInPlace(ys); break;
                case UnaryOp.Square: TensorPrimitives.Multiply(xs, xs, ys); break;
                case UnaryOp.Exp: TensorPrimitives.Exp(xs, ys); break;
                case UnaryOp.SiLUGrad: VecMath.SiLUGrad(xs, ys); break;
                case UnaryOp.ClampUnit: TensorPrimitives.Max(xs, -1f, ys); TensorPrimitives.Min(ys, 1f, ys); break;
                default: throw new ArgumentOutOfRangeException(nameof(op));
            }
        });
    }

    public override void Broadcast(BinaryOp op, DeviceBuffer a, DeviceBuffer b, DeviceBuffer z,
        int outer, int mid, int inner, bool bPerOuter)
    {
        using var timer = Profiler.Kernel("broadcast");
        var aa = A(a); var ba = A(b); var za = A(z);
        Parallel.For(0, outer, Par, o =>
        {
            for (int m = 0; m < mid; m++)
            {
                float bv = ba[(bPerOuter ? o * mid : 0) + m];
                int off = (o * mid + m) * inner;
                var xs = aa.AsSpan(off, inner); var zs = za.AsSpan(off, inner);
                switch (op)
                {
                    case BinaryOp.Add: TensorPrimitives.Add(xs, bv, zs); break;
                    case BinaryOp.Sub: TensorPrimitives.Subtract(xs, bv, zs); break;
                    case BinaryOp.Mul: TensorPrimitives.Multiply(xs, bv, zs); break;
                    default: throw new ArgumentOutOfRangeException(nameof(op));
                }
            }
        });
    }

    public override void CopyBlocks(DeviceBuffer src, long srcOffset, long srcStride,
        DeviceBuffer dst, long dstOffset, long dstStride, int rows, long len, bool accumulate)
    {
        using var timer = Profiler.Kernel("copy_blocks");
        var sa = A(src); var da = A(dst);
        Parallel.For(0, rows, Par, r =>
        {
            var s = sa.AsSpan((int)(srcOffset + r * srcStride), (int)len);
            var d = da.AsSpan((int)(dstOffset + r * dstStride), (int)len);
            if (accumulate) TensorPrimitives.Add(d, s, d);
            else s.CopyTo(d);
        });
    }

    // ---- reductions (double accumulation, fixed chunking: deterministic) -----------------------
    private double ChunkSum(long n, Func<int, int, double> part)
    {
        const int chunk = 1 << 15;
        int chunks = (int)((n + chunk - 1) / chunk);
        var parts = new double[Math.Max(chunks, 1)];
        Parallel.For(0, chunks, Par, c =>
        {
            int lo = c * chunk;
            parts[c] = part(lo, (int)Math.Min(chunk, n - lo));
        });
        double s = 0;
        foreach (var p in parts) s += p;
        return s;
    }

    public override void Sum(DeviceBuffer x, long n, DeviceBuffer result)
    {
        using var timer = Profiler.Kernel("sum");
        var xa = A(x);
        A(result)[0] = (float)ChunkSum(n, (lo, len) => TensorPrimitives.Sum<float>(xa.AsSpan(lo, len)));
    }

    public override void SumSquares(DeviceBuffer x, long n, DeviceBuffer result)
    {
        using var timer = Profiler.Kernel("sum_squares");
        var xa = A(x);
        A(result)[0] = (float)ChunkSum(n, (lo, len) => TensorPrimitives.SumOfSquares<float>(xa.AsSpan(lo, len)));
    }

    public override void SquaredError(DeviceBuffer a, DeviceBuffer b, long n, DeviceBuffer result)
    {
        using var timer = Profiler.Kernel("squared_error");
        var aa = A(a); var ba = A(b);
        A(result)[0] = (float)ChunkSum(n, (lo, len) =>
        {
            double s = 0;
            for (int i = lo; i < lo + len; i++) { double d = aa[i] - ba[i]; s += d * d; }
            return s;
        });
    }
}
