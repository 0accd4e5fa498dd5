namespace Ddsm.Search;

/// <summary>
/// Scores one candidate step strategy on the search's two objectives, both to MINIMISE:
/// quality (e.g. Fréchet distance of its samples to the reference statistics; lower is better) and
/// cost (e.g. GFLOPs per generated image).
/// <para>
/// CONTRACT — common random numbers: an implementation must generate every candidate's samples from
/// the SAME starting noise x_T and the SAME per-step noise (and class labels, if any), fixed once when
/// the evaluator is built, so that two strategies differ in score only because their widths differ.
/// Without it the sampling noise of a few hundred images (a few FD points) swamps the differences
/// between neighbouring strategies and the search ranks noise. It also makes Evaluate a function of
/// the strategy alone, which is what lets the search memoise results and resume after a kill.
/// </para>
/// <para>Return +∞ (not NaN) for a candidate that fails, e.g. diverging samples; NaN is treated as +∞.</para>
/// </summary>
public interface IStrategyEvaluator
{
    (double quality, double cost) Evaluate(StepStrategy s);
}
