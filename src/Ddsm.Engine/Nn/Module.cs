namespace Ddsm.Engine.Nn;

/// <summary>
/// Base of every layer: owns named parameters and named child modules, so that a whole network can
/// list its parameters under PyTorch-style dotted names ("input_blocks.1.0.in_layers.2.weight"),
/// save and load them by name, and be disposed in one call. Forward signatures are each layer's own.
/// Build bottom-up: create a child, then register it with <see cref="Child{T}"/>.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor P)> _params = new();
    private readonly List<(string Name, Module M)> _children = new();
    private Module? _parent;
    private string _nameInParent = "";
    private bool _disposed;

    protected Module(Backend backend)
    {
        Backend = backend ?? throw new ArgumentNullException(nameof(backend));
    }

    /// <summary>The device every parameter of this module lives on.</summary>
    public Backend Backend { get; }

    /// <summary>A new trainable parameter (outside any scope; this module disposes it).</summary>
    protected Tensor Param(string name, int[] shape, Initializer init)
    {
        CheckName(name);
        ShapeUtil.Validate(shape);
        var data = new float[ShapeUtil.Count(shape)];
        init(data, shape);
        var p = Tensor.Parameter(Backend, Path() + name, data, shape);
        _params.Add((name, p));
        return p;
    }

    /// <summary>Registers <paramref name="module"/> under <paramref name="name"/> and returns it.</summary>
    protected T Child<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        CheckName(name);
        if (module._parent is not null)
            throw new ArgumentException(
                $"module: child '{name}' ({module.GetType().Name}) is already registered elsewhere");
        if (module.Backend != Backend)
            throw new ArgumentException(
                $"module: child '{name}' is on device {module.Backend.Name}, its parent on {Backend.Name}");
        for (var a = this; a is not null; a = a._parent)
            if (a == module) throw new ArgumentException($"module: child '{name}' would make a cycle");
        module._parent = this;
        module._nameInParent = name;
        _children.Add((name, module));
        // Parameters carry their dotted path from the outermost module known so far as their tensor
        // name, so error messages and checkpoints say "…in_layers.2.weight", not "weight". Trees may
        // be built bottom-up or top-down: both Param and Child name with the path at that moment.
        var prefix = Path() + name + ".";
        foreach (var (n, p) in module.NamedParameters()) p.Name = prefix + n;
        return module;
    }

    /// <summary>"a.b." for a module registered as b inside a; "" for a root.</summary>
    private string Path()
    {
        var s = "";
        for (var m = this; m._parent is not null; m = m._parent) s = m._nameInParent + "." + s;
        return s;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"module: name '{name}' must be non-empty and contain no '.'");
        if (_params.Any(p => p.Name == name) || _children.Any(c => c.Name == name))
            throw new ArgumentException($"module: name '{name}' is already used in {GetType().Name}");
    }

    /// <summary>Own parameters first, then each child's in registration order (PyTorch's order).</summary>
    public IEnumerable<(string Name, Tensor Param)> NamedParameters()
    {
        foreach (var p in _params) yield return p;
        foreach (var (cn, c) in _children)
            foreach (var (n, p) in c.NamedParameters())
                yield return (cn + "." + n, p);
    }

    public IReadOnlyList<Tensor> Parameters() => NamedParameters().Select(p => p.Param).ToList();

    public long ParameterCount => NamedParameters().Sum(p => p.Param.Length);

    public void ZeroGrad()
    {
        foreach (var (_, p) in NamedParameters()) p.ZeroGrad();
    }

    /// <summary>Every parameter's values by dotted name, in <see cref="NamedParameters"/> order.</summary>
    public Dictionary<string, float[]> StateDict()
    {
        var d = new Dictionary<string, float[]>();
        foreach (var (n, p) in NamedParameters()) d.Add(n, p.ToArray());
        return d;
    }

    /// <summary>
    /// Loads every parameter by name. Strict: the names must match exactly and each length must fit;
    /// otherwise nothing is loaded and the ArgumentException lists the missing, unexpected and
    /// mis-sized names.
    /// </summary>
    public void LoadState(IReadOnlyDictionary<string, float[]> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var mine = NamedParameters().ToList();
        var names = mine.Select(p => p.Name).ToHashSet();
        var missing = mine.Where(p => !state.ContainsKey(p.Name)).Select(p => p.Name).ToList();
        var unexpected = state.Keys.Where(k => !names.Contains(k)).Order(StringComparer.Ordinal).ToList();
        var badSize = mine.Where(p => state.TryGetValue(p.Name, out var v) && (v is null || v.Length != p.Param.Length))
            .Select(p =>
                $"{p.Name} (want {p.Param.Length} = {ShapeUtil.Str(p.Param.Shape)}, got " +
                $"{state[p.Name]?.Length.ToString() ?? "null"})")
            .ToList();
        if (missing.Count + unexpected.Count + badSize.Count > 0)
        {
            static string List(string what, List<string> xs) =>
                xs.Count == 0 ? ""
                    : $" {what} ({xs.Count}): {string.Join(", ", xs.Take(10))}{(xs.Count > 10 ? ", …" : "")}.";
            throw new ArgumentException($"load_state into {GetType().Name}:" +
                List("missing", missing) + List("unexpected", unexpected) + List("wrong size", badSize));
        }
        foreach (var (n, p) in mine) p.CopyFrom(state[n]);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var (_, p) in _params) p.Dispose();
        foreach (var (_, c) in _children) c.Dispose();
        DisposeCaches();
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees device memory a module keeps besides its parameters (caches); nothing by default.</summary>
    protected virtual void DisposeCaches() { }
}

/// <summary>
/// Children named by position ("0", "1", …) like PyTorch's ModuleList/Sequential, so ADM's names
/// ("input_blocks.1.0…", "in_layers.2.weight") come out unchanged. <see cref="Skip"/> takes a number
/// for a layer without parameters (ADM's SiLU at in_layers.1).
/// </summary>
public sealed class ModuleList(Backend backend) : Module(backend)
{
    private readonly List<Module?> _items = new();

    public T Add<T>(T module) where T : Module
    {
        Child(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        _items.Add(module);
        return module;
    }

    /// <summary>Reserves the next index for a parameterless layer.</summary>
    public void Skip() => _items.Add(null);

    /// <summary>The module at <paramref name="i"/> (null for a skipped index).</summary>
    public Module? this[int i] => _items[i];
    public int Count => _items.Count;
}
