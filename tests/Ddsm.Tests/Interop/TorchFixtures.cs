using Ddsm.Engine;
using Ddsm.IO;
using Ddsm.Model;

namespace Ddsm.Tests.Interop;

/// <summary>
/// The committed PyTorch fixtures (tests/Ddsm.Tests/Fixtures/Torch, written by bench/pytorch/make_fixtures.py)
/// and the comparison every test against them uses.
/// </summary>
internal static class TorchFixtures
{
    public static string PathOf(string name) =>
        Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "Torch", name);

    public static SafeTensorsFile Read(string name) => SafeTensors.Read(PathOf(name));

    public static UNetConfig Config(SafeTensorsFile f) => UNetConfig.FromJson(f.Metadata["config"]);

    public static Tensor Tensor(Backend be, SafeTensorsFile f, string name) =>
        Ddsm.Engine.Tensor.FromArray(be, f[name].ToFloat(), f[name].Shape.Select(d => (int)d).ToArray());

    /// <summary>
    /// |got − ref| ≤ atol + rtol·|ref| element-wise, with atol relative to the largest |ref| (gradients of
    /// different layers differ by orders of magnitude); on failure names the worst element (llm.c's check).
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> got, ReadOnlySpan<float> want, string what, double rtol,
        double atolOfMax)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), $"{what}: length");
        double max = 0;
        foreach (var v in want) max = Math.Max(max, Math.Abs(v));
        double atol = atolOfMax * max, worst = -1;
        int at = -1;
        for (int i = 0; i < got.Length; i++)
        {
            double excess = Math.Abs(got[i] - want[i]) - (atol + rtol * Math.Abs(want[i]));
            if (!double.IsFinite(got[i])) excess = double.PositiveInfinity;
            if (excess > worst) (worst, at) = (excess, i);
        }
        if (worst > 0)
            Assert.Fail($"{what}: element {at} is {got[at]}, PyTorch {want[at]} " +
                        $"(|Δ| {Math.Abs(got[at] - want[at]):G3} > {atol:G3} + {rtol}·|ref|; max |ref| {max:G3})");
    }
}
