using System.CommandLine;
using Ddsm.Training;

namespace Ddsm.Cli;

/// <summary>
/// The sandwich-training options <c>train</c> and <c>stepadapt</c> share: the same names and meaning, each verb
/// with its own defaults (stepadapt fine-tunes: a smaller lr, a shorter warm-up, a faster EMA) and words.
/// </summary>
internal sealed class TrainingFlags(TrainOptions defaults, string batchHelp, string sandwichHelp)
{
    private readonly Option<int> _batch = Opt.Of("--batch", defaults.BatchSize, batchHelp);
    private readonly Option<float> _lr = Opt.Of("--lr", defaults.Lr, "Adam learning rate");
    private readonly Option<int> _warmup = Opt.Of("--warmup", defaults.WarmupSteps, "linear lr warm-up steps");
    private readonly Option<int> _sandwichN = Opt.Of("--sandwich-n", defaults.SandwichN, sandwichHelp);
    private readonly Option<float> _ema = Opt.Of("--ema", defaults.EmaDecay, "EMA decay of the sampled weights");

    /// <summary>Adds the options to a verb, right after <paramref name="steps"/> (where --help lists them).</summary>
    public void AddTo(Command cmd, Option steps)
    {
        int at = cmd.Options.IndexOf(steps) + 1;
        foreach (var o in new Option[] { _batch, _lr, _warmup, _sandwichN, _ema }) cmd.Options.Insert(at++, o);
    }

    /// <summary>The parsed values over <paramref name="rest"/> (the verb's other training settings).</summary>
    public TrainOptions Read(ParseResult p, TrainOptions rest) => rest with
    {
        BatchSize = p.GetValue(_batch), Lr = p.GetValue(_lr), WarmupSteps = p.GetValue(_warmup),
        SandwichN = p.GetValue(_sandwichN), EmaDecay = p.GetValue(_ema),
    };
}
