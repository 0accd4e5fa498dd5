"""Writes the PyTorch fixtures of tests/Ddsm.Tests/Fixtures/Torch (committed; `dotnet test` needs no Python).

    /usr/bin/python3 bench/pytorch/make_fixtures.py      # Debian's python3 + python3-torch (1.13.1, CPU)

golden.safetensors     a small class-conditional UNet of ours (every block kind, three widths): weights, the
                       inputs and ε̂ at every width, the losses and every parameter gradient of one sandwich
                       step, and a 5-step DDIM trajectory with a width per step
golden-one-head.safetensors  the same for a smaller unconditional UNet built like the DDSM release's (one
                       attention head that shrinks with the width, time embedding added, no scale-shift)
ours.pt                torch.save(model.state_dict()) of our layout; ours-expected.safetensors: its config,
                       inputs and ε̂ at every width
ddsm-release.pt        a checkpoint shaped like the DDSM release's (net_model, ema_model, optim, sched, step,
                       x_T) of a small network in the release's naming; ddsm-release-expected.safetensors:
                       ε̂ of its EMA weights computed the release's way (ddsm_release.py)
ddsm-cifar10.safetensors  the release's full CIFAR-10 names and shapes (metadata "manifest") and ε̂ at every
                       quarter width for weights given by a formula (formula_weights), so the test rebuilds
                       the 35.7M-parameter file itself instead of committing it
dtypes.pt              tensors the importer must rebuild: float16/bfloat16/float64/int64, a transposed view,
                       a storage offset, two tensors sharing one storage; dtypes-expected.safetensors
hostile.pt             a torch.save of an object whose unpickling would call os.system
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddsm_release  # noqa: E402
import safetensors_io  # noqa: E402
from slim_unet import SlimUNet  # noqa: E402
from unet_config import UNetConfig, PRESETS  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "Ddsm.Tests", "Fixtures", "Torch")
T = 1000

GOLDEN = UNetConfig(name="golden", image_channels=3, image_size=8, model_channels=16, channel_mult=[1, 2],
                    num_res_blocks=1, attention_resolutions=[4], head_channels=8, groups=4, dropout=0.0,
                    num_classes=3, widths=[0.5, 0.75, 1.0])
GOLDEN_ONE_HEAD = UNetConfig(name="golden-one-head", image_channels=3, image_size=8, model_channels=8,
                             channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[4], attention_heads=1,
                             groups=2, dropout=0.0, scale_shift_norm=False, widths=[0.5, 1.0])
OURS = UNetConfig(name="ours-small", image_channels=3, image_size=8, model_channels=8, channel_mult=[1, 2],
                  num_res_blocks=1, attention_resolutions=[4], head_channels=4, groups=2, dropout=0.1,
                  widths=[0.5, 1.0])
# The release's structure at a small size: its time projections round to multiples of 16 channels, so
# ch 32 is the least whose half width (16) is a real cut.
RELEASE_SMALL = ddsm_release.ReleaseConfig(T=T, ch=32, ch_mult=(1, 1), attn=(1,), num_res_blocks=1, groups=8)
RELEASE_SMALL_WIDTHS = [0.5, 1.0]
RELEASE_CIFAR10 = ddsm_release.ReleaseConfig()


def alpha_bars():
    """Our linear schedule (NoiseSchedule.Linear), in float64 as the C# code computes it."""
    betas = [1e-4 + (0.02 - 1e-4) * i / (T - 1) for i in range(T)]
    out, a = [], 1.0
    for b in betas:
        a *= 1 - b
        out.append(a)
    return out


def perturb(model, seed):
    """Zero-initialised output convs make ε̂ identically 0; give every parameter some structure."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def spaced_timesteps(steps):
    return [int(round((T - 1) * (1.0 - i / (steps - 1)))) for i in range(steps)]


def width_at(cfg, t):
    """The trajectory's strategy: the narrowest width where the noise is high, full width at the end."""
    return cfg.widths[min(len(cfg.widths) - 1, (T - 1 - t) * len(cfg.widths) // T)]


def make_golden(cfg, file, seed):
    torch.manual_seed(seed)
    model = SlimUNet(cfg)
    perturb(model, seed + 1)
    g = torch.Generator().manual_seed(seed + 2)
    b, shape = 4, (4, 3, 8, 8)
    # Class 3 is the null class; an unconditional model has no labels.
    labels = torch.tensor([0, 1, 2, 3]) if cfg.num_classes > 0 else None
    x0 = torch.rand(shape, generator=g) * 2 - 1
    ab = alpha_bars()
    out = {} if labels is None else {"labels": labels}
    model.zero_grad()
    losses = []
    pass_widths = [max(cfg.widths), min(cfg.widths)] + cfg.widths[1:-1]   # sandwich: max, min, the middle ones
    for i, w in enumerate(pass_widths):
        t = torch.randint(0, T, (b,), generator=g)
        eps = torch.randn(shape, generator=g)
        sa = torch.tensor([np.float32(np.sqrt(ab[k])) for k in t.tolist()])[:, None, None, None]
        sn = torch.tensor([np.float32(np.sqrt(1 - ab[k])) for k in t.tolist()])[:, None, None, None]
        xt = sa * x0 + sn * eps
        loss = F.mse_loss(model(xt, t.float(), w, labels, training=True), eps)
        loss.backward()
        losses.append(loss.item())
        out[f"pass.{i}.xt"], out[f"pass.{i}.t"], out[f"pass.{i}.eps"] = xt, t.float(), eps
    out["loss"] = torch.tensor(losses)
    with torch.no_grad():
        for w in cfg.widths:
            out[f"eps_hat.{w}"] = model(out["pass.0.xt"], out["pass.0.t"], w, labels)
    for n, p in model.named_parameters():
        out["param." + n] = p.detach()
        out["grad." + n] = p.grad
    # DDIM, η = 0, x̂0 clipped to [-1, 1] and ε recomputed from it (as DdimSampler does), unconditional.
    steps = spaced_timesteps(5)
    x = torch.randn((2, 3, 8, 8), generator=g)
    out["ddim.x_T"] = x.clone()
    with torch.no_grad():
        for i, t in enumerate(steps):
            a, a_prev = ab[t], ab[steps[i + 1]] if i + 1 < len(steps) else 1.0
            eps = model(x, torch.full((2,), float(t)), width_at(cfg, t))
            x0 = (x / np.sqrt(a) - np.sqrt((1 - a) / a) * eps).clamp(-1, 1)
            eps = x / np.sqrt(1 - a) - np.sqrt(a / (1 - a)) * x0
            x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps
            out[f"ddim.step.{i}"] = x.clone()
    meta = {"config": cfg.to_json(), "pass_widths": json.dumps(pass_widths), "ddim_steps": "5",
            "ddim_widths": json.dumps([width_at(cfg, t) for t in range(T)]), "torch": torch.__version__}
    safetensors_io.write(os.path.join(OUT, file), out, meta)


def make_ours():
    torch.manual_seed(4)
    model = SlimUNet(OURS)
    perturb(model, 5)
    torch.save(model.state_dict(), os.path.join(OUT, "ours.pt"))
    g = torch.Generator().manual_seed(6)
    x, t = torch.randn((2, 3, 8, 8), generator=g), torch.tensor([17.0, 900.0])
    out = {"x": x, "t": t}
    with torch.no_grad():
        for w in OURS.widths:
            out[f"eps_hat.{w}"] = model(x, t, w)
    safetensors_io.write(os.path.join(OUT, "ours-expected.safetensors"), out, {"config": OURS.to_json()})


def release_state(cfg, seed):
    """Random weights in the release's naming (xavier-like), the time table exact."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in ddsm_release.shapes(cfg):
        if name == "time_embedding.timembedding.0.weight":
            sd[name] = ddsm_release.time_table(cfg.T, cfg.ch)
        elif len(shape) == 1:
            base = 1.0 if name.endswith(".weight") else 0.0
            sd[name] = base + 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:]))
            sd[name] = torch.randn(shape, generator=g) / np.sqrt(fan_in)
    return sd


def make_release_small():
    cfg = RELEASE_SMALL
    ema = release_state(cfg, 7)
    # The raw weights share the EMA's storages (torch.save writes each once) except the head's, which
    # differ: the file stays small and still tells the importer's raw weights from its EMA ones.
    net = dict(ema)
    net["head.weight"] = ema["head.weight"] + 0.5
    # An optimiser and scheduler state like the release's training loop saves (one Adam step taken),
    # over two tensors to keep the file small.
    params = [torch.nn.Parameter(net[n].clone()) for n in ("head.weight", "head.bias")]
    optim = torch.optim.Adam(params, lr=2e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda=lambda step: min(step, 5000) / 5000)
    sum((p * p).sum() for p in params).backward()
    optim.step()
    sched.step()
    g = torch.Generator().manual_seed(9)
    ckpt = {"net_model": net, "ema_model": ema, "sched": sched.state_dict(), "optim": optim.state_dict(),
            "step": 450000, "x_T": torch.randn((4, 3, 8, 8), generator=g)}
    torch.save(ckpt, os.path.join(OUT, "ddsm-release.pt"))
    x, t = torch.randn((2, 3, 8, 8), generator=g), torch.tensor([17, 900])
    out = {"x": x, "t": t.float()}
    with torch.no_grad():
        for w in RELEASE_SMALL_WIDTHS:
            out[f"eps_hat.{w}"] = ddsm_release.forward(ema, cfg, x, t, w)
    safetensors_io.write(os.path.join(OUT, "ddsm-release-expected.safetensors"), out)


def formula_weights(index, name, shape):
    """Deterministic weights both sides compute bit for bit: splitmix64 of (tensor index << 32 | element),
    24 bits of it as u in [0, 1); ±√(3/fan_in) for matrices, 1 ± 0.1 for GroupNorm scales, ± 0.1 for biases."""
    n = int(np.prod(shape))
    z = (np.uint64(index) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    if len(shape) >= 2:
        v = (2 * u - 1) * np.sqrt(3.0 / int(np.prod(shape[1:])))
    elif name.endswith(".weight"):
        v = 1 + (2 * u - 1) * 0.1
    else:
        v = (2 * u - 1) * 0.1
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def make_release_cifar10():
    cfg = RELEASE_CIFAR10
    manifest = ddsm_release.shapes(cfg)
    sd = {}
    for i, (name, shape) in enumerate(manifest):
        sd[name] = ddsm_release.time_table(cfg.T, cfg.ch) if i == 0 else formula_weights(i, name, shape)
    g = torch.Generator().manual_seed(10)
    x, t = torch.randn((1, 3, 32, 32), generator=g), torch.tensor([421])
    out = {"x": x, "t": t.float()}
    with torch.no_grad():
        for w in PRESETS["cifar10-ddsm"].widths:
            out[f"eps_hat.{w}"] = ddsm_release.forward(sd, cfg, x, t, w)
    meta = {"manifest": json.dumps([[n, list(s)] for n, s in manifest])}
    safetensors_io.write(os.path.join(OUT, "ddsm-cifar10.safetensors"), out, meta)


def make_dtypes():
    g = torch.Generator().manual_seed(11)
    base = torch.randn(24, generator=g)
    d = {
        "f32": torch.randn((2, 3), generator=g),
        "transposed": torch.randn((3, 4), generator=g).t(),         # strides (1, 4)
        "offset": base[5:17].view(3, 4),                             # storage offset 5, shares base's storage
        "shared": base,
        "f16": torch.randn((5,), generator=g).half(),
        "bf16": torch.randn((5,), generator=g).bfloat16(),
        "f64": torch.randn((2, 2), generator=g).double(),
        "i64": torch.arange(6).view(2, 3) * 1000000007,
        "scalar": torch.tensor(3.5),
    }
    torch.save(d, os.path.join(OUT, "dtypes.pt"))
    expected = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in d.items()}
    safetensors_io.write(os.path.join(OUT, "dtypes-expected.safetensors"), expected)


class _Hostile:
    """Unpickling this calls os.system (what a malicious checkpoint does); our importer must refuse it."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/ddsm-hostile-pickle-ran",))


def make_hostile():
    torch.save({"weight": torch.zeros(2), "payload": _Hostile()}, os.path.join(OUT, "hostile.pt"))


def main():
    os.makedirs(OUT, exist_ok=True)
    make_golden(GOLDEN, "golden.safetensors", 1)
    make_golden(GOLDEN_ONE_HEAD, "golden-one-head.safetensors", 12)
    make_ours()
    make_release_small()
    make_release_cifar10()
    make_dtypes()
    make_hostile()
    for f in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, f)):>9}  {f}")


if __name__ == "__main__":
    main()
