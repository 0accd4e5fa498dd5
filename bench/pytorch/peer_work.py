"""PyTorch's side of the peer benchmark: each work item is the twin of the same-named one in
bench/Ddsm.Bench/PeerWork.cs / PeerModelWork.cs (same shapes, same amount of work).

Kernel items time what a model's forward or backward pays for the op: forward under no_grad (output
allocated), backward as torch.autograd.grad of the op's output on a retained graph (the gradients
allocated, as in a training step). Model items load the weights and the input batch our worker wrote.
"""
import torch
import torch.nn.functional as F

import safetensors_io
from slim_unet import SlimUNet, legacy_attention


def _randn(gen, *shape, grad=False):
    return torch.randn(*shape, generator=gen).requires_grad_(grad)


class ConvWork:
    """conv_fwd / conv_bwd: 3×3, pad 1, stride 1, Cin = Cout = c, with bias."""

    def __init__(self, s, backward):
        g = torch.Generator().manual_seed(1)
        n, c, hw = s["n"], s["c"], s["hw"]
        self.x, self.w, self.b = (_randn(g, n, c, hw, hw, grad=backward), _randn(g, c, c, 3, 3, grad=backward),
                                  _randn(g, c, grad=backward))
        self.dy = _randn(g, n, c, hw, hw)
        self.backward = backward
        if backward:
            self.y = F.conv2d(self.x, self.w, self.b, 1, 1)

    def run(self):
        if self.backward:
            torch.autograd.grad(self.y, (self.x, self.w, self.b), self.dy, retain_graph=True)
        else:
            with torch.no_grad():
                F.conv2d(self.x, self.w, self.b, 1, 1)


class GroupNormWork:
    """gn_silu_fwd / gn_silu_bwd: GroupNorm(groups) then SiLU, as slim_unet's SlimGroupNorm runs them."""

    def __init__(self, s, backward):
        g = torch.Generator().manual_seed(2)
        n, c, hw = s["n"], s["c"], s["hw"]
        self.groups = s.get("groups", 16)
        self.x, self.g, self.b = (_randn(g, n, c, hw, hw, grad=backward), _randn(g, c, grad=backward),
                                  _randn(g, c, grad=backward))
        self.dy = _randn(g, n, c, hw, hw)
        self.backward = backward
        if backward:
            self.y = self._forward()

    def _forward(self):
        return F.silu(F.group_norm(self.x, self.groups, self.g, self.b, 1e-5))

    def run(self):
        if self.backward:
            torch.autograd.grad(self.y, (self.x, self.g, self.b), self.dy, retain_graph=True)
        else:
            with torch.no_grad():
                self._forward()


class AttentionWork:
    """attn_fwd / attn_bwd: ADM's legacy-layout attention over T = hw² tokens, qkv (n, 3c, T)."""

    def __init__(self, s, backward):
        g = torch.Generator().manual_seed(3)
        n, c, t = s["n"], s["c"], s["hw"] ** 2
        self.heads = c // s.get("head_channels", 32)
        self.qkv = _randn(g, n, 3 * c, t, grad=backward)
        self.dy = _randn(g, n, c, t)
        self.backward = backward
        if backward:
            self.y = legacy_attention(self.qkv, self.heads)

    def run(self):
        if self.backward:
            torch.autograd.grad(self.y, (self.qkv,), self.dy, retain_graph=True)
        else:
            with torch.no_grad():
                legacy_attention(self.qkv, self.heads)


class ModelWork:
    """The UNet and input batch our worker wrote (weights file of the spec); info["checksum"] as ours."""

    def __init__(self, s):
        self.model = safetensors_io.load_model(s["weights"], SlimUNet)
        tensors, _ = safetensors_io.read(s["weights"])
        self.x, self.eps, self.t = tensors["peer.x"], tensors["peer.eps"], tensors["peer.t"]
        self.widths = s["widths"]
        with torch.no_grad():
            e = self.model(self.x, self.t, self.widths[0]).double()
        self.info = {"checksum": [e.mean().item(), e.abs().mean().item()],
                     "params": sum(p.numel() for p in self.model.parameters())}


class SampleWork(ModelWork):
    """sample_fwd: one UNet forward at one width, no gradients."""

    def run(self):
        with torch.no_grad():
            self.model(self.x, self.t, self.widths[0])


class TrainWork(ModelWork):
    """train_step: per width forward (dropout on), ε-MSE, backward; Adam (lr 1e-4); EMA with "ema"."""

    def __init__(self, s):
        super().__init__(s)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.ema = [p.detach().clone() for p in self.model.parameters()] if s.get("ema") else None

    def run(self):
        for w in self.widths:
            F.mse_loss(self.model(self.x, self.t, w, training=True), self.eps).backward()
        self.opt.step()
        self.opt.zero_grad()
        if self.ema is not None:
            with torch.no_grad():  # ADM's update_ema
                for e, p in zip(self.ema, self.model.parameters()):
                    e.mul_(0.999).add_(p, alpha=0.001)


def create(spec):
    w = spec["work"]
    kernels = {"conv": ConvWork, "gn_silu": GroupNormWork, "attn": AttentionWork}
    for prefix, cls in kernels.items():
        if w in (prefix + "_fwd", prefix + "_bwd"):
            return cls(spec, backward=w.endswith("_bwd"))
    if w == "sample_fwd":
        return SampleWork(spec)
    if w == "train_step":
        return TrainWork(spec)
    raise ValueError(f"unknown work {w!r}")
