using Ddsm.Engine;
using Ddsm.IO;

namespace Ddsm.Tests.IO;

public class TensorChecksumsTests
{
    [Test]
    public void Crc32CHasTheStandardCheckValueAndTheHardwarePathAgreesWithTheTable()
    {
        Assert.That(Crc32C.Compute("123456789"u8), Is.EqualTo(0xE3069283u), "RFC 3720's check value");
        var rng = new Rng(3);
        var data = new byte[1003];   // not a multiple of 8: the byte tail too
        for (int i = 0; i < data.Length; i++) data[i] = (byte)rng.NextInt(256);
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
        }
        Assert.That(Crc32C.Compute(data), Is.EqualTo(~c));
    }

    private static byte[] Stamped(out SafeTensor[] tensors)
    {
        tensors = [SafeTensor.F32("a", [1f, 2f, 3f], 3), SafeTensor.F32("b", [4f], 1)];
        var meta = TensorChecksums.Stamp(tensors, new Dictionary<string, string> { ["step"] = "7" });
        return SafeTensors.Serialize(tensors, meta);
    }

    [Test]
    public void AStampedFileReadsBackAndAnyChangedByteOfItsTensorsIsRefused()
    {
        var good = Stamped(out var tensors);
        Assert.That(SafeTensors.Read(good, "good")["a"].ToFloat(), Is.EqualTo(new[] { 1f, 2f, 3f }));
        int dataStart = good.Length - tensors.Sum(t => t.Data.Length);
        for (int i = dataStart; i < good.Length; i++)
        {
            var bad = (byte[])good.Clone();
            bad[i] ^= 0x01;
            Fuzz.Rejects(() => SafeTensors.Read(bad, "bad"), "does not match its checksum");
        }
    }

    [Test]
    public void EditedMetadataAndADroppedTensorAreRefusedAndUnstampedFilesStillRead()
    {
        Stamped(out var tensors);
        var meta = TensorChecksums.Stamp(tensors, new Dictionary<string, string> { ["step"] = "7" });
        var edited = new Dictionary<string, string>(meta) { ["step"] = "8" };
        Fuzz.Rejects(() => SafeTensors.Read(SafeTensors.Serialize(tensors, edited), "edited"),
                     "metadata does not match");
        Fuzz.Rejects(() => SafeTensors.Read(SafeTensors.Serialize(tensors[..1], meta), "dropped"), "missing");
        var old =
            SafeTensors.Read(SafeTensors.Serialize(tensors, new Dictionary<string, string> { ["step"] = "7" }), "old");
        Assert.That(old["b"].ToFloat(), Is.EqualTo(new[] { 4f }), "a file without checksums reads as before");
    }
}
