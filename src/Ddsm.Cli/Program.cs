using System.CommandLine;

namespace Ddsm.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Terminal.Configure();
        var root = new RootCommand(
            "ddsm — step-aware diffusion: slimmable UNet training, width-per-step sampling, strategy search\n" +
            "exit codes: 0 done, 1 usage error, 2 bad input (a missing, unreadable or damaged file), " +
            "130 stopped by SIGINT (Ctrl-C), 143 stopped by SIGTERM")
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
        root.HelpName = "ddsm";   // not the assembly's name, Ddsm.Cli, nor the test host's when run in-process
        return root.Parse(args).Invoke();
    }
}
