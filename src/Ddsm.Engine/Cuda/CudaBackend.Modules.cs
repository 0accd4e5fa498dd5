namespace Ddsm.Engine.Cuda;

// Kernel modules: source → NVRTC (or the disk cache) → cuModuleLoadData → functions, and launches.
public sealed partial class CudaBackend
{
    // ---- kernels ---------------------------------------------------------------------------------
    /// <summary>The function <paramref name="name"/> of kernels/<paramref name="file"/>, compiling and
    /// loading the module at first use (disk cache first).</summary>
    internal unsafe IntPtr Function(string file, string name)
    {
        var key = file + ":" + name;
        lock (_gate)
        {
            if (_functions.TryGetValue(key, out var f)) return f;
            MakeCurrent();
            if (!_modules.TryGetValue(file, out var module))
            {
                var image = CompileCached(file);
                fixed (byte* p = image) Driver.Check(Driver.cuModuleLoadData(out module, p), $"cuModuleLoadData({file})");
                _modules[file] = module;
            }
            var cname = Driver.CString(name);
            fixed (byte* p = cname) Driver.Check(Driver.cuModuleGetFunction(out f, module, p), $"cuModuleGetFunction({file}:{name})");
            _functions[key] = f;
            return f;
        }
    }

    private byte[] CompileCached(string file)
    {
        var source = KernelSources.Read(file);
        var headers = KernelSources.Headers();
        var options = CompileOptions;
        var version = Nvrtc.Version();
        var key = KernelCache.Key(source, headers, Arch, options, version);
        var image = KernelCache.TryLoad(key);
        if (image is not null) return image;
        image = Nvrtc.Compile(source, file, headers, options);
        KernelCache.Store(key, image);
        return image;
    }

    /// <summary>Compiles and loads every kernel file now (else each compiles at its first launch).</summary>
    public void Warmup()
    {
        foreach (var f in KernelSources.Names().Where(n => n.EndsWith(".cu", StringComparison.Ordinal)))
        {
            lock (_gate)
            {
                if (_modules.ContainsKey(f)) continue;
            }
            Function(f, FirstKernelOf(f));
        }
    }

    private static string FirstKernelOf(string file)
    {
        var src = KernelSources.Read(file);
        var m = System.Text.RegularExpressions.Regex.Match(src, @"extern ""C"" __global__ void (?:__launch_bounds__\([^)]*\) )?(\w+)");
        return m.Success ? m.Groups[1].Value : throw new InvalidOperationException($"{file}: no extern \"C\" __global__ kernel");
    }

    internal void Launch(string file, string name, (uint x, uint y, uint z) grid, uint block, KernelArgs args, uint sharedBytes = 0)
    {
        if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;   // empty problem
        if (sharedBytes > MaxSharedBytesPerBlock)
            throw new NotSupportedException($"{name} needs {sharedBytes} B of shared memory; {DeviceName} allows {MaxSharedBytesPerBlock}");
        if (_dryRun is not null) { _dryRun(new LaunchRecord(file, name, grid, block, sharedBytes, args.Tags)); return; }
        var f = Function(file, name);
        if (sharedBytes > 48 * 1024) RaiseSharedLimit(f, name, sharedBytes);
        MakeCurrent();
        int r = args.Launch(f, grid, block, sharedBytes, _stream);
        if (r != Driver.Success) throw Driver.Error(r, $"cuLaunchKernel({file}:{name}, grid {grid}, block {block}, smem {sharedBytes})");
    }

    private void RaiseSharedLimit(IntPtr f, string name, uint bytes)
    {
        lock (_gate)
        {
            if (!_smemRaised.Add(f)) return;
        }
        Driver.Check(Driver.cuFuncSetAttribute(f, Driver.FuncAttrMaxDynamicSharedSizeBytes, MaxSharedBytesPerBlock),
            $"cuFuncSetAttribute({name}, MAX_DYNAMIC_SHARED_SIZE_BYTES)");
    }

    /// <summary>Blocks for a grid-stride element-wise kernel over n items (256 threads each).</summary>
    internal uint Blocks(long n, int threads = 256)
    {
        long b = (n + threads - 1) / threads;
        return (uint)Math.Clamp(b, 1, (long)MultiprocessorCount * 32);
    }

    internal static uint Ceil(long n, int tile) => (uint)((n + tile - 1) / tile);
}
