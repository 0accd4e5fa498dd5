namespace Ddsm.Bench;

/// <summary>Benchmark programs: `dotnet run -c Release --project bench/Ddsm.Bench -- NAME`.</summary>
public static class Program
{
    private static readonly Dictionary<string, (string help, Func<string[], int> run)> Benches = new();

    public static void Register(string name, string help, Func<string[], int> run) => Benches[name] = (help, run);

    public static int Main(string[] args)
    {
        foreach (var t in typeof(Program).Assembly.GetTypes())
            if (t.GetMethod("Register",
                            System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public) is { } m &&
                t != typeof(Program))
                m.Invoke(null, null);
        if (args.Length == 0 || !Benches.TryGetValue(args[0], out var b))
        {
            Console.WriteLine("usage: Ddsm.Bench NAME [args]\n");
            foreach (var (n, (h, _)) in Benches.OrderBy(kv => kv.Key)) Console.WriteLine($"  {n,-16} {h}");
            return args.Length == 0 ? 0 : 2;
        }
        return b.run(args[1..]);
    }
}
