using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;

namespace Ddsm.Tests.Engine;

/// <summary>
/// The per-step scalar ops (kernels/StepScalars.cs) and step graphs, on every backend: each step op computes, bit
/// for bit, what its plain twin computes with the current row's values as arguments, row after row as the
/// table advances; a captured step runs nothing until replayed, and a replay reads the table's current row. On
/// the ILGPU backend a replay reissues the recorded launches, so a host value passed as an argument stays the
/// captured one: the property that makes sampling graph-safe is tested here without a GPU.
/// </summary>
public abstract class StepScalarOpTests : BackendFixture
{
    private const int One = 0, Alpha = 1, Beta = 2, Value = 3, Offset = 4, Stride = 6;

    /// <summary>Three rows of scalars; row 2's noise offset needs both 24-bit halves.</summary>
    private static float[] Rows()
    {
        var rows = new float[3 * Stride];
        ulong[] offsets = [0, 777, (5UL << 24) + 12_345];
        for (int r = 0; r < 3; r++)
        {
            var row = rows.AsSpan(r * Stride, Stride);
            (row[One], row[Alpha], row[Beta], row[Value]) = (1f, 0.5f + r, r == 1 ? 0f : -1.25f * r, 3.5f - r);
            (row[Offset], row[Offset + 1]) = StepTable.SplitOffset(offsets[r]);
        }
        return rows;
    }

    private float[] Down(DeviceBuffer b, long n)
    {
        var a = new float[n];
        B.CopyOut(b, 0, a);
        return a;
    }

    private DeviceBuffer Up(float[] a)
    {
        var b = B.Allocate(a.Length);
        B.CopyIn(b, 0, a);
        return b;
    }

    [Test]
    [Covers("axpby_step", "fill_step", "normal_step", "advance_step", "axpby", "normal")]
    public void StepOpsEqualTheirPlainTwinsRowAfterRow()
    {
        long n = Small ? 333 : 10_001;
        var rows = Rows();
        using var table = new StepTable(B, rows, Stride);
        var r = new Rng(71);
        var x = new float[n]; var y = new float[n];
        r.FillNormal(x); r.FillNormal(y);
        var (xs, ys, yp, zs, zp) = (Up(x), Up(y), Up(y), B.Allocate(n), B.Allocate(n));
        try
        {
            for (int row = 0; row < 3; row++)
            {
                float At(int col) => rows[row * Stride + col];
                B.AxpbyStep(xs, ys, n, table[Alpha], table[Beta]);
                B.Axpby(xs, yp, n, At(Alpha), At(Beta));
                Assert.That(Down(ys, n), Is.EqualTo(Down(yp, n)), $"axpby, row {row}");
                B.AxpbyStep(ys, ys, n, table[Alpha], table[Beta]);   // in place: (α + β)·y
                B.Axpby(yp, yp, n, At(Alpha), At(Beta));
                Assert.That(Down(ys, n), Is.EqualTo(Down(yp, n)), $"axpby in place, row {row}");
                B.FillStep(zs, n, table[Value]);
                Assert.That(Down(zs, n), Is.All.EqualTo(At(Value)), $"fill, row {row}");
                B.NormalStep(zs, n, 0x5EED, table[Offset], table[Offset + 1]);
                ulong offset = ((ulong)At(Offset) << 24) + (ulong)At(Offset + 1);
                B.Normal(zp, n, 0x5EED, offset);
                Assert.That(Down(zs, n), Is.EqualTo(Down(zp, n)), $"normal at offset {offset}, row {row}");
                table.Advance();
            }
            Assert.That(Down(table.Buffer, 1)[0], Is.EqualTo(3f), "the row index after three steps");
        }
        finally
        {
            foreach (var b in new[] { xs, ys, yp, zs, zp }) B.Free(b);
        }
    }

    [Test]
    public void StepScalarsOfTwoTablesAreRefused()
    {
        using var a = new StepTable(B, Rows(), Stride);
        using var b = new StepTable(B, Rows(), Stride);
        var y = B.Allocate(4);
        try
        {
            Assert.That(() => B.AxpbyStep(y, y, 4, a[Alpha], b[Beta]),
                        Throws.ArgumentException.With.Message.Contains("one step table"));
            Assert.That(() => a[Stride], Throws.InstanceOf<ArgumentOutOfRangeException>());
        }
        finally { B.Free(y); }
    }

    /// <summary>
    /// y += α_row·(x ⊙ x) with a temporary freed inside the step, and a host scale k that changes every step:
    /// captured once, replayed three times.
    /// </summary>
    [Test]
    [Covers("axpby_step", "binary", "advance_step", "axpby")]
    public void ACapturedStepReadsTheTableAndReplaysItsArguments()
    {
        long n = Small ? 100 : 5000;
        var rows = Rows();
        using var table = new StepTable(B, rows, Stride);
        var r = new Rng(72);
        var x = new float[n]; var y0 = new float[n];
        r.FillNormal(x); r.FillNormal(y0);
        var (xs, ys, ks) = (Up(x), Up(y0), Up(new float[n]));
        float k = 1f;
        var before = B.StepGraphs;
        try
        {
            using var graph = B.CaptureStep(() =>
            {
                var sq = B.Allocate(n);
                B.Binary(BinaryOp.Mul, xs, xs, sq, n);
                B.AxpbyStep(sq, ys, n, table[Alpha], table[One]);
                B.Free(sq);                                        // held by a real graph, not reused
                B.Axpby(xs, ks, n, k, 0f);                         // a per-step HOST scalar: not graph-safe
                table.Advance();
            });
            Assert.That(Down(ys, n), Is.EqualTo(y0), "capture runs nothing");
            var want = y0.ToArray();
            for (int step = 0; step < 3; step++)
            {
                k = 10f + step;
                graph.Replay();
                float alpha = rows[step * Stride + Alpha];
                for (int i = 0; i < n; i++) want[i] = alpha * (x[i] * x[i]) + want[i];
            }
            Assert.That(Down(ys, n), Is.EqualTo(want), "each replay read its own row of the table");
            // The host scalar: a real capture (CUDA graph, the CPU accelerator's recorder) keeps the captured k = 1;
            // a backend that reruns the step sees the last one.
            float baked = B is IlgpuBackend ? 1f : 12f;
            Assert.That(Down(ks, n), Is.EqualTo(x.Select(v => baked * v).ToArray()),
                        $"a host argument replays as {(baked == 1f ? "captured" : "rerun")}");
            Assert.That(B.StepGraphs - before, Is.EqualTo(new StepGraphCounts(1, 3)), "counted");
        }
        finally
        {
            foreach (var b in new[] { xs, ys, ks }) B.Free(b);
        }
    }

    [Test]
    public void HostCopiesAreRefusedWhereTheCaptureIsReal()
    {
        var y = B.Allocate(4);
        try
        {
            void Upload() => B.CopyIn(y, 0, [1f, 2f, 3f, 4f]);
            if (B is IlgpuBackend)
            {
                Assert.That(() => B.CaptureStep(Upload),
                            Throws.InvalidOperationException.With.Message.Contains("graph capture"));
            }
            else
            {
                B.Fill(y, 0, 4, 0f);
                using var rerun = B.CaptureStep(Upload);   // nothing captured here: the step reruns
                Assert.That(Down(y, 4), Is.All.EqualTo(0f), "capture runs nothing");
                rerun.Replay();
                Assert.That(Down(y, 4), Is.EqualTo(new[] { 1f, 2f, 3f, 4f }));
            }
            using var ok = B.CaptureStep(() => B.Fill(y, 0, 4, 2f));   // and capture still works afterwards
            ok.Replay();
            Assert.That(Down(y, 4), Is.All.EqualTo(2f));
        }
        finally { B.Free(y); }
    }
}
