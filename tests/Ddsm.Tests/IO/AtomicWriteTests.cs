using Ddsm.Engine;
using Ddsm.IO;

namespace Ddsm.Tests.IO;

public class AtomicWriteTests
{
    private string _dir = "";

    [SetUp] public void SetUp() => _dir = Directory.CreateTempSubdirectory("ddsm-atomic-").FullName;
    [TearDown] public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void AFailingWriterLeavesThePreviousFileIntactAndNoTemp()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        SafeTensors.Write(path, [SafeTensor.F32("w", [1f, 2f], 2)]);
        var before = File.ReadAllBytes(path);
        Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[1000]);
            // Mid-write, the final path still holds the old file and we write elsewhere.
            Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
            Assert.That(((FileStream)s).Name, Does.StartWith(path + ".tmp-"));
            throw new IOException("disk full (simulated)");
        }));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "the temp file must be removed");
        Assert.That(SafeTensors.Read(path)["w"].ToFloat(), Is.EqualTo(new[] { 1f, 2f }));
    }

    [Test]
    public void ASuccessfulWriteReplacesTheFile()
    {
        string path = Path.Combine(_dir, "a.bin");
        AtomicFile.WriteAllBytes(path, [1, 2, 3]);
        AtomicFile.WriteAllBytes(path, [4, 5]);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 4, 5 }));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1));
    }

    [Test]
    public void RotationKeepsTheNewestByStepAndIgnoresStrays()
    {
        var rot = new CheckpointRotation(_dir, keep: 3);
        File.WriteAllText(Path.Combine(_dir, "ckpt-000000002.safetensors.tmp-abc123"), "interrupted write");
        File.WriteAllText(Path.Combine(_dir, "ckpt-best.safetensors"), "not a step");
        var r = new Rng(1);
        // Out of order on purpose: order must come from the step, not from creation time.
        foreach (long step in new long[] { 500, 100, 1000, 300, 20000 })
        {
            var w = new float[4]; r.FillNormal(w);
            rot.Save(step, [SafeTensor.F32("w", w, 4), SafeTensor.I64("step", [step])]);
        }
        Assert.That(rot.List().Select(x => x.Step), Is.EqualTo(new long[] { 500, 1000, 20000 }));
        Assert.That(rot.Latest(), Is.EqualTo(rot.PathFor(20000)));
        Assert.That(SafeTensors.Read(rot.Latest()!)["step"].ToInt64(), Is.EqualTo(new[] { 20000L }));
        Assert.That(File.Exists(Path.Combine(_dir, "ckpt-000000002.safetensors.tmp-abc123")), Is.True);
        Assert.That(File.Exists(Path.Combine(_dir, "ckpt-best.safetensors")), Is.True);
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(5));
    }
}
