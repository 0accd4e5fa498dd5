namespace Ddsm.IO;

/// <summary>Tiles a batch of images into one PNG (rows × cols, with a border), for sample sheets.</summary>
public static class ImageGrid
{
    /// <summary>Model-space float in [−1, 1] to a byte; values outside are clamped (samplers overshoot).</summary>
    public static byte ToByte(float v) => (byte)Math.Clamp(MathF.Round((v + 1f) * 127.5f), 0f, 255f);

    /// <summary>
    /// Lays out <paramref name="count"/> images from <paramref name="images"/> (N, C, H, W) in [−1, 1]
    /// into a grid with <paramref name="cols"/> columns and <paramref name="pad"/> pixels of
    /// <paramref name="padValue"/> around and between them. Returns interleaved (GH, GW, C) bytes.
    /// </summary>
    public static (byte[] Pixels, int Width, int Height) Compose(ReadOnlySpan<float> images, int count, int channels,
        int height, int width, int cols, int pad = 2, byte padValue = 255)
    {
        if (count <= 0 || channels is not (1 or 3) || height <= 0 || width <= 0 || cols <= 0 || pad < 0)
            throw new ArgumentException(
                $"ImageGrid: invalid layout count={count} C={channels} H={height} W={width} cols={cols} pad={pad}");
        if (images.Length < (long)count * channels * height * width)
            throw new ArgumentException(
                $"ImageGrid: need {(long)count * channels * height * width} floats, got {images.Length}");
        cols = Math.Min(cols, count);
        int rows = (count + cols - 1) / cols;
        int gw = cols * (width + pad) + pad, gh = rows * (height + pad) + pad;
        var grid = new byte[(long)gw * gh * channels];
        Array.Fill(grid, padValue);
        int plane = height * width;
        for (int n = 0; n < count; n++)
        {
            int x0 = pad + (n % cols) * (width + pad), y0 = pad + (n / cols) * (height + pad);
            var img = images.Slice(n * channels * plane, channels * plane);   // (C, H, W)
            for (int c = 0; c < channels; c++)
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                        grid[((y0 + y) * gw + x0 + x) * channels + c] = ToByte(img[c * plane + y * width + x]);
        }
        return (grid, gw, gh);
    }

    public static void WritePng(string path, ReadOnlySpan<float> images, int count, int channels, int height, int width,
        int cols, int pad = 2, byte padValue = 255)
    {
        var (px, gw, gh) = Compose(images, count, channels, height, width, cols, pad, padValue);
        Png.Write(path, gw, gh, channels, px);
    }
}
