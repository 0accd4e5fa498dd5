using System.CommandLine;

namespace Ddsm.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand(
            "ddsm — step-aware diffusion: slimmable UNet training, width-per-step sampling, strategy search")
        {
            TrainCommand.Create(),
            SampleCommand.Create(),
            DataCommand.Create(),
            EvalCommand.Create(),
            SearchCommand.Create(),
            StepAdaptCommand.Create(),
            QuickstartCommand.Create(),
            KernelsCommand.Create(),
            ImportCommand.Create(),
        };
        return root.Parse(args).Invoke();
    }
}
