namespace Ddsm.Data;

public enum ResizeMode { Nearest, Bilinear }

/// <summary>
/// N labelled images (N, C, H, W) kept as bytes (a quarter of the memory of floats: CIFAR-10 train is
/// 150 MB as bytes, 600 MB as floats). The model sees pixel = byte / 127.5 − 1, in [−1, 1]; byte 0 is
/// the background −1 of MNIST-like sets, so padding with 0 pads with −1.
/// </summary>
public sealed class ImageDataset
{
    public string Name { get; }
    public int Count { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    /// <summary>0 for an unlabelled set (all labels 0).</summary>
    public int ClassCount { get; }
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>(N, C, H, W) bytes.</summary>
    public byte[] Pixels { get; }
    /// <summary>(N) labels, each &lt; ClassCount (or 0 when unlabelled).</summary>
    public byte[] Labels { get; }

    public int ImageSize => Channels * Height * Width;

    public ImageDataset(string name, byte[] pixels, byte[] labels, int channels, int height, int width, int classCount,
                        IReadOnlyList<string>? classNames = null)
    {
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"dataset {name}: invalid image shape ({channels}, {height}, {width})");
        if (classCount is < 0 or > 256)
            throw new ArgumentException($"dataset {name}: class count {classCount} out of 0..256");
        long size = (long)channels * height * width;
        if (pixels.Length != size * labels.Length)
            throw new ArgumentException(
                $"dataset {name}: {labels.Length} labels need {size * labels.Length} pixel bytes, got {pixels.Length}");
        int bound = Math.Max(classCount, 1);
        foreach (byte l in labels)
            if (l >= bound)
                throw new ArgumentException($"dataset {name}: label {l} out of range for {classCount} classes");
        classNames ??= Enumerable.Range(0, classCount)
            .Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (classNames.Count != classCount)
            throw new ArgumentException($"dataset {name}: {classNames.Count} class names for {classCount} classes");
        (Name, Pixels, Labels, Count, Channels, Height, Width, ClassCount, ClassNames) =
            (name, pixels, labels, labels.Length, channels, height, width, classCount, classNames);
    }

    /// <summary>
    /// Throws unless the set holds images of the shape a model takes (channels × size × size) and is not
    /// empty; <paramref name="who"/> names the model in the message.
    /// </summary>
    public void CheckFits(int channels, int size, string who)
    {
        if (Channels != channels || Height != size || Width != size)
            throw new ArgumentException($"data set '{Name}' has images {Channels}×{Height}×{Width}, {who} wants " +
                                        $"{channels}×{size}×{size}");
        if (Count == 0) throw new ArgumentException($"data set '{Name}' is empty");
    }

    public static float ToModel(byte b) => b * (1f / 127.5f) - 1f;

    public ReadOnlySpan<byte> Image(int i) => Pixels.AsSpan(checked(i * ImageSize), ImageSize);

    /// <summary>
    /// Copies images <paramref name="indices"/> into <paramref name="dst"/> (B, C, H, W) as floats in
    /// [−1, 1]. With <paramref name="flipRng"/>, each image is mirrored left-right with probability ½
    /// (one draw per image, so the stream of draws, hence a resumed run, is deterministic).
    /// </summary>
    public void Batch(ReadOnlySpan<int> indices, Span<float> dst, Rng? flipRng = null)
    {
        int size = ImageSize;
        if (dst.Length != (long)indices.Length * size)
            throw new ArgumentException($"dataset {Name}: batch of {indices.Length} needs " +
                                        $"{indices.Length * (long)size} floats, got {dst.Length}");
        for (int b = 0; b < indices.Length; b++)
        {
            int idx = indices[b];
            if ((uint)idx >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices),
                                                      $"dataset {Name}: index {idx} out of 0..{Count - 1}");
            bool flip = flipRng is not null && (flipRng.NextULong() >> 63) != 0;
            var src = Image(idx);
            var o = dst.Slice(b * size, size);
            for (int row = 0; row < Channels * Height; row++)
            {
                var s = src.Slice(row * Width, Width);
                var d = o.Slice(row * Width, Width);
                if (flip) for (int x = 0; x < Width; x++) d[x] = ToModel(s[Width - 1 - x]);
                else for (int x = 0; x < Width; x++) d[x] = ToModel(s[x]);
            }
        }
    }

    public void BatchLabels(ReadOnlySpan<int> indices, Span<int> dst)
    {
        if (dst.Length != indices.Length)
            throw new ArgumentException($"dataset {Name}: {indices.Length} indices but {dst.Length} label slots");
        for (int b = 0; b < indices.Length; b++) dst[b] = Labels[indices[b]];
    }

    /// <summary>How many images of each class (length ClassCount).</summary>
    public int[] ClassCounts()
    {
        var c = new int[ClassCount];
        foreach (byte l in Labels) if (l < ClassCount) c[l]++;
        return c;
    }

    public ImageDataset Subset(ReadOnlySpan<int> indices, string? name = null)
    {
        var px = new byte[(long)indices.Length * ImageSize];
        var lb = new byte[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            Image(indices[i]).CopyTo(px.AsSpan(i * ImageSize));
            lb[i] = Labels[indices[i]];
        }
        return new ImageDataset(name ?? Name, px, lb, Channels, Height, Width, ClassCount, ClassNames);
    }

    /// <summary>Centres the images on a size×size canvas of background (byte 0 = −1), e.g. 28 → 32 for a
    /// UNet that halves the resolution three times. Images larger than size are an error (use Resize).</summary>
    public ImageDataset PadTo(int size, byte background = 0)
    {
        if (size < Height || size < Width)
            throw new ArgumentException($"dataset {Name}: cannot pad {Height}x{Width} to {size}");
        if (size == Height && size == Width) return this;
        int top = (size - Height) / 2, left = (size - Width) / 2, plane = size * size;
        var px = new byte[(long)Count * Channels * plane];
        if (background != 0) Array.Fill(px, background);
        for (int n = 0; n < Count; n++)
            for (int c = 0; c < Channels; c++)
                for (int y = 0; y < Height; y++)
                    Pixels.AsSpan(((n * Channels + c) * Height + y) * Width, Width)
                          .CopyTo(px.AsSpan((n * Channels + c) * plane + (top + y) * size + left));
        return new ImageDataset(Name, px, Labels, Channels, size, size, ClassCount, ClassNames);
    }

    /// <summary>Resamples to height×width. Bilinear uses half-pixel centres (align_corners = false, as in
    /// PyTorch/PIL without antialias), rounding back to bytes.</summary>
    public ImageDataset Resize(int height, int width, ResizeMode mode)
    {
        if (height <= 0 || width <= 0)
            throw new ArgumentException($"dataset {Name}: invalid target size {height}x{width}");
        if (height == Height && width == Width) return this;
        var px = new byte[(long)Count * Channels * height * width];
        float sy = (float)Height / height, sx = (float)Width / width;
        for (int p = 0; p < Count * Channels; p++)
        {
            var src = Pixels.AsSpan(p * Height * Width, Height * Width);
            var dst = px.AsSpan(p * height * width, height * width);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    if (mode == ResizeMode.Nearest)
                    {
                        int iy = Math.Min((int)(y * sy), Height - 1), ix = Math.Min((int)(x * sx), Width - 1);
                        dst[y * width + x] = src[iy * Width + ix];
                        continue;
                    }
                    float fy = Math.Clamp((y + 0.5f) * sy - 0.5f, 0, Height - 1),
                          fx = Math.Clamp((x + 0.5f) * sx - 0.5f, 0, Width - 1);
                    int y0 = (int)fy, x0 = (int)fx, y1 = Math.Min(y0 + 1, Height - 1), x1 = Math.Min(x0 + 1, Width - 1);
                    float wy = fy - y0, wx = fx - x0;
                    float v = (1 - wy) * ((1 - wx) * src[y0 * Width + x0] + wx * src[y0 * Width + x1])
                            + wy * ((1 - wx) * src[y1 * Width + x0] + wx * src[y1 * Width + x1]);
                    dst[y * width + x] = (byte)Math.Clamp(MathF.Round(v), 0, 255);
                }
        }
        return new ImageDataset(Name, px, Labels, Channels, height, width, ClassCount, ClassNames);
    }

    /// <summary>The model's resolution: pad when the images are smaller by a few pixels (28 → 32 keeps
    /// every pixel), otherwise bilinear resize.</summary>
    public ImageDataset ToResolution(int size)
    {
        if (Height == size && Width == size) return this;
        if (Height <= size && Width <= size && size - Math.Min(Height, Width) <= size / 4) return PadTo(size);
        return Resize(size, size, ResizeMode.Bilinear);
    }

    /// <summary>A balanced random subset: <paramref name="perClass"/> images of every class, chosen with a
    /// seeded partial Fisher–Yates per class, then shuffled together.</summary>
    public ImageDataset Stratified(int perClass, ulong seed, string? name = null)
    {
        if (ClassCount == 0) throw new ArgumentException($"dataset {Name}: stratified subset needs labels");
        var rng = new Rng(seed);
        var pick = new List<int>(perClass * ClassCount);
        for (int c = 0; c < ClassCount; c++)
        {
            var members = Enumerable.Range(0, Count).Where(i => Labels[i] == c).ToArray();
            if (members.Length < perClass)
                throw new ArgumentException($"dataset {Name}: class {c} has {members.Length} images, need {perClass}");
            for (int k = 0; k < perClass; k++)
            {
                int j = k + rng.NextInt(members.Length - k);
                (members[k], members[j]) = (members[j], members[k]);
                pick.Add(members[k]);
            }
        }
        var order = pick.ToArray();
        for (int k = order.Length - 1; k > 0; k--)
        {
            int j = rng.NextInt(k + 1);
            (order[k], order[j]) = (order[j], order[k]);
        }
        return Subset(order, name);
    }
}
