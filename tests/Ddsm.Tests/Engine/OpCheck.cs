using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;

namespace Ddsm.Tests.Engine;

/// <summary>One input of an op under test: its shape, its values, and whether to check its gradient.</summary>
public sealed record Input(int[] Shape, float[] Data, bool Grad = true)
{
    public static Input Random(Rng rng, params int[] shape)
    {
        var d = new float[ShapeUtil.Count(shape)];
        rng.FillNormal(d);
        return new Input(shape, d);
    }

    public Input NoGrad() => this with { Grad = false };
}

/// <summary>
/// Checks an op against a float64 reference: forward element-wise, and backward against central
/// finite differences of L = Σ g·ref(x) computed in double (g random), so the analytic gradient is
/// tested against an independent derivative. Fails with the worst element: |got − ref| ≤ atol + rtol·|ref|.
/// </summary>
public static class OpCheck
{
    public static void Run(Backend be, string what, Func<Tensor[], Tensor> op, Func<double[][], double[]> reference,
        Input[] inputs, double atol = 1e-4, double rtol = 1e-3, double gradAtol = 2e-3, double gradRtol = 2e-3,
        int maxGradSamples = 48, ulong seed = 1)
    {
        var rng = new Rng(seed);
        var refIn = inputs.Select(i => i.Data.Select(v => (double)v).ToArray()).ToArray();
        var want = reference(refIn);

        using var scope = new TensorScope();
        var ts = inputs.Select((inp, k) =>
        {
            var t = Tensor.FromArray(be, inp.Data, inp.Shape);
            t.RequiresGrad = inp.Grad;
            t.Name = $"in{k}";
            return t;
        }).ToArray();
        var y = op(ts);
        var got = y.ToArray();
        Assert.That(got.Length, Is.EqualTo(want.Length), $"{what}: output length");
        AssertClose($"{what} forward", got, want, atol, rtol);

        if (!inputs.Any(i => i.Grad)) return;
        var g = new float[got.Length];
        rng.FillNormal(g);
        var gT = Tensor.FromArray(be, g, y.Shape);
        var loss = F.Sum(F.Mul(y, gT));
        Tape.Backward(loss);

        for (int k = 0; k < inputs.Length; k++)
        {
            if (!inputs[k].Grad) continue;
            var analytic = ts[k].Grad?.ToArray() ?? new float[ts[k].Length];
            // Sample elements to difference (all of them for small inputs).
            int n = analytic.Length;
            var idx = n <= maxGradSamples ? Enumerable.Range(0, n).ToArray()
                : Enumerable.Range(0, maxGradSamples).Select(_ => rng.NextInt(n)).Distinct().ToArray();
            var fd = new double[idx.Length];
            var got2 = new float[idx.Length];
            for (int s = 0; s < idx.Length; s++)
            {
                int i = idx[s];
                double x0 = refIn[k][i];
                double h = 1e-6 * Math.Max(1, Math.Abs(x0));
                refIn[k][i] = x0 + h; double lp = Dot(g, reference(refIn));
                refIn[k][i] = x0 - h; double lm = Dot(g, reference(refIn));
                refIn[k][i] = x0;
                fd[s] = (lp - lm) / (2 * h);
                got2[s] = analytic[i];
            }
            AssertClose($"{what} d/d(input {k}) {ShapeUtil.Str(inputs[k].Shape)}", got2, fd, gradAtol, gradRtol, idx);
        }
    }

    public static double Dot(float[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    public static void AssertClose(string what, float[] got, double[] want, double atol, double rtol,
                                   int[]? index = null)
    {
        int worst = -1;
        double worstExcess = double.NegativeInfinity;
        for (int i = 0; i < got.Length; i++)
        {
            double err = Math.Abs(got[i] - want[i]);
            double excess = err - (atol + rtol * Math.Abs(want[i]));
            if (double.IsNaN(got[i])) excess = double.PositiveInfinity;
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
        }
        if (worst >= 0 && worstExcess > 0)
            Assert.Fail($"{what}: worst element [{(index is null ? worst : index[worst])}] got {got[worst]:G9} want " +
                        $"{want[worst]:G9} (|err| {Math.Abs(got[worst] - want[worst]):G3} > atol {atol} + rtol " +
                        $"{rtol}·|ref|)");
    }

    public static void AssertClose(string what, float[] got, float[] want, double atol, double rtol)
        => AssertClose(what, got, want.Select(v => (double)v).ToArray(), atol, rtol);
}

/// <summary>
/// The GPU-kernel catalog entries (kernels/KernelCatalog.cs) a test launches when its fixture runs on
/// the ILGPU backend. Checked both ways: after a passing test, each named kernel must have been launched
/// (BackendFixture's TearDown), and the conformance suite checks that every catalog kernel is named by
/// some test, so every kernel runs on ILGPU's CPU accelerator in every `dotnet test`.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class CoversAttribute(params string[] kernels) : Attribute
{
    public IReadOnlyList<string> Kernels { get; } = kernels;
}

/// <summary>
/// Base of every op-family fixture: the suite is shared, each backend only says how to make a device.
/// A backend that is not present makes the whole fixture Ignored with the reason.
/// </summary>
public abstract class BackendFixture
{
    protected Backend B = null!;
    /// <summary>The backend under test, or null with a reason when it is not available here.</summary>
    protected abstract (Backend? backend, string reason) MakeBackend();
    /// <summary>Extra tolerance factor for backends with reduced-precision paths.</summary>
    protected virtual double TolScale => 1.0;
    /// <summary>
    /// True where every launch is expensive (ILGPU's CPU accelerator runs one OS thread per lane): the
    /// fixture then checks its smallest shapes only, which still cover every code path (ragged tiles,
    /// slimmed prefixes, strides).
    /// </summary>
    protected virtual bool Small => false;

    [OneTimeSetUp]
    public void SetUpBackend()
    {
        var (b, why) = MakeBackend();
        if (b is null) Assert.Ignore(why);
        B = b!;
    }

    private IReadOnlyDictionary<string, long>? _launchesBefore;

    [SetUp]
    public void RecordKernelLaunches()
    {
        if (B is IlgpuBackend g)
        {
            g.ExactFp32 = true;   // op tests compare with float64 references at float tolerances
            _launchesBefore = g.LaunchCounts;
        }
    }

    [TearDown]
    public void CheckCoveredKernelsRan()
    {
        if (B is not IlgpuBackend g || _launchesBefore is null) return;
        g.ExactFp32 = true;
        if (TestContext.CurrentContext.Result.Outcome.Status != NUnit.Framework.Interfaces.TestStatus.Passed) return;
        var method = GetType().GetMethod(TestContext.CurrentContext.Test.MethodName ?? "");
        var claimed = method?.GetCustomAttributes(typeof(CoversAttribute), true).Cast<CoversAttribute>()
            .SelectMany(c => c.Kernels) ?? [];
        var after = g.LaunchCounts;
        var idle = claimed.Where(k => after.GetValueOrDefault(k) <= _launchesBefore.GetValueOrDefault(k)).ToList();
        if (idle.Count > 0) Assert.Fail($"[Covers] names {string.Join(", ", idle)}, but the test never launched it");
    }
}
