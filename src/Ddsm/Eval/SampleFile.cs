namespace Ddsm.Eval;

/// <summary>
/// The raw samples <c>ddsm sample</c> writes beside its PNG grid: one F32 tensor "samples" of shape (N, C, H, W)
/// with how they were made as metadata, checksummed. The reader checks everything the metrics rely on (the
/// tensor, its shape against the feature net's input, enough images, finite values) so a wrong file is one clear error,
/// never an exception deep inside the linear algebra.
/// </summary>
public static class SampleFile
{
    public const string Format = "ddsm-samples-v1";
    public const string Tensor = "samples";
    /// <summary>
    /// The fewest images the metrics take: precision/recall needs more than its k nearest neighbours.
    /// </summary>
    public static int MinCount => new EvalOptions().K + 1;

    public static void Write(string path, float[] images, int n, int channels, int size,
                             IReadOnlyDictionary<string, string> meta)
    {
        var tensors = new[] { SafeTensor.F32(Tensor, images, n, channels, size, size) };
        var all = new Dictionary<string, string>(meta) { ["format"] = Format };
        SafeTensors.Write(path, tensors, TensorChecksums.Stamp(tensors, all));
    }

    /// <summary>
    /// The images of a sample file, checked for a net taking <paramref name="channels"/> × size × size.
    /// </summary>
    public static (float[] Images, int Count) Read(string path, int channels, int size)
    {
        var f = SafeTensors.Read(path);
        var format = f.Metadata.GetValueOrDefault("format");
        // Files written before the format tag have none; anything else tagged is another kind of file.
        DataFormatException.Check(format is null or Format, path,
                                  $"is a '{format}' file, not samples (ddsm sample writes them)");
        DataFormatException.Check(f.Contains(Tensor), path, $"no '{Tensor}' tensor (ddsm sample writes one)");
        var t = f[Tensor];
        DataFormatException.Check(t.DType is "F32" or "F16" or "BF16" or "F64", path,
                                  $"'{Tensor}' is {t.DType}, not floats");
        var shape = t.Shape;
        DataFormatException.Check(shape.Length == 4 && shape[1] == channels && shape[2] == size && shape[3] == size,
            path,
            $"'{Tensor}' has shape ({string.Join(", ", shape)}); the feature net takes (N, {channels}, " +
            $"{size}, {size})");
        DataFormatException.Check(shape[0] >= MinCount, path,
                                  $"{shape[0]} image(s): the metrics need at least {MinCount}");
        var v = t.ToFloat();
        int bad = Array.FindIndex(v, x => !float.IsFinite(x));
        DataFormatException.Check(bad < 0, path,
            $"image {(bad < 0 ? 0 : bad / (channels * size * size))} holds {(bad < 0 ? 0 : v[bad])}: the model that " +
            $"made it diverged");
        return (v, (int)shape[0]);
    }
}
