using Ddsm.Data;
using Ddsm.Engine;
using Ddsm.Engine.Ilgpu;
using Ddsm.Model;
using Ddsm.Training;

namespace Ddsm.Bench;

/// <summary>
/// `gpu`: the GPU backend on the device it gets, timed by stream markers (device time; medians of
/// reps after a warm-up launch). (a) Ceilings: device-to-device copy bandwidth and our own GEMM at
/// 4096³ in exact FP32 and TF32; (b) conv forward, backward-data and backward-weight at the UNet's
/// shapes in TFLOP/s, FP32 and TF32, as a fraction of the TF32 GEMM; (c) a sandwich training step and
/// a sampling forward (widths 1, ½, ¼) of fmnist32 and cifar10 at batch 64, exact and TF32.
/// The PyTorch peer (cuBLAS matmul ceiling, eager and torch.compile UNet) is bench/pytorch's job.
/// Args: [device=cuda|ilgpu-cpu] [reps=5] [small]. `small` shrinks every shape (a smoke test that the
/// program runs; ilgpu-cpu implies it: the CPU accelerator runs one OS thread per GPU lane).
/// </summary>
public static class GpuBench
{
    public static void Register() =>
        Program.Register("gpu", "GPU backend: ceilings, conv TFLOP/s, training and sampling step (device time)", Run);

    private static int Run(string[] args)
    {
        string device = args.Length > 0 ? args[0] : "cuda";
        int reps = args.Length > 1 ? int.Parse(args[1]) : 5;
        var be = device switch
        {
            "cuda" => IlgpuBackend.TryCuda(out var why) ?? throw new NotSupportedException($"no CUDA device: {why}"),
            "ilgpu-cpu" => IlgpuBackend.CpuAccelerator,
            _ => throw new ArgumentException($"device '{device}' (cuda, ilgpu-cpu)"),
        };
        bool small = !be.IsCuda || args.Contains("small");
        Console.WriteLine($"device {be.DeviceName} ({be.Name}), {be.Multiprocessors} multiprocessors, {reps} " +
                          $"reps{(small ? ", small shapes" : "")}");

        double Median(Action body)
        {
            be.TimeMs(body);                                   // warm-up: kernels load, pool fills
            var t = Enumerable.Range(0, reps).Select(_ => be.TimeMs(body)).Order().ToArray();
            return t[reps / 2];
        }
        DeviceBuffer Rand(long n)
        {
            var a = new float[n];
            new Rng(1).FillNormal(a);
            var b = be.Allocate(n);
            be.CopyIn(b, 0, a);
            return b;
        }

        // (a) ceilings
        long bytes = small ? 1 << 20 : 1L << 28;
        var src = Rand(bytes / 4); var dst = be.Allocate(bytes / 4);
        double copyMs = Median(() => be.Copy(src, 0, dst, 0, bytes / 4));
        Console.WriteLine($"device copy {bytes >> 20} MiB: {2.0 * bytes / copyMs / 1e6:F0} GB/s (read + write)");
        be.Free(src); be.Free(dst);
        int n = small ? 128 : 4096;
        var a = Rand((long)n * n); var b = Rand((long)n * n); var c = be.Allocate((long)n * n);
        var gemm = new GemmDesc(false, false, n, n, n, 1f, 0f, 0, n, 0, n, 0, n);
        double gemmTf32 = 0;
        foreach (bool exact in new[] { true, false })
        {
            be.ExactFp32 = exact;
            double tf = gemm.Flops / Median(() => be.Gemm(gemm, a, b, c)) / 1e9;
            if (!exact) gemmTf32 = tf;
            Console.WriteLine($"gemm {n}³ {(exact ? "fp32" : "tf32")}: {tf:F3} TFLOP/s");
        }
        be.Free(a); be.Free(b); be.Free(c);

        // (b) conv at the UNet's shapes: 3×3 pad 1, batch 64 (fmnist32/cifar10 levels)
        var shapes = small
            ? new[] { new ConvDesc(2, 16, 8, 8, 16, 3, 1, 1, 16, 16) }
            : new[] { new ConvDesc(64, 64, 32, 32, 64, 3, 1, 1, 64, 64),
                      new ConvDesc(64, 128, 16, 16, 128, 3, 1, 1, 128, 128),
                      new ConvDesc(64, 256, 8, 8, 256, 3, 1, 1, 256, 256),
                      new ConvDesc(64, 32, 32, 32, 32, 3, 1, 1, 128, 128) };
        Console.WriteLine(
            $"{"conv (N,Cin,H,W)->Cout",-28} {"mode",5} {"fwd TF/s",9} {"bwd-data",9} {"bwd-w",9} {"fwd/gemm",9}");
        foreach (var d in shapes)
        {
            var x = Rand((long)d.N * d.Cin * d.H * d.W); var w = Rand((long)d.CoutMax * d.CinMax * 9);
            var y = be.Allocate((long)d.N * d.Cout * d.Ho * d.Wo); var dw = Rand((long)d.CoutMax * d.CinMax * 9);
            var dx = Rand((long)d.N * d.Cin * d.H * d.W);
            foreach (bool exact in new[] { true, false })
            {
                be.ExactFp32 = exact;
                double f = d.ForwardFlops / 1e9;
                double fwd = f / Median(() => be.Conv2dForward(d, x, w, null, y));
                double bd = f / Median(() => be.Conv2dBackwardData(d, y, w, dx));
                double bw = f / Median(() => be.Conv2dBackwardWeight(d, x, y, dw, null));
                Console.WriteLine($"{$"({d.N},{d.Cin},{d.H},{d.W})->{d.Cout}",-28} {(exact ? "fp32" : "tf32"),5} " +
                                  $"{fwd,9:F3} {bd,9:F3} {bw,9:F3} {fwd / gemmTf32,9:P0}");
            }
            foreach (var buf in new[] { x, w, y, dw, dx }) be.Free(buf);
        }

        // (c) model steps
        foreach (var preset in small ? new[] { "tiny" } : new[] { "fmnist32", "cifar10" })
        {
            var cfg = UNetConfig.Preset(preset);
            int batch = small ? 2 : 64;
            var data = Noise(cfg, 256);
            foreach (bool exact in new[] { true, false })
            {
                be.ExactFp32 = exact;
                using var model = new SlimUNet(be, cfg, 1);
                using var tr = new SandwichTrainer(model, data, new TrainOptions { BatchSize = batch }, 2);
                double step = Median(() => tr.TrainStep());
                var fwd = cfg.Widths.Where(w => w is 1.0 or 0.5 or 0.25).Select(width =>
                {
                    using var noGrad = Tape.NoGrad();
                    var x = new float[batch * cfg.ImageChannels * cfg.ImageSize * cfg.ImageSize];
                    new Rng(3).FillNormal(x);
                    var t = Enumerable.Repeat(500f, batch).ToArray();
                    return (width, ms: Median(() =>
                    {
                        using var scope = new TensorScope();
                        model.Forward(Tensor.FromArray(be, x, batch, cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize),
                            Tensor.FromArray(be, t, batch), width);
                    }));
                }).ToList();
                Console.WriteLine($"{preset} B{batch} {(exact ? "fp32" : "tf32")}: training step (sandwich n=4) " +
                                  $"{step:F1} ms; sampling forward " +
                                  $"{string.Join(", ", fwd.Select(f => $"w{f.width:0.##} {f.ms:F2} ms"))}");
            }
        }
        return 0;
    }

    /// <summary>Random images of the model's shape: the step's arithmetic does not depend on the pictures.</summary>
    private static ImageDataset Noise(UNetConfig cfg, int count)
    {
        var px = new byte[count * cfg.ImageChannels * cfg.ImageSize * cfg.ImageSize];
        new Random(4).NextBytes(px);
        return new ImageDataset("noise", px, new byte[count], cfg.ImageChannels, cfg.ImageSize, cfg.ImageSize, 0);
    }
}
