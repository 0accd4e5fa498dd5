using ILGPU;
using Ddsm.Kernels;

namespace Ddsm.Engine.Ilgpu;

// Per-step scalars → kernels/StepScalars.cs: the element-wise kernels of a sampling step with their scalars read
// from the step table on the device, grid-stride like the element-wise family.
public sealed partial class IlgpuBackend
{
    /// <summary>A step table as a kernel argument, checked to hold the scalar's column of every row.</summary>
    private ArrayView<float> TableView(StepScalar s, string op)
    {
        if (s.Column < 0 || s.Column >= s.Stride)
            throw new ArgumentOutOfRangeException(nameof(s), $"{op}: column {s.Column} of a {s.Stride}-wide table");
        return View(s.Buffer, s.Buffer.Length, op);
    }

    public override void AxpbyStep(DeviceBuffer x, DeviceBuffer y, long n, StepScalar alpha, StepScalar beta)
    {
        OneTable(alpha, beta);
        var args = new AxpbyStepArgs
        {
            X = View(x, n, "axpby_step"), Y = View(y, n, "axpby_step"), Table = TableView(alpha, "axpby_step"), N = n,
            Stride = alpha.Stride, ColAlpha = alpha.Column, ColBeta = beta.Column,
            InPlace = ReferenceEquals(x, y) ? 1 : 0,
        };
        LaunchFlat("axpby_step", n, args);
    }

    public override void FillStep(DeviceBuffer x, long count, StepScalar value)
    {
        var args = new FillStepArgs
        {
            Y = View(x, count, "fill_step"), Table = TableView(value, "fill_step"), Stride = value.Stride,
            Col = value.Column,
        };
        LaunchFlat("fill_step", count, args);
    }

    public override void NormalStep(DeviceBuffer y, long n, ulong seed, StepScalar offsetHigh, StepScalar offsetLow)
    {
        OneTable(offsetHigh, offsetLow);
        var args = new NormalStepArgs
        {
            Y = View(y, n, "normal_step"), Table = TableView(offsetHigh, "normal_step"), N = n, Seed = seed,
            Stride = offsetHigh.Stride, ColHigh = offsetHigh.Column, ColLow = offsetLow.Column,
        };
        LaunchFlat("normal_step", n, args);
    }

    public override void AdvanceStep(DeviceBuffer table) =>
        Launch(K<AdvanceStepArgs>("advance_step"), new Index3D(1, 1, 1), 1,
            new AdvanceStepArgs { Table = View(table, 1, "advance_step") });
}
