using ILGPU;
using ILGPU.Runtime;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

/// <summary>A launcher of any argument type: which kernel, and how often it was launched.</summary>
internal interface ILauncher
{
    KernelEntry Entry { get; }
    long Launches { get; }
}

/// <summary>
/// One kernel of the catalog as the backend launches it: compiled and loaded at first use (once per
/// backend), then a typed launcher delegate. Kernels take a single argument struct, so one generic
/// launch path serves every family.
/// </summary>
internal sealed class Launcher<TArgs> : ILauncher where TArgs : struct
{
    private readonly object _gate = new();
    private Action<AcceleratorStream, KernelConfig, TArgs>? _fn;
    private Kernel? _kernel;
    private bool _largeShared;

    public Launcher(KernelEntry entry)
    {
        if (entry.ArgsType != typeof(TArgs))
            throw new ArgumentException($"kernel {entry.Name} takes {entry.ArgsType.Name}, not {typeof(TArgs).Name}");
        Entry = entry;
    }

    public KernelEntry Entry { get; }
    /// <summary>
    /// Launches queued so far (the conformance suite checks that each test ran the kernels it claims).
    /// </summary>
    public long Launches => Interlocked.Read(ref _launches);
    private long _launches;
    internal void Count() => Interlocked.Increment(ref _launches);

    /// <summary>
    /// The launch delegate, compiling the kernel on first use; raises the shared-memory limit when asked for more than
    /// 48 KB.
    /// </summary>
    public Action<AcceleratorStream, KernelConfig, TArgs> Loaded(IlgpuBackend backend, int sharedBytes)
    {
        var fn = _fn;
        if (fn is null)
        {
            lock (_gate)
            {
                if (_fn is null)
                {
                    try
                    {
                        _kernel = backend.Accelerator.LoadKernel(Entry.Method);
                        _fn = _kernel.CreateLauncherDelegate<Action<AcceleratorStream, KernelConfig, TArgs>>();
                    }
                    catch (Exception e) when (e is not DeviceException)
                    {
                        throw new DeviceException($"{backend.Name}: kernel {Entry.Name} failed to compile or load: " +
                                                  $"{e.InnerException?.Message ?? e.Message}", e);
                    }
                }
                fn = _fn;
            }
        }
        if (sharedBytes > 48 * 1024 && !_largeShared)
        {
            lock (_gate)
            {
                if (!_largeShared) backend.AllowLargeShared(_kernel!, Entry.Name);
                _largeShared = true;
            }
        }
        return fn;
    }
}
