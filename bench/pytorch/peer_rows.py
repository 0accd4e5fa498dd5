"""The rows of the peer benchmark's table (issue 16): the work, at the UNet's shapes, each run on both sides.

Each row: an id (what --rows selects, with shell-style patterns), the table label, the spec both workers
get (bench/Ddsm.Bench/PeerWork.cs and peer_work.py), and whether it is a model row (fewer, longer reps).
fmnist32 runs 64 channels at 32², 128 at 16² and 8² (¼ width: 16 and 32); cifar10 128 at 32², 256 below.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    spec: dict

    @property
    def model(self):
        return self.spec["work"] in ("sample_fwd", "train_step")


def _sq(hw):
    return f"{hw}²"


def _rows():
    rows = []
    for b in (16, 64):
        rows.append(Row(f"train/fmnist32-b{b}", f"fmnist32 training step B{b} (fwd+bwd+Adam)",
                        {"work": "train_step", "preset": "fmnist32", "batch": b, "widths": [1.0]}))
    rows.append(Row("train/cifar10-b16", "cifar10 training step B16 (fwd+bwd+Adam)",
                    {"work": "train_step", "preset": "cifar10", "batch": 16, "widths": [1.0]}))
    for w, name in ((1.0, "1"), (0.5, "½"), (0.25, "¼")):
        rows.append(Row(f"sample/fmnist32-b64-w{w:g}", f"fmnist32 sampling forward B64, width {name}",
                        {"work": "sample_fwd", "preset": "fmnist32", "batch": 64, "widths": [w]}))
    for c, hw in ((64, 32), (128, 32), (128, 16), (256, 16), (16, 32), (32, 16)):
        rows.append(Row(f"conv_fwd/c{c}-{hw}", f"3×3 conv fwd, N32 C{c} {_sq(hw)}",
                        {"work": "conv_fwd", "n": 32, "c": c, "hw": hw}))
    for c, hw in ((64, 32), (128, 32), (128, 16), (256, 16)):
        rows.append(Row(f"conv_bwd/c{c}-{hw}", f"3×3 conv bwd (data+weight+bias), N32 C{c} {_sq(hw)}",
                        {"work": "conv_bwd", "n": 32, "c": c, "hw": hw}))
    for c, hw in ((64, 32), (128, 32), (128, 16), (256, 16), (128, 8), (256, 8), (16, 32), (32, 16)):
        rows.append(Row(f"gn_fwd/c{c}-{hw}", f"GroupNorm16+SiLU fwd, N64 C{c} {_sq(hw)}",
                        {"work": "gn_silu_fwd", "n": 64, "c": c, "hw": hw, "groups": 16}))
    for c, hw in ((64, 32), (128, 16), (128, 8)):
        rows.append(Row(f"gn_bwd/c{c}-{hw}", f"GroupNorm16+SiLU bwd, N64 C{c} {_sq(hw)}",
                        {"work": "gn_silu_bwd", "n": 64, "c": c, "hw": hw, "groups": 16}))
    for kind in ("fwd", "bwd"):
        for c, hw in ((128, 16), (256, 8)):
            rows.append(Row(f"attn_{kind}/t{hw * hw}", f"attention {kind}, N64 C{c} T={hw * hw} (heads of 32)",
                            {"work": f"attn_{kind}", "n": 64, "c": c, "hw": hw, "head_channels": 32}))
    # Not in the default set (select with --rows 'sandwich/*'): the sandwich trainer's whole step.
    rows.append(Row("sandwich/fmnist32-b16", "fmnist32 sandwich step B16 (widths 1, ¼, ½, ¾ + Adam + EMA)",
                    {"work": "train_step", "preset": "fmnist32", "batch": 16, "widths": [1.0, 0.25, 0.5, 0.75],
                     "ema": True}))
    return rows


ROWS = _rows()
DEFAULT = [r for r in ROWS if not r.id.startswith("sandwich/")]
