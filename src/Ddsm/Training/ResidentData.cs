namespace Ddsm.Training;

/// <summary>
/// What a training run draws its steps from, uploaded to the device once: the images as floats in [−1, 1]
/// (N, C·H·W), for a conditional model the labels as one-hot rows (N + 1, K + 1) whose last row is the null
/// class (label dropout gathers it), and the schedule's √ᾱ_t and √(1−ᾱ_t) tables (T each). A step then
/// gathers its batch on the device (<see cref="StepInputs"/>): nothing of the data crosses per step.
/// <para>Cost: 4 bytes per pixel on the device (fmnist32: 60 000 × 1024 floats ≈ 246 MB; CIFAR-10: 50 000 ×
/// 3072 ≈ 614 MB) plus (N + 1)·(K + 1) floats of labels (fmnist: 2.6 MB); on the CPU backend that memory is
/// host memory, beside the data set's bytes.</para>
/// </summary>
public sealed class ResidentData : IDisposable
{
    /// <summary>Row numbers travel as floats: exact below 2²⁴.</summary>
    public const int MaxCount = 1 << 24;
    /// <summary>Images converted and uploaded per copy (bounds the host staging array).</summary>
    private const int UploadRows = 4096;

    public int Count { get; }
    public int ImageFloats { get; }
    /// <summary>K + 1 (the null class last), 0 for an unconditional model.</summary>
    public int OneHotWidth { get; }
    public int ScheduleSteps { get; }
    public Tensor Images { get; }
    /// <summary>(Count + 1, K + 1) one-hot rows, row Count the null class; null when unconditional.</summary>
    public Tensor? OneHot { get; }
    public Tensor SqrtAlphaBar { get; }
    public Tensor SqrtOneMinusAlphaBar { get; }

    /// <param name="classes">K for a conditional model, 0 for an unconditional one (labels are not uploaded).</param>
    public ResidentData(Backend be, ImageDataset data, NoiseSchedule schedule, int classes)
    {
        if (data.Count >= MaxCount)
            throw new ArgumentException($"data set '{data.Name}' has {data.Count} images; the device-side batch " +
                                        $"draw indexes at most {MaxCount - 1}");
        (Count, ImageFloats, OneHotWidth, ScheduleSteps) =
            (data.Count, data.ImageSize, classes > 0 ? classes + 1 : 0, schedule.T);
        using (TensorScope.Suspend())
        {
            Images = Tensor.Empty(be, Count, ImageFloats);
            var stage = new float[(long)Math.Min(UploadRows, Count) * ImageFloats];
            for (int first = 0; first < Count; first += UploadRows)
            {
                int rows = Math.Min(UploadRows, Count - first);
                var part = stage.AsSpan(0, rows * ImageFloats);
                var bytes = data.Pixels.AsSpan(first * ImageFloats, rows * ImageFloats);
                for (int i = 0; i < part.Length; i++) part[i] = ImageDataset.ToModel(bytes[i]);
                be.CopyIn(Images.Buffer, (long)first * ImageFloats, part);
            }
            if (OneHotWidth > 0)
            {
                var oh = new float[(long)(Count + 1) * OneHotWidth];
                for (int i = 0; i < Count; i++) oh[(long)i * OneHotWidth + data.Labels[i]] = 1f;
                oh[(long)Count * OneHotWidth + classes] = 1f;
                OneHot = Tensor.FromArray(be, oh, Count + 1, OneHotWidth);
            }
            var ab = schedule.AlphaBars;
            SqrtAlphaBar = Tensor.FromArray(be, ab.Select(a => (float)Math.Sqrt(a)).ToArray(), ab.Length);
            SqrtOneMinusAlphaBar = Tensor.FromArray(be, ab.Select(a => (float)Math.Sqrt(1 - a)).ToArray(), ab.Length);
        }
    }

    public void Dispose()
    {
        Images.Dispose();
        OneHot?.Dispose();
        SqrtAlphaBar.Dispose();
        SqrtOneMinusAlphaBar.Dispose();
    }
}
