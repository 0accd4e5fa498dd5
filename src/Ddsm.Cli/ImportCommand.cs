using System.CommandLine;
using Ddsm.Interop;
using Ddsm.Runs;
using Spectre.Console;

namespace Ddsm.Cli;

/// <summary>
/// <c>ddsm import CKPT</c>: a PyTorch checkpoint (torch.save's zip format, read by a restricted unpickler that
/// runs nothing) or a safetensors state dict, in our layout or the DDSM release's, into a checkpoint that
/// sample, search and stepadapt read.
/// </summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var source = new Argument<string>("CKPT")
        {
            Description = "a .pt/.pth written by torch.save (PyTorch ≥ 1.6), or a .safetensors state dict",
        };
        var layout = Opt.Of<string>("--layout", "ours",
            "parameter names: ours (ADM's, as our model) or ddsm-release (the DDSM release's CIFAR-10 UNet)");
        var preset = Opt.Of<string?>("--preset",
            "the model: a preset name or a config JSON file (default: the file's own config; cifar10-ddsm for " +
            "ddsm-release)");
        var outPath = Opt.Required<string>("--out", "checkpoint to write (.safetensors)");
        var force = Opt.Of<bool>("--force", "replace a checkpoint at --out");
        var cmd = new Command("import", "import a PyTorch or safetensors checkpoint (our layout or the DDSM release's)")
            { source, layout, preset, outPath, force };
        cmd.SetAction(p => Common.Guard(() =>
            Run(p.GetValue(source)!, p.GetValue(layout)!, p.GetValue(preset), p.GetValue(outPath)!,
                p.GetValue(force))));
        return cmd;
    }

    private static int Run(string source, string layout, string? preset, string outPath, bool force)
    {
        if (!File.Exists(source)) throw new FileNotFoundException($"checkpoint '{source}' not found", source);
        OutputFiles.Check([outPath], [source, preset ?? ""], force);
        var r = CheckpointImport.Run(source, CheckpointImport.ParseLayout(layout), outPath, preset);
        string step = r.SourceStep is { } s ? $", step {s}" : "";
        AnsiConsole.MarkupLineInterpolated($"{source}: {r.Found}, {r.Parameters:N0} parameters{step}");
        if (r.Ignored.Count > 0) AnsiConsole.MarkupLineInterpolated($"not imported: {string.Join(", ", r.Ignored)}");
        string widths = string.Join(", ", r.Config.Widths);
        AnsiConsole.MarkupLineInterpolated($"model '{r.Config.Name}' ({r.ConfigSource}), widths {widths}");
        AnsiConsole.MarkupLineInterpolated($"wrote {r.OutPath}: sample it with `ddsm sample --checkpoint {r.OutPath}`");
        return 0;
    }
}
