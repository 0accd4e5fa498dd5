"""The DDSM release's slimmable CIFAR-10 UNet (EnVision-Research/DDSM, slimmable_model.py), rebuilt here from
its published module names, shapes and forward rules, as an independent reference for `ddsm import --layout
ddsm-release`: a state dict in the release's naming goes in, ε̂ comes out, computed the release's way:

- time embedding: a (T, ch) table of interleaved [sin, cos] features, then Linear, Swish, Linear;
- ResBlock: block1 (GN, Swish, conv), + temb_proj (Swish, Linear), block2 (GN, Swish, dropout, conv),
  + shortcut, then the block's own attention (attn) when its level has one;
- attention: GN, separate proj_q/k/v 1×1 convs, ONE head over all active channels, scale C^-½, proj;
- slimming: every conv/linear runs the prefix of make_divisible(C·w, 8) outputs (16 for linears; 1 for
  q/k/v), takes the incoming channels as its inputs; GroupNorm(G) over the active channels; the tail
  conv always outputs the image channels.
"""
import math

import torch
import torch.nn.functional as F


class ReleaseConfig:
    def __init__(self, T=1000, ch=128, ch_mult=(1, 2, 2, 2), attn=(1,), num_res_blocks=2, groups=32, image_channels=3):
        self.T, self.ch, self.ch_mult, self.attn = T, ch, list(ch_mult), list(attn)
        self.num_res_blocks, self.groups, self.image_channels = num_res_blocks, groups, image_channels


def make_divisible(v, factor):
    """The release's channel rounding (from TF-slim's MobileNet): nearest multiple, at most 10 % down."""
    new_v = max(1, int(v + factor / 2) // factor * factor)
    return new_v + factor if new_v < 0.9 * v else new_v


def time_table(T, ch):
    freqs = torch.exp(-torch.arange(0, ch, 2) / ch * math.log(10000))
    a = torch.arange(T).float()[:, None] * freqs[None, :]
    return torch.stack([torch.sin(a), torch.cos(a)], dim=-1).reshape(T, ch)


def shapes(cfg):
    """(name, shape) of every tensor of the release's state dict, in its order."""
    out, tdim = [], 4 * cfg.ch

    def add(p, *shape):
        out.append((p + ".weight", shape))
        out.append((p + ".bias", (shape[0],)))

    def res(p, cin, cout, attn):
        add(p + ".block1.0", cin)
        add(p + ".block1.2", cout, cin, 3, 3)
        add(p + ".temb_proj.1", cout, tdim)
        add(p + ".block2.0", cout)
        add(p + ".block2.3", cout, cout, 3, 3)
        if cin != cout:
            add(p + ".shortcut", cout, cin, 1, 1)
        if attn:
            add(p + ".attn.group_norm", cout)
            for q in ("proj_q", "proj_k", "proj_v", "proj"):
                add(p + ".attn." + q, cout, cout, 1, 1)

    out.append(("time_embedding.timembedding.0.weight", (cfg.T, cfg.ch)))
    add("time_embedding.timembedding.1", tdim, cfg.ch)
    add("time_embedding.timembedding.3", tdim, tdim)
    add("head", cfg.ch, cfg.image_channels, 3, 3)
    chs, now, i = [cfg.ch], cfg.ch, 0
    for level, mult in enumerate(cfg.ch_mult):
        for _ in range(cfg.num_res_blocks):
            res(f"downblocks.{i}", now, cfg.ch * mult, level in cfg.attn)
            now = cfg.ch * mult
            chs.append(now)
            i += 1
        if level != len(cfg.ch_mult) - 1:
            add(f"downblocks.{i}.main", now, now, 3, 3)
            chs.append(now)
            i += 1
    res("middleblocks.0", now, now, True)
    res("middleblocks.1", now, now, False)
    i = 0
    for level in reversed(range(len(cfg.ch_mult))):
        for _ in range(cfg.num_res_blocks + 1):
            res(f"upblocks.{i}", chs.pop() + now, cfg.ch * cfg.ch_mult[level], level in cfg.attn)
            now = cfg.ch * cfg.ch_mult[level]
            i += 1
        if level != 0:
            add(f"upblocks.{i}.main", now, now, 3, 3)
            i += 1
    add("tail.0", now)
    add("tail.2", cfg.image_channels, now, 3, 3)
    return out


def forward(sd, cfg, x, t, width):
    """ε̂ of the release's network with state dict sd (release names) at width multiplier `width`."""
    def conv(p, h, cout=None, factor=8, stride=1):
        w = sd[p + ".weight"]
        n = w.shape[0] if cout == "all" else make_divisible(w.shape[0] * width, factor)
        return F.conv2d(h, w[:n, :h.shape[1]], sd[p + ".bias"][:n], stride, w.shape[-1] // 2)

    def linear(p, h):
        w = sd[p + ".weight"]
        n = make_divisible(w.shape[0] * width, 16)
        return F.linear(h, w[:n, :h.shape[1]], sd[p + ".bias"][:n])

    def norm(p, h):
        c = h.shape[1]
        return F.group_norm(h, cfg.groups, sd[p + ".weight"][:c], sd[p + ".bias"][:c], 1e-5)

    def attention(p, x):
        b, c, hh, ww = x.shape
        h = norm(p + ".group_norm", x)
        q, k, v = (conv(p + "." + n, h, factor=1).reshape(b, c, hh * ww) for n in ("proj_q", "proj_k", "proj_v"))
        w = torch.softmax(torch.bmm(q.transpose(1, 2), k) * c ** -0.5, dim=-1)      # (B, T, T)
        o = torch.bmm(v, w.transpose(1, 2)).reshape(b, c, hh, ww)
        return x + conv(p + ".proj", o)

    def resblock(p, x, temb, attn):
        h = conv(p + ".block1.2", F.silu(norm(p + ".block1.0", x)))
        h = h + linear(p + ".temb_proj.1", F.silu(temb))[:, :, None, None]
        h = conv(p + ".block2.3", F.silu(norm(p + ".block2.0", h)))
        h = h + (conv(p + ".shortcut", x) if p + ".shortcut.weight" in sd else x)
        return attention(p + ".attn", h) if attn else h

    temb = sd["time_embedding.timembedding.0.weight"][t.long()]
    temb = linear("time_embedding.timembedding.3", F.silu(linear("time_embedding.timembedding.1", temb)))
    h = conv("head", x)
    hs, i = [h], 0
    for level in range(len(cfg.ch_mult)):
        for _ in range(cfg.num_res_blocks):
            h = resblock(f"downblocks.{i}", h, temb, level in cfg.attn)
            hs.append(h)
            i += 1
        if level != len(cfg.ch_mult) - 1:
            h = conv(f"downblocks.{i}.main", h, stride=2)
            hs.append(h)
            i += 1
    h = resblock("middleblocks.0", h, temb, True)
    h = resblock("middleblocks.1", h, temb, False)
    i = 0
    for level in reversed(range(len(cfg.ch_mult))):
        for _ in range(cfg.num_res_blocks + 1):
            h = resblock(f"upblocks.{i}", torch.cat([h, hs.pop()], dim=1), temb, level in cfg.attn)
            i += 1
        if level != 0:
            h = conv(f"upblocks.{i}.main", F.interpolate(h, scale_factor=2, mode="nearest"))
            i += 1
    return conv("tail.2", F.silu(norm("tail.0", h)), cout="all")
