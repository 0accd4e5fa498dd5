
namespace Ddsm.Engine;

/// <summary>
/// A float32, contiguous, row-major (NCHW for images) tensor that owns device memory on one backend.
/// Ownership rules (after TorchSharp): whoever creates a tensor disposes it, directly or through the
/// enclosing <see cref="TensorScope"/>; functions never dispose their inputs. <see cref="Reshape"/>
/// returns a view that shares the storage (refcounted), so disposing either is safe.
/// </summary>
public sealed class Tensor : IDisposable
{
    internal Storage Storage;
    private bool _disposed;

    public int[] Shape { get; }
    public long Length { get; }
    public Backend Backend => Storage.Buffer.Backend;
    public DeviceBuffer Buffer
    {
        get
        {
            if (_disposed) throw new ObjectDisposedException(Describe(), "tensor used after it was disposed");
            return Storage.Buffer;
        }
    }

    /// <summary>Parameter name (for checkpoints and error messages); null for temporaries.</summary>
    public string? Name { get; set; }
    /// <summary>True for leaves that want gradients (parameters) and for results of ops on them.</summary>
    public bool RequiresGrad { get; set; }
    /// <summary>Accumulated gradient (same shape); leaves keep it across backward passes.</summary>
    public Tensor? Grad { get; internal set; }
    internal TapeNode? GradFn { get; set; }
    public bool IsLeaf => GradFn is null;
    public bool IsDisposed => _disposed;

    internal Tensor(Storage storage, int[] shape)
    {
        Storage = storage;
        Shape = shape;
        Length = ShapeUtil.Count(shape);
        TensorScope.Register(this);
    }

    // ---- creation ----------------------------------------------------------------------------
    public static Tensor Empty(Backend backend, params int[] shape)
    {
        ShapeUtil.Validate(shape);
        var n = ShapeUtil.Count(shape);
        return new Tensor(new Storage(backend.Allocate(Math.Max(n, 1))), (int[])shape.Clone());
    }

    public static Tensor Zeros(Backend backend, params int[] shape) => Full(backend, 0f, shape);

    public static Tensor Full(Backend backend, float value, params int[] shape)
    {
        var t = Empty(backend, shape);
        backend.Fill(t.Buffer, 0, t.Length, value);
        return t;
    }

    public static Tensor FromArray(Backend backend, ReadOnlySpan<float> data, params int[] shape)
    {
        var t = Empty(backend, shape);
        if (data.Length != t.Length)
            throw new ArgumentException(
                $"FromArray: {data.Length} values do not fill shape {ShapeUtil.Str(shape)} ({t.Length})");
        backend.CopyIn(t.Buffer, 0, data);
        return t;
    }

    /// <summary>A trainable leaf that no scope will dispose (the module owns it).</summary>
    public static Tensor Parameter(Backend backend, string name, ReadOnlySpan<float> data, params int[] shape)
    {
        using (TensorScope.Suspend())
        {
            var t = FromArray(backend, data, shape);
            t.Name = name;
            t.RequiresGrad = true;
            return t;
        }
    }

    // ---- views and copies ----------------------------------------------------------------------
    /// <summary>Same storage, new shape (one dimension may be −1).</summary>
    public Tensor Reshape(params int[] shape)
    {
        var s = ShapeUtil.Resolve(shape, Length, "reshape");
        var v = new Tensor(Storage.AddRef(), s);
        F.RecordView(this, v);
        return v;
    }

    public float[] ToArray()
    {
        var a = new float[Length];
        Backend.CopyOut(Buffer, 0, a);
        return a;
    }

    public float Item()
    {
        if (Length != 1)
            throw new InvalidOperationException($"Item() needs one element, tensor has shape {ShapeUtil.Str(Shape)}");
        Span<float> one = stackalloc float[1];
        Backend.CopyOut(Buffer, 0, one);
        return one[0];
    }

    public void CopyFrom(ReadOnlySpan<float> data)
    {
        if (data.Length != Length)
            throw new ArgumentException($"CopyFrom: {data.Length} values into shape {ShapeUtil.Str(Shape)}");
        Backend.CopyIn(Buffer, 0, data);
    }

    /// <summary>Copies into this tensor's storage from another of equal length on the same backend.</summary>
    public void CopyFrom(Tensor src)
    {
        if (src.Length != Length || src.Backend != Backend)
            throw new ArgumentException($"CopyFrom: {src.Describe()} into {Describe()}");
        Backend.Copy(src.Buffer, 0, Buffer, 0, Length);
    }

    public Tensor Clone()
    {
        var c = Empty(Backend, Shape);
        Backend.Copy(Buffer, 0, c.Buffer, 0, Length);
        return c;
    }

    public int Dim(int i) => Shape[i < 0 ? Shape.Length + i : i];
    public int Rank => Shape.Length;

    /// <summary>Sets the gradient to zero (keeps its memory). Used by optimisers.</summary>
    public void ZeroGrad()
    {
        if (Grad is not null) Backend.Fill(Grad.Buffer, 0, Grad.Length, 0f);
    }

    /// <summary>Gradient tensor, created zero-filled and outside any scope if absent.</summary>
    internal Tensor EnsureGrad()
    {
        if (Grad is null)
        {
            using (TensorScope.Suspend()) Grad = Zeros(Backend, Shape);
        }
        return Grad;
    }

    internal void DropGrad()
    {
        Grad?.Dispose();
        Grad = null;
    }

    public string Describe() => $"{Name ?? "tensor"}{ShapeUtil.Str(Shape)}@{Storage.Buffer.Backend.Name}";
    public override string ToString() => Describe();

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Storage.Release();
        Grad?.Dispose();
        Grad = null;
    }
}

/// <summary>Refcounted device buffer shared by a tensor and its reshaped views.</summary>
internal sealed class Storage(DeviceBuffer buffer)
{
    private int _refs = 1;
    public DeviceBuffer Buffer { get; } = buffer;

    public Storage AddRef()
    {
        Interlocked.Increment(ref _refs);
        return this;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0) Buffer.Backend.Free(Buffer);
    }
}

public static class ShapeUtil
{
    public static long Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    public static string Str(ReadOnlySpan<int> shape) => "(" + string.Join(", ", shape.ToArray()) + ")";

    public static void Validate(int[] shape)
    {
        foreach (var d in shape)
            if (d < 0) throw new ArgumentException($"negative dimension in shape {Str(shape)}");
    }

    internal static int[] Resolve(int[] shape, long count, string op)
    {
        var s = (int[])shape.Clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"{op}: more than one -1 in {Str(shape)}");
                infer = i;
            }
            else if (s[i] < 0) throw new ArgumentException($"{op}: negative dimension in {Str(shape)}");
            else known *= s[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || count % known != 0)
                throw new ArgumentException($"{op}: cannot infer {Str(shape)} from {count} elements");
            s[infer] = (int)(count / known);
        }
        if (Count(s) != count) throw new ArgumentException($"{op}: shape {Str(shape)} does not hold {count} elements");
        return s;
    }
}
