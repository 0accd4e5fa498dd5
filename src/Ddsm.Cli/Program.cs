namespace Ddsm.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("ddsm: the command line is being built; no verbs are available yet.");
        return 2;
    }
}
