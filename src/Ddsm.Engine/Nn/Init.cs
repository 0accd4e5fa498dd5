namespace Ddsm.Engine.Nn;

/// <summary>Fills a new parameter's values; gets the shape so fan-in rules can use it.</summary>
public delegate void Initializer(Span<float> values, int[] shape);

/// <summary>
/// Parameter initialisers. Random ones draw from the <see cref="Rng"/> they are given, in creation
/// order, so the same seed and the same construction order give the same network bit for bit.
/// </summary>
public static class Init
{
    public static Initializer Zeros { get; } = (v, _) => v.Clear();
    public static Initializer Ones { get; } = (v, _) => v.Fill(1f);

    public static Initializer Normal(Rng rng, float std) => (v, _) => rng.FillNormal(v, std);

    /// <summary>Uniform in [−bound, bound).</summary>
    public static Initializer Uniform(Rng rng, float bound) => (v, _) => rng.FillUniform(v, -bound, bound);

    /// <summary>
    /// PyTorch's default Conv/Linear weight init, kaiming_uniform(a=√5): gain √(2/(1+5)) times
    /// √(3/fan_in) is a bound of exactly 1/√fan_in, with fan_in = shape[1]·Π shape[2..].
    /// </summary>
    public static Initializer DefaultWeight(Rng rng) => (v, shape) =>
    {
        float b = 1f / MathF.Sqrt(FanIn(shape));
        rng.FillUniform(v, -b, b);
    };

    /// <summary>PyTorch's default bias init: uniform ±1/√fan_in of the layer's weight.</summary>
    public static Initializer DefaultBias(Rng rng, int fanIn)
    {
        if (fanIn <= 0) throw new ArgumentException($"init: fan_in must be > 0, got {fanIn}");
        float b = 1f / MathF.Sqrt(fanIn);
        return (v, _) => rng.FillUniform(v, -b, b);
    }

    /// <summary>Inputs per output of a weight (Cout, Cin, k…): Cin·Πk; for a vector, its length.</summary>
    public static int FanIn(int[] weightShape)
    {
        if (weightShape.Length == 0) throw new ArgumentException("init: fan_in of a scalar");
        long f = 1;
        for (int i = weightShape.Length == 1 ? 0 : 1; i < weightShape.Length; i++) f *= weightShape[i];
        if (f <= 0 || f > int.MaxValue)
            throw new ArgumentException($"init: fan_in of {ShapeUtil.Str(weightShape)} is {f}");
        return (int)f;
    }
}
