using System.Buffers.Binary;
using System.Text;
using Ddsm.Engine;
using Ddsm.IO;

namespace Ddsm.Tests.IO;

public class SafeTensorsTests
{
    /// <summary>
    /// A file assembled from the spec by hand: u64 LE header length, header padded with spaces, data.
    /// </summary>
    private static byte[] Build(string header, byte[] data, bool pad = true)
    {
        var h = Encoding.UTF8.GetBytes(header);
        int n = pad ? (h.Length + 7) / 8 * 8 : h.Length;
        var f = new byte[8 + n + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(f, (ulong)n);
        h.CopyTo(f, 8);
        for (int i = 8 + h.Length; i < 8 + n; i++) f[i] = (byte)' ';
        data.CopyTo(f, 8 + n);
        return f;
    }

    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", ""));

    private const string SpecHeader =
        "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
        "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
    // a = [1.0, -2.5] as F32 LE, b = 7 as a scalar I64 LE.
    private static readonly byte[] SpecData = Hex("0000803F 000020C0 0700000000000000");

    [Test]
    public void WriterProducesTheSpecBytesExactly()
    {
        var bytes = SafeTensors.Serialize([SafeTensor.F32("a", [1f, -2.5f], 2), SafeTensor.I64("b", [7L])],
            new Dictionary<string, string> { ["format"] = "pt" });
        var expected = Build(SpecHeader, SpecData);
        Assert.That(bytes, Is.EqualTo(expected));
        Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8, Is.EqualTo(0),
                    "data section must start 8-byte aligned");
    }

    [Test]
    public void ReadsAHandBuiltFileInAnyTensorOrderWithWhitespace()
    {
        // Data of "b" comes first although "a" is listed first; JSON has newlines and spaces.
        string header =
            "{\n  \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]},\n  \"b\": {\"dtype\": " +
            "\"I64\", \"shape\": [], \"data_offsets\": [0, 8]}\n}";
        var f = SafeTensors.Read(Build(header, Hex("0700000000000000 0000803F 000020C0")), "hand");
        Assert.That(f["a"].ToFloat(), Is.EqualTo(new[] { 1f, -2.5f }));
        Assert.That(f["a"].Shape, Is.EqualTo(new long[] { 2 }));
        Assert.That(f["b"].ToInt64(), Is.EqualTo(new[] { 7L }));
        Assert.That(f["b"].Shape, Is.Empty);
        Assert.That(f.Metadata, Is.Empty);
    }

    [Test]
    public void HalfAndBFloat16AndIntegersConvertOnRead()
    {
        string header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},\"bf\":{\"dtype\":\"BF16\"," +
                        "\"shape\":[3],\"data_offsets\":[6,12]},\"i\":{\"dtype\":\"I32\",\"shape\":[2]," +
                        "\"data_offsets\":[12,20]},\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[20," +
                        "20]}}";
        // F16 1.0, -2.0, 65504; BF16 1.0, -2.5, 3.140625; I32 -3, 2^31-1.
        var f = SafeTensors.Read(Build(header, Hex("003C 00C0 FF7B 803F 20C0 4940 FDFFFFFF FFFFFF7F")), "halves");
        Assert.That(f["h"].ToFloat(), Is.EqualTo(new[] { 1f, -2f, 65504f }));
        Assert.That(f["bf"].ToFloat(), Is.EqualTo(new[] { 1f, -2.5f, 3.140625f }));
        Assert.That(f["i"].ToInt64(), Is.EqualTo(new[] { -3L, int.MaxValue }));
        Assert.That(f["z"].ToFloat(), Is.Empty);
        Assert.That(f["z"].Shape, Is.EqualTo(new long[] { 0, 5 }));
    }

    [Test]
    public void RoundTripIsExactIncludingMetadata()
    {
        var r = new Rng(5);
        var w = new float[3 * 4 * 5]; r.FillNormal(w);
        // bit patterns must survive
        w[0] = float.NaN; w[1] = float.NegativeInfinity; w[2] = -0f; w[3] = float.Epsilon;
        var tensors = new[]
        {
            SafeTensor.F32("down.0.conv.weight", w, 3, 4, 5),
            SafeTensor.F32("bias", [0.25f], 1),
            SafeTensor.I64("step", [123456789012L]),
        };
        var meta = new Dictionary<string, string>
        {
            ["rng"] = "[1,2,3]", ["note"] = "ünïcödé \"quoted\"\n", ["empty"] = "",
        };
        string path = Path.Combine(Path.GetTempPath(), $"ddsm-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Write(path, tensors, meta);
            var f = SafeTensors.Read(path);
            Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(tensors.Select(t => t.Name)));
            for (int i = 0; i < tensors.Length; i++)
            {
                Assert.That(f.Tensors[i].Data, Is.EqualTo(tensors[i].Data), tensors[i].Name);
                Assert.That(f.Tensors[i].Shape, Is.EqualTo(tensors[i].Shape));
                Assert.That(f.Tensors[i].DType, Is.EqualTo(tensors[i].DType));
            }
            Assert.That(f.Metadata, Is.EquivalentTo(meta));
            Assert.That(BitConverter.SingleToInt32Bits(f["down.0.conv.weight"].ToFloat()[2]),
                        Is.EqualTo(BitConverter.SingleToInt32Bits(-0f)));
            Assert.That(Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(path) + ".tmp-*"), Is.Empty);
        }
        finally { File.Delete(path); }
    }

    private static readonly (string Header, byte[] Data, string Fragment)[] Malformed =
    [
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", new byte[8], "malformed JSON"),
        ("[1,2]", [], "does not start with '{'"),
        ("{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8], "unknown dtype"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", new byte[8], "non-negative"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", new byte[8], "non-negative integer"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8], "needs 12 bytes"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[12],
         "cover 8 bytes but the data section has 12"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[4],
         "cover 8 bytes but the data section has 4"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2]," +
         "\"data_offsets\":[4,12]}}", new byte[12], "overlaps"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8], "gap"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", new byte[8], "begin <= end"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}", new byte[8],
         "absurdly large"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[0]," +
         "\"data_offsets\":[8,8]}}", new byte[8], "duplicate key"),
        ("{\"__metadata__\":{\"k\":3},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8],
         "is not a string"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", new byte[8], "needs dtype, shape and data_offsets"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", new byte[8],
         "unexpected or duplicate field 'x'"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", new byte[8], "[begin, end]"),
        ("{\"a\":[[[[[[[[[[[[[1]]]]]]]]]]]]}", [], "malformed JSON"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", new byte[8],
         "non-negative integer"),
    ];

    [Test]
    public void RejectsEachKindOfMalformedHeader()
    {
        foreach (var (h, d, frag) in Malformed)
            Fuzz.Rejects(() => SafeTensors.Read(Build(h, d), "bad.safetensors"), frag);
    }

    [Test]
    public void RejectsLyingHeaderLengths()
    {
        var good = Build(SpecHeader, SpecData);
        Fuzz.Rejects(() => SafeTensors.Read(good[..7], "x"), "too short");
        foreach (ulong lie in new[] { (ulong)good.Length, 1UL << 40, ulong.MaxValue })
        {
            var f = (byte[])good.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(f, lie);
            long before = GC.GetAllocatedBytesForCurrentThread();
            Fuzz.Rejects(() => SafeTensors.Read(f, "x"), "header length");
            Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(64 << 10),
                        "no allocation from a lying length");
        }
        var short1 = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(short1, 40);   // header cut mid-JSON
        Fuzz.Rejects(() => SafeTensors.Read(short1, "x"), "malformed JSON");
    }

    // ---------------------------------------------------------------- fuzz

    private static byte[] ValidFile()
    {
        var r = new Rng(9);
        var w = new float[24]; r.FillNormal(w);
        return SafeTensors.Serialize(
            [SafeTensor.F32("w", w, 2, 3, 4), SafeTensor.F32("b", w.AsSpan(0, 3), 3), SafeTensor.I64("step", [42])],
            new Dictionary<string, string>
            {
                ["epoch"] = "3",
            });
    }

    [Test]
    public void FuzzRawBytes() =>
        Fuzz.Run("safetensors raw", ValidFile(), x => x, x => SafeTensors.Read(x, "fuzz.safetensors"), 4000, seed: 21,
                 hot: [0, 4]);

    /// <summary>
    /// Mutates only the JSON text and re-frames it with a correct length: reaches the header validation.
    /// </summary>
    [Test]
    public void FuzzHeaderJson()
    {
        var valid = ValidFile();
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var json = valid.AsSpan(8, n).ToArray();
        var data = valid.AsSpan(8 + n).ToArray();
        var rng = new Rng(22);
        byte[] Reframe(byte[] mutatedJson)
        {
            // Also splice in JSON-significant characters and digit runs, which byte noise rarely produces.
            var t = new List<byte>(mutatedJson);
            if (t.Count > 0 && rng.NextInt(2) == 0)
                t.InsertRange(rng.NextInt(t.Count), Encoding.ASCII.GetBytes(Tokens[rng.NextInt(Tokens.Length)]));
            return Build(Encoding.Latin1.GetString(t.ToArray()), data, pad: rng.NextInt(2) == 0);
        }
        Fuzz.Run("safetensors json", json, Reframe, x => SafeTensors.Read(x, "fuzz.safetensors"), 4000, seed: 23);
    }

    private static readonly string[] Tokens =
    [
        "{", "}", "[", "]", ",", ":", "\"", "-1", "0", "99999999999999999999", "1e300", "null", "\"F16\"", "[0,0]",
        "\"__metadata__\"", "\\u0000",
    ];
}
