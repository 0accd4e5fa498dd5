using Ddsm.Engine;
using Ddsm.Engine.Cpu;
using Ddsm.Engine.Optim;

namespace Ddsm.Tests.Engine;

public abstract class OptimTests : BackendFixture
{
    private static readonly int[][] Shapes = [[3], [2, 2], [5]];

    /// <summary>Fresh named parameters with random values (the caller disposes them).</summary>
    private Tensor[] MakeParams(ulong seed, int[][]? shapes = null)
    {
        var rng = new Rng(seed);
        return (shapes ?? Shapes).Select((s, k) =>
        {
            var d = new float[ShapeUtil.Count(s)];
            rng.FillNormal(d);
            return Tensor.Parameter(B, $"w{k}", d, s);
        }).ToArray();
    }

    private static float[][] RandomGrads(Rng rng, Tensor[] ps) => RandomGrads(rng, ps.Select(p => p.Shape).ToArray());

    private static float[][] RandomGrads(Rng rng, int[][] shapes) => shapes.Select(s =>
    {
        var g = new float[ShapeUtil.Count(s)];
        rng.FillNormal(g);
        return g;
    }).ToArray();

    private static void SetGrads(Tensor[] ps, float[][] gs)
    {
        for (int i = 0; i < ps.Length; i++) ps[i].EnsureGrad().CopyFrom(gs[i]);
    }

    private static void DisposeAll(IEnumerable<Tensor> ts)
    {
        foreach (var t in ts) t.Dispose();
    }

    /// <summary>AdamW in double, PyTorch's order: decay p by lr·wd, then the bias-corrected Adam update.</summary>
    private sealed class RefAdam(double[][] p, AdamOptions o)
    {
        public readonly double[][] P = p;
        private readonly double[][] _m = p.Select(x => new double[x.Length]).ToArray();
        private readonly double[][] _v = p.Select(x => new double[x.Length]).ToArray();
        private int _t;

        public (double norm, double lr, double scale) Step(float[][] grads)
        {
            _t++;
            double norm = Math.Sqrt(grads.Sum(g => g.Sum(x => (double)x * x)));
            double scale = o.ClipNorm is float c ? Math.Min(1, c / (norm + 1e-6)) : 1;
            double lr = o.WarmupSteps > 0 ? o.Lr * Math.Min(1.0, (double)_t / o.WarmupSteps) : o.Lr;
            for (int k = 0; k < P.Length; k++)
                for (int i = 0; i < P[k].Length; i++)
                {
                    double g = grads[k][i] * scale;
                    _m[k][i] = o.Beta1 * _m[k][i] + (1 - o.Beta1) * g;
                    _v[k][i] = o.Beta2 * _v[k][i] + (1 - o.Beta2) * g * g;
                    double mh = _m[k][i] / (1 - Math.Pow(o.Beta1, _t)), vh = _v[k][i] / (1 - Math.Pow(o.Beta2, _t));
                    P[k][i] -= lr * o.WeightDecay * P[k][i];
                    P[k][i] -= lr * mh / (Math.Sqrt(vh) + o.Eps);
                }
            return (norm, lr, scale);
        }
    }

    public static IEnumerable<TestCaseData> StepCases()
    {
        yield return new TestCaseData(new AdamOptions(Lr: 1e-2f)).SetName("Adam");
        yield return new TestCaseData(new AdamOptions(Lr: 1e-2f, WeightDecay: 0.1f)).SetName("AdamW");
        // Eps comparable to the clipped gradients, so the clip factor changes the update (with a tiny
        // eps a first Adam step is ≈ sign(g) whatever the scale).
        yield return new TestCaseData(new AdamOptions(Lr: 1e-2f, Eps: 0.05f, ClipNorm: 0.5f)).SetName("AdamClipped");
        yield return new TestCaseData(new AdamOptions(Lr: 1e-2f, Beta1: 0.8f, Beta2: 0.99f, WeightDecay: 0.05f,
                                                      WarmupSteps: 2)).SetName("AdamWWarmup");
    }

    [TestCaseSource(nameof(StepCases))]
    [Covers("adam_step_guarded", "clip_guard", "reduce_partials", "reduce_final")]
    public void StepsMatchDoubleReference(AdamOptions o)
    {
        var ps = MakeParams(41);
        var start = ps.Select(p => p.ToArray()).ToArray();
        var reference = new RefAdam(start.Select(a => a.Select(v => (double)v).ToArray()).ToArray(), o);
        var rng = new Rng(42);
        using var adam = new Adam(ps, o);
        try
        {
            for (int step = 1; step <= 3; step++)
            {
                var gs = RandomGrads(rng, ps);
                SetGrads(ps, gs);
                var info = adam.Step();
                var (norm, lr, scale) = reference.Step(gs);
                Assert.That(info.Step, Is.EqualTo(step));
                Assert.That(info.GradNorm, Is.EqualTo(norm).Within(1e-5 * norm), "grad norm before clipping");
                Assert.That(info.Lr, Is.EqualTo(lr).Within(1e-7 * lr));
                Assert.That(info.GradScale, Is.EqualTo(scale).Within(1e-6));
                if (o.ClipNorm is not null)
                    Assert.That(info.GradScale, Is.LessThan(0.5f), "the clip must be active in this case");
                adam.ZeroGrad();
            }
            Assert.That(adam.StepCount, Is.EqualTo(3));
            for (int k = 0; k < ps.Length; k++)
            {
                // Float32 arithmetic on O(1) values: ~1e-7 relative per op over 3 steps.
                OpCheck.AssertClose($"param {k} after 3 steps", ps[k].ToArray(), reference.P[k], 2e-6, 1e-5);
                // The update is not negligible next to the tolerance (a no-op step must fail).
                double moved = ps[k].ToArray().Zip(start[k], (a, b) => Math.Abs(a - b)).Max();
                Assert.That(moved, Is.GreaterThan(5e-3), $"param {k} moved");
            }
        }
        finally { DisposeAll(ps); }
    }

    [Test]
    public void ClippingScalesTheGradient()
    {
        // Adam with ClipNorm c on g must equal Adam without clipping on g·c/‖g‖, and differ from
        // unclipped Adam on g.
        var o = new AdamOptions(Lr: 1e-2f, Eps: 0.05f);
        const float clip = 0.3f;
        var rng = new Rng(43);
        var grads = Enumerable.Range(0, 3).Select(_ => RandomGrads(new Rng(rng.NextULong()), Shapes)).ToArray();
        float[] Run(AdamOptions opts, bool preScale)
        {
            var ps = MakeParams(44);
            using var adam = new Adam(ps, opts);
            try
            {
                foreach (var g in grads)
                {
                    var gs = g;
                    if (preScale)
                    {
                        double norm = Math.Sqrt(g.Sum(a => a.Sum(x => (double)x * x)));
                        float s = (float)Math.Min(1, clip / (norm + 1e-6));
                        gs = g.Select(a => a.Select(x => x * s).ToArray()).ToArray();
                    }
                    SetGrads(ps, gs);
                    adam.Step();
                }
                return ps.SelectMany(p => p.ToArray()).ToArray();
            }
            finally { DisposeAll(ps); }
        }
        var clipped = Run(o with { ClipNorm = clip }, false);
        var prescaled = Run(o, true);
        var plain = Run(o, false);
        OpCheck.AssertClose("clipped vs pre-scaled", clipped, prescaled, 1e-6, 1e-5);
        Assert.That(clipped.Zip(plain, (a, b) => Math.Abs(a - b)).Max(), Is.GreaterThan(1e-3),
                    "clipping changed the update");
    }

    [Test]
    public void WarmupRates()
    {
        Assert.That(LrSchedule.LinearWarmup(1, 4, 1e-3f), Is.EqualTo(2.5e-4f));
        Assert.That(LrSchedule.LinearWarmup(3, 4, 1e-3f), Is.EqualTo(7.5e-4f));
        Assert.That(LrSchedule.LinearWarmup(4, 4, 1e-3f), Is.EqualTo(1e-3f));
        Assert.That(LrSchedule.LinearWarmup(5000, 4, 1e-3f), Is.EqualTo(1e-3f));
        Assert.That(LrSchedule.LinearWarmup(1, 0, 1e-3f), Is.EqualTo(1e-3f));
        Assert.Throws<ArgumentOutOfRangeException>(() => LrSchedule.LinearWarmup(0, 4, 1e-3f));

        var ps = MakeParams(45);
        using var adam = new Adam(ps, new AdamOptions(Lr: 2e-3f, WarmupSteps: 4));
        var rng = new Rng(46);
        var lrs = new List<float>();
        for (int i = 0; i < 6; i++)
        {
            SetGrads(ps, RandomGrads(rng, ps));
            lrs.Add(adam.Step().Lr);
        }
        Assert.That(lrs, Is.EqualTo(new[] { 5e-4f, 1e-3f, 1.5e-3f, 2e-3f, 2e-3f, 2e-3f }).Within(1e-9f));
        DisposeAll(ps);
    }

    [Test]
    public void ConvergesOnAQuadratic()
    {
        var ps = MakeParams(47, [[64]]);
        var t = new float[64];
        new Rng(48).FillNormal(t, 2f);
        using var target = Tensor.FromArray(B, t, 64);
        // Small: a 4× shorter schedule (larger lr, shorter warmup) held to the same 10⁴ reduction: it reaches
        // ≈2e-5 of the first loss by step 100 on the CPU backend.
        var (lr, warmup, steps) = Small ? (0.2f, 5, 100) : (0.05f, 10, 400);
        using var adam = new Adam(ps, new AdamOptions(Lr: lr, WarmupSteps: warmup, ClipNorm: 1f));
        double first = 0, last = 0;
        for (int step = 0; step < steps; step++)
        {
            using var scope = new TensorScope();
            var loss = F.MseLoss(ps[0], target);
            if (step == 0) first = loss.Item();
            last = loss.Item();
            Tape.Backward(loss);
            adam.Step();
            adam.ZeroGrad();
        }
        Assert.That(first, Is.GreaterThan(1.0));
        Assert.That(last, Is.LessThan(1e-4 * first), $"loss {first} → {last}");
        DisposeAll(ps);
    }

    [Test]
    public void NonFiniteGradientStopsTheStep()
    {
        var ps = MakeParams(49);
        var before = ps.Select(p => p.ToArray()).ToArray();
        using var adam = new Adam(ps);
        var gs = RandomGrads(new Rng(50), ps);
        gs[1][2] = float.NaN;
        SetGrads(ps, gs);
        var ex = Assert.Throws<InvalidOperationException>(() => adam.Step());
        Assert.That(ex!.Message, Does.Contain("adam").And.Contain("w1").And.Contain("NaN").And.Not.Contain("w0"));
        Assert.That(adam.StepCount, Is.EqualTo(0), "no step counted");
        for (int k = 0; k < ps.Length; k++) Assert.That(ps[k].ToArray(), Is.EqualTo(before[k]), "no parameter changed");
        Assert.That(adam.State.SelectMany(s => s.M.ToArray().Concat(s.V.ToArray())), Is.All.EqualTo(0f),
                    "moments untouched");

        gs[1][2] = 1f;
        gs[2][0] = float.PositiveInfinity;
        SetGrads(ps, gs);
        ex = Assert.Throws<InvalidOperationException>(() => adam.Step());
        Assert.That(ex!.Message, Does.Contain("w2").And.Contain("Inf"));
        DisposeAll(ps);
    }

    [Test]
    public void ParametersWithoutGradientAreSkipped()
    {
        var ps = MakeParams(51);
        var frozen = ps[1].ToArray();
        var moving = ps[0].ToArray();
        using var adam = new Adam(ps, new AdamOptions(Lr: 1e-2f));
        var gs = RandomGrads(new Rng(52), ps);
        ps[0].EnsureGrad().CopyFrom(gs[0]);
        ps[2].EnsureGrad().CopyFrom(gs[2]);
        var info = adam.Step();
        Assert.That(ps[1].ToArray(), Is.EqualTo(frozen));
        Assert.That(ps[0].ToArray(), Is.Not.EqualTo(moving));
        double norm = Math.Sqrt(gs[0].Concat(gs[2]).Sum(x => (double)x * x));
        Assert.That(info.GradNorm, Is.EqualTo(norm).Within(1e-5 * norm), "norm over parameters with gradients only");
        DisposeAll(ps);
    }

    [Test]
    public void ResumeFromStateIsBitEqual()
    {
        // Run A: 3 steps. Run B: 2 steps, state copied into a fresh optimiser C over fresh
        // parameters, then the 3rd step: C must end bit-equal to A (checkpoint resume).
        var rng = new Rng(53);
        var grads = Enumerable.Range(0, 3).Select(_ => RandomGrads(rng, Shapes)).ToArray();
        var o = new AdamOptions(Lr: 1e-2f, WeightDecay: 0.01f, ClipNorm: 1f, WarmupSteps: 2);

        var pa = MakeParams(54);
        using (var a = new Adam(pa, o))
            foreach (var g in grads) { SetGrads(pa, g); a.Step(); }

        var pb = MakeParams(54);
        var pc = MakeParams(99); // different values: everything must come from the "checkpoint"
        using (var b = new Adam(pb, o))
        using (var c = new Adam(pc, o))
        {
            for (int i = 0; i < 2; i++) { SetGrads(pb, grads[i]); b.Step(); }
            // Made in scopes to prove the lazily created state does not belong to any scope.
            using (new TensorScope()) c.EnsureState();
            for (int k = 0; k < pb.Length; k++)
            {
                c.State[k].Param.CopyFrom(b.State[k].Param.ToArray());
                c.State[k].M.CopyFrom(b.State[k].M.ToArray());
                c.State[k].V.CopyFrom(b.State[k].V.ToArray());
            }
            c.StepCount = b.StepCount;
            SetGrads(pc, grads[2]);
            using (new TensorScope()) c.Step();
            Assert.That(c.State.Select(s => s.M).Distinct().Count(), Is.EqualTo(pc.Length));
        }
        for (int k = 0; k < pa.Length; k++) Assert.That(pc[k].ToArray(), Is.EqualTo(pa[k].ToArray()), $"param {k}");
        DisposeAll(pa); DisposeAll(pb); DisposeAll(pc);
    }

    [Test]
    public void BadSetupIsRejected()
    {
        var ps = MakeParams(55);
        using var other = new CpuBackend();
        using var foreign = Tensor.Parameter(other, "elsewhere", [1f, 2f], 2);
        var ex = Assert.Throws<ArgumentException>(() => new Adam([ps[0], foreign]));
        Assert.That(ex!.Message, Does.Contain("adam").And.Contain("different devices").And.Contain("elsewhere"));
        ex = Assert.Throws<ArgumentException>(() => new Adam([ps[0], ps[0]]));
        Assert.That(ex!.Message, Does.Contain("adam").And.Contain("twice"));
        ex = Assert.Throws<ArgumentException>(() => new Adam(ps, new AdamOptions(Beta1: 1f)));
        Assert.That(ex!.Message, Does.Contain("adam").And.Contain("Beta1"));
        Assert.Throws<ArgumentException>(() => new Adam(ps, new AdamOptions(ClipNorm: 0f)));
        DisposeAll(ps);
    }

    [Test]
    public void AdamKernelDoesNotDependOnPosition()
    {
        // Elements [k] and [96 + k] hold the same inputs; with 111 elements the later copies of 7–15 pairs
        // fall in the CPU kernel's scalar tail (8- or 16-wide SIMD), the first in its SIMD body: results
        // must be bit-identical.
        const int n = 111, shift = 96;
        var rng = new Rng(61);
        float[] Rand(float lo, float hi)
        {
            var a = new float[n];
            rng.FillUniform(a, lo, hi);
            for (int k = 0; k < n - shift; k++) a[shift + k] = a[k];
            return a;
        }
        var pd = Rand(-2, 2); var gd = Rand(-1, 1); var md = Rand(-0.1f, 0.1f); var vd = Rand(0, 0.05f);
        using var scope = new TensorScope();
        var p = Tensor.FromArray(B, pd, n); var g = Tensor.FromArray(B, gd, n);
        var m = Tensor.FromArray(B, md, n); var v = Tensor.FromArray(B, vd, n);
        B.AdamStep(p.Buffer, g.Buffer, m.Buffer, v.Buffer, n,
                   new AdamHyper(0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.271f, 0.00399f, 0.7f));
        foreach (var (what, t, before) in new[] { ("p", p, pd), ("m", m, md), ("v", v, vd) })
        {
            var a = t.ToArray();
            Assert.That(a, Is.Not.EqualTo(before), what + " changed");
            for (int k = 0; k < n - shift; k++)
                Assert.That(a[shift + k], Is.EqualTo(a[k]), $"{what}[{k}] vs [{shift + k}]");
        }
    }

    // ---- EMA ---------------------------------------------------------------------------------------

    [Test]
    [Covers("axpby")]
    public void EmaFollowsClosedForm()
    {
        // Shadows start at p0; with the parameters held at p1, k updates give p1 + d^k·(p0 − p1).
        var ps = MakeParams(56);
        var p0 = ps.Select(p => p.ToArray()).ToArray();
        using var ema = new Ema(ps);
        var p1 = RandomGrads(new Rng(57), ps);
        for (int k = 0; k < ps.Length; k++) ps[k].CopyFrom(p1[k]);
        Assert.That(ema.Shadow[0].ToArray(), Is.EqualTo(p0[0]), "shadows are copies, not aliases");
        const float d = 0.9f;
        for (int i = 0; i < 5; i++) ema.Update(d);
        for (int k = 0; k < ps.Length; k++)
        {
            var want = p1[k].Select((v, i) => v + Math.Pow(d, 5) * (p0[k][i] - v)).ToArray();
            OpCheck.AssertClose($"ema {k}", ema.Shadow[k].ToArray(), want, 1e-6, 1e-5);
        }
        Assert.That(ema.Shadow[0].ToArray(), Is.Not.EqualTo(p1[0]));
        DisposeAll(ps);
    }

    [Test]
    public void EmaSwapInAndRestore()
    {
        var ps = MakeParams(58);
        using var ema = new Ema(ps);
        var live = RandomGrads(new Rng(59), ps);
        for (int k = 0; k < ps.Length; k++) ps[k].CopyFrom(live[k]);
        ema.Update(0.5f);
        var shadow = ema.Shadow.Select(s => s.ToArray()).ToArray();
        using (ema.SwapIn())
        {
            for (int k = 0; k < ps.Length; k++) Assert.That(ps[k].ToArray(), Is.EqualTo(shadow[k]));
            Assert.Throws<InvalidOperationException>(() => ema.Update(0.9f));
            Assert.Throws<InvalidOperationException>(() => ema.SwapIn());
        }
        for (int k = 0; k < ps.Length; k++) Assert.That(ps[k].ToArray(), Is.EqualTo(live[k]), "live weights restored");
        using (ema.SwapIn()) { } // the backup is reused
        Assert.That(ps[2].ToArray(), Is.EqualTo(live[2]));

        var copies = MakeParams(60);
        ema.CopyTo(copies);
        for (int k = 0; k < ps.Length; k++) Assert.That(copies[k].ToArray(), Is.EqualTo(shadow[k]));

        using var other = new CpuBackend();
        var foreign = copies.Select(c => Tensor.Parameter(other, c.Name!, c.ToArray(), c.Shape)).ToArray();
        var ex = Assert.Throws<ArgumentException>(() => ema.CopyTo(foreign));
        Assert.That(ex!.Message, Does.Contain("ema.copy_to").And.Contain("different devices"));
        ex = Assert.Throws<ArgumentException>(() => ema.CopyTo(copies.Take(2).ToArray()));
        Assert.That(ex!.Message, Does.Contain("ema.copy_to"));
        Assert.Throws<ArgumentException>(() => ema.Update(1.5f));
        DisposeAll(ps); DisposeAll(copies); DisposeAll(foreign);
    }
}
