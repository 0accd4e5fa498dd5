namespace Ddsm.Data;

/// <summary>
/// A folder of PNG images as a data set. If the folder has sub-folders, each sub-folder is a class
/// (labels from the ordinally sorted folder names, like torchvision's ImageFolder); otherwise the PNGs
/// directly inside form an unlabelled set. All images must share one size.
/// </summary>
public static class PngFolder
{
    /// <param name="channels">1 or 3; null = 1 if the first image is gray(+alpha), else 3. Alpha is dropped;
    /// RGB → gray uses the Rec. 601 luma weights.</param>
    public static ImageDataset Load(string dir, string? name = null, int? channels = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"PNG folder not found: {dir}");
        if (channels is not (null or 1 or 3))
            throw new ArgumentException($"PNG folder: channels must be 1 or 3, got {channels}");
        var classDirs = Directory.GetDirectories(dir).Order(StringComparer.Ordinal).ToArray();
        var files = new List<(string Path, byte Label)>();
        if (classDirs.Length > 0)
        {
            DataFormatException.Check(classDirs.Length <= 256, dir,
                                      $"{classDirs.Length} class folders, at most 256 supported");
            for (int c = 0; c < classDirs.Length; c++)
                foreach (var f in Pngs(classDirs[c])) files.Add((f, (byte)c));
        }
        else foreach (var f in Pngs(dir)) files.Add((f, 0));
        DataFormatException.Check(files.Count > 0, dir, "no .png files found");

        int w = 0, h = 0, ch = 0;
        byte[]? px = null;
        var labels = new byte[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            var img = Png.Read(files[i].Path);
            if (i == 0)
            {
                (w, h, ch) = (img.Width, img.Height, channels ?? (img.Channels <= 2 ? 1 : 3));
                DataFormatException.Check((long)files.Count * ch * h * w <= Array.MaxLength, dir,
                                          "images do not fit in one array");
                px = new byte[(long)files.Count * ch * h * w];
            }
            DataFormatException.Check(img.Width == w && img.Height == h, files[i].Path,
                                      $"is {img.Width}x{img.Height}, the first image is {w}x{h}");
            ToPlanar(img, ch, px.AsSpan(i * ch * h * w, ch * h * w));
            labels[i] = files[i].Label;
        }
        var names = classDirs.Select(Path.GetFileName).ToArray();
        return new ImageDataset(name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(dir)), px!, labels, ch, h, w,
                                classDirs.Length, names!);
    }

    private static IEnumerable<string> Pngs(string d) =>
        Directory.GetFiles(d).Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal);

    /// <summary>Interleaved (H, W, C_in) to planar (C_out, H, W).</summary>
    internal static void ToPlanar(PngImage img, int outChannels, Span<byte> dst)
    {
        int plane = img.Width * img.Height, cin = img.Channels;
        bool colour = cin >= 3;
        for (int p = 0; p < plane; p++)
        {
            var s = img.Pixels.AsSpan(p * cin, cin);
            if (outChannels == 1)
                dst[p] = colour ? (byte)Math.Round(0.299 * s[0] + 0.587 * s[1] + 0.114 * s[2]) : s[0];
            else
                for (int c = 0; c < 3; c++) dst[c * plane + p] = colour ? s[c] : s[0];
        }
    }
}
