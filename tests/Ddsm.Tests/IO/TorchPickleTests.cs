using System.IO.Compression;
using System.Text;
using Ddsm.IO;
using Ddsm.Tests.Interop;

namespace Ddsm.Tests.IO;

/// <summary>
/// The restricted unpickler and the torch zip reader: every tensor kind torch.save writes comes back exactly;
/// a pickle that would run code is refused in one line before anything runs; truncated and mutated pickles
/// and archives end in a DataFormatException, never a crash or a hang.
/// </summary>
public class TorchPickleTests
{
    private static byte[] PickleOf(string fixture)
    {
        using var zip = ZipFile.OpenRead(TorchFixtures.PathOf(fixture));
        using var s = zip.Entries.Single(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)).Open();
        var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    [Test]
    public void EveryTensorKindTorchSaveWritesReadsBackExactly()
    {
        // float16/bfloat16/float64/int64, a transposed view, a storage offset shared with another tensor, a 0-d tensor.
        var want = TorchFixtures.Read("dtypes-expected.safetensors");
        using var zip = TorchZip.Open(TorchFixtures.PathOf("dtypes.pt"));
        var root = (PickleDict)zip.Root!;
        Assert.That(root.Items.Select(kv => kv.Key), Is.EquivalentTo(want.Tensors.Select(t => t.Name)));
        foreach (var (key, value) in root.Items)
        {
            var t = (TorchTensorRef)value!;
            var w = want[(string)key!];
            Assert.That(t.Shape, Is.EqualTo(w.Shape), $"{key}: shape");
            if (w.DType == "I64") Assert.That(zip.ReadLongs(t, (string)key!), Is.EqualTo(w.ToInt64()), $"{key}");
            else Assert.That(zip.ReadFloats(t, (string)key!), Is.EqualTo(w.ToFloat()), $"{key}");
        }
    }

    [Test]
    public void HostilePickleIsRefusedInOneLineAndNothingRuns()
    {
        const string marker = "/tmp/ddsm-hostile-pickle-ran";   // what the pickle's os.system call would create
        File.Delete(marker);
        var e = Assert.Throws<DataFormatException>(() => TorchZip.Open(TorchFixtures.PathOf("hostile.pt")).Dispose());
        Assert.That(e!.Message, Does.Contain("refused global 'posix.system'").And.Not.Contain('\n'));
        Assert.That(File.Exists(marker), Is.False);
    }

    /// <summary>Protocol-2 pickles built by hand: PROTO 2, body, STOP.</summary>
    private static byte[] Pickle(params object[] parts)
    {
        var b = new List<byte> { 0x80, 2 };
        foreach (var p in parts)
            b.AddRange(p is string s ? Encoding.Latin1.GetBytes(s) : p is byte x ? [x] : (byte[])p);
        b.Add((byte)'.');
        return b.ToArray();
    }

    private static byte[] Str(string s) =>
        [(byte)'X', .. BitConverter.GetBytes(s.Length), .. Encoding.UTF8.GetBytes(s)];

    [TestCase("cbuiltins\neval\n", "refused global 'builtins.eval'")]
    [TestCase("c__builtin__\nexec\n", "refused global '__builtin__.exec'")]
    [TestCase("csubprocess\nPopen\n", "refused global 'subprocess.Popen'")]
    [TestCase("ctorch\nload\n", "refused global 'torch.load'")]
    [TestCase("cnumpy.core.multiarray\n_reconstruct\n", "refused global 'numpy.core.multiarray._reconstruct'")]
    public void GlobalsOutsideTheStateDictListAreRefused(string global, string message)
    {
        var data = Pickle(global, Str("echo hi"), (byte)0x85, "R");
        Fuzz.Rejects(() => TorchPickle.Load(data, "hostile"), message);
    }

    [Test]
    public void ObjectConstructionAndMisusedGlobalsAreRefused()
    {
        void Refused(byte[] pickle, string message) => Fuzz.Rejects(() => TorchPickle.Load(pickle, "x"), message);
        Refused(Pickle((byte)0x8c, (byte)2, "os", (byte)0x8c, (byte)6, "system", (byte)0x93),     // STACK_GLOBAL
            "refused global 'os.system'");
        Refused(Pickle("ccollections\nOrderedDict\n)", (byte)0x81), "object construction");      // NEWOBJ
        Refused(Pickle("(ios\nsystem\n"), "object construction");                                 // INST
        Refused(Pickle("ctorch\nFloatStorage\n)R"), "storage type");
        Refused(Pickle("ctorch._utils\n_rebuild_tensor_v2\n(NK\x00)\x89}t", "R"), "_rebuild_tensor_v2 arguments");
    }

    [Test]
    public void PersistentIdsAreCheckedAndCyclesDoNotHang()
    {
        var badPid = Pickle("(", Str("storage"), Str("not a type"), Str("0"), Str("cpu"), "K\x04tQ");
        Fuzz.Rejects(() => TorchPickle.Load(badPid, "x"), "persistent id");
        // A list that contains itself: loads (as Python's pickle does); nothing walks it recursively.
        var cyclic = (List<object?>)TorchPickle.Load(Pickle("]q\0h\0a"), "x")!;
        Assert.That(cyclic[0], Is.SameAs(cyclic));
    }

    [Test]
    public void EveryTruncationOfARealPickleIsACleanError()
    {
        // Every cut of the tensor-kinds pickle, and every 17th of the release-shaped one (dicts, lists, tuples,
        // floats, ints, None, OrderedDicts, tensors): all of them would take 10 s.
        foreach (var (fixture, step) in new[] { ("dtypes.pt", 1), ("ddsm-release.pt", 17) })
        {
            var pkl = PickleOf(fixture);
            Assert.That(TorchPickle.Load(pkl, "full"), Is.InstanceOf<PickleDict>());
            for (int n = 0; n < pkl.Length; n += step)
                Assert.Throws<DataFormatException>(() => TorchPickle.Load(pkl.AsMemory(0, n), $"first {n} bytes"),
                    $"{fixture} cut at {n}");
        }
    }

    [Test]
    public void MutatedPicklesOnlyFailCleanly()
    {
        var pkl = PickleOf("ddsm-release.pt");
        Fuzz.Run("torch pickle", pkl, b => b, b => TorchPickle.Load(b, "fuzz"), cases: 3000, seed: 21);
    }

    [Test]
    public void MutatedTorchArchivesOnlyFailCleanly()
    {
        var pt = File.ReadAllBytes(TorchFixtures.PathOf("dtypes.pt"));
        Fuzz.Run("torch zip", pt, b => b, b =>
        {
            using var zip = new TorchZip(new MemoryStream(b, writable: false), "fuzz");
            if (zip.Root is not PickleDict d) return;
            foreach (var (k, v) in d.Items)
                if (v is TorchTensorRef t)
                {
                    if (t.Storage.DType == TorchDType.Int64) zip.ReadLongs(t, "t"); else zip.ReadFloats(t, "t");
                }
        }, cases: 1500, seed: 22);
    }
}
