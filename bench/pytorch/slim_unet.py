"""The slimmable ADM UNet of src/Ddsm/Model (SlimUNet, Blocks, SlimLayers) in PyTorch: the same network,
parameter names and shapes, so one state dict (our safetensors checkpoints) runs in both.

Width is an argument: every layer runs the prefix [:round(C·w)] of its channels; GroupNorm normalises over
the active channels; attention runs whole heads of head_channels, or with a fixed head count every head
keeps the prefix of its own q, k and v. Used as the reference for the golden test and as the peer of the
CPU benchmarks. Dropout uses PyTorch's generator (ours is a counter hash): compare with dropout off.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from unet_config import UNetConfig


def _uniform_(t, bound):
    with torch.no_grad():
        t.uniform_(-bound, bound)


class SlimConv(nn.Module):
    """Stores the full (out, in, k, k) weight (conv1d: (out, in, 1), as ADM's attention) and runs a prefix."""

    def __init__(self, cin, cout, k, stride=1, conv1d=False, zero=False):
        super().__init__()
        self.k, self.stride, self.conv1d = k, stride, conv1d
        self.weight = nn.Parameter(torch.empty((cout, cin, 1) if conv1d else (cout, cin, k, k)))
        self.bias = nn.Parameter(torch.empty(cout))
        fan_in = cin * k * k
        _uniform_(self.weight, 0 if zero else 1 / math.sqrt(fan_in))
        _uniform_(self.bias, 0 if zero else 1 / math.sqrt(fan_in))

    def _w4(self):
        return self.weight.unsqueeze(-1) if self.conv1d else self.weight

    def forward(self, x, cout):
        return F.conv2d(x, self._w4()[:cout, :x.shape[1]], self.bias[:cout], self.stride, self.k // 2)

    def forward_blocks(self, x, out_blocks, out_per_block, in_blocks):
        """Rows in out_blocks equal blocks and columns in in_blocks, each block cut to its prefix."""
        w, b = self._w4(), self.bias
        cout, cin, k = w.shape[0], w.shape[1], self.k
        w = w.reshape(out_blocks, cout // out_blocks, cin, k, k)[:, :out_per_block].reshape(-1, cin, k, k)
        b = b.reshape(out_blocks, cout // out_blocks)[:, :out_per_block].reshape(-1)
        c = x.shape[1]
        w = w.reshape(w.shape[0], in_blocks, cin // in_blocks, k, k)[:, :, :c // in_blocks].reshape(w.shape[0], c, k, k)
        return F.conv2d(x, w, b, self.stride, k // 2)


class SlimLinear(nn.Module):
    def __init__(self, fin, fout):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fout, fin))
        self.bias = nn.Parameter(torch.empty(fout))
        _uniform_(self.weight, 1 / math.sqrt(fin))
        _uniform_(self.bias, 1 / math.sqrt(fin))

    def forward(self, x, fout):
        return F.linear(x, self.weight[:fout, :x.shape[1]], self.bias[:fout])


class SlimGroupNorm(nn.Module):
    """GroupNorm(groups) over the active channels, sliced affine, ADM's scale-shift and SiLU fused after."""

    def __init__(self, c, groups):
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x, silu, scale=None, shift=None):
        c = x.shape[1]
        h = F.group_norm(x, self.groups, self.weight[:c], self.bias[:c], 1e-5)
        if scale is not None:
            h = h * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        return F.silu(h) if silu else h


class ResBlock(nn.Module):
    """ADM ResBlock, with ADM's layer numbering (in_layers.2, emb_layers.1, out_layers.3, skip_connection)."""

    def __init__(self, cfg, cin, cout):
        super().__init__()
        self.cfg, self.cout = cfg, cout
        self.in_layers = nn.ModuleList([SlimGroupNorm(cin, cfg.groups), nn.SiLU(), SlimConv(cin, cout, 3)])
        emb_out = 2 * cout if cfg.scale_shift_norm else cout
        self.emb_layers = nn.ModuleList([nn.SiLU(), SlimLinear(cfg.time_embed_channels, emb_out)])
        self.out_layers = nn.ModuleList([SlimGroupNorm(cout, cfg.groups), nn.SiLU(), nn.Dropout(cfg.dropout),
                                         SlimConv(cout, cout, 3, zero=True)])
        if cin != cout:
            self.skip_connection = SlimConv(cin, cout, 1)

    def forward(self, x, emb_act, width, training):
        c = self.cfg.channels(self.cout, width)
        h = self.in_layers[2](self.in_layers[0](x, silu=True), c)
        if self.cfg.scale_shift_norm:
            # The whole 2·cout projection, then the active prefix of each half.
            e = self.emb_layers[1](emb_act, 2 * self.cout)
            h = self.out_layers[0](h, True, e[:, :c], e[:, self.cout:self.cout + c])
        else:
            h = self.out_layers[0](h + self.emb_layers[1](emb_act, c)[:, :, None, None], True)
        h = F.dropout(h, self.cfg.dropout, training)
        h = self.out_layers[3](h, c)
        skip = self.skip_connection(x, c) if hasattr(self, "skip_connection") else x
        return skip + h


def legacy_attention(qkv, heads):
    """ADM's QKVAttentionLegacy: qkv (N, 3C, T) holds per head its q, k, v rows; returns (N, C, T)."""
    n, c3, t = qkv.shape
    d = c3 // (3 * heads)
    q, k, v = qkv.reshape(n * heads, 3 * d, t).split(d, dim=1)       # each (N·heads, d, T)
    p = torch.softmax(torch.einsum("bct,bcs->bts", q, k) / math.sqrt(d), dim=-1)
    return torch.einsum("bts,bcs->bct", p, v).reshape(n, c3 // 3, t)


class AttentionBlock(nn.Module):
    """Self-attention over H·W tokens in ADM's legacy qkv layout (per head: its q, k, v rows)."""

    def __init__(self, cfg, c):
        super().__init__()
        self.cfg, self.c_max = cfg, c
        self.norm = SlimGroupNorm(c, cfg.groups)
        self.qkv = SlimConv(c, 3 * c, 1, conv1d=True)
        self.proj_out = SlimConv(c, c, 1, conv1d=True, zero=True)

    def forward(self, x, emb_act, width, training):
        n, c, hh, ww = x.shape
        fixed = self.cfg.attention_heads
        heads = fixed if fixed > 0 else c // self.cfg.head_channels
        d = c // heads
        cut = fixed > 0 and c < self.c_max
        xn = self.norm(x, silu=False)
        qkv = self.qkv.forward_blocks(xn, 3 * heads, d, 1) if cut else self.qkv(xn, 3 * c)
        a = legacy_attention(qkv.reshape(n, 3 * c, hh * ww), heads).reshape(n, c, hh, ww)
        h = self.proj_out.forward_blocks(a, 1, c, heads) if cut else self.proj_out(a, c)
        return x + h


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.op = SlimConv(c, c, 3, stride=2)

    def forward(self, x, emb_act, width, training):
        return self.op(x, x.shape[1])


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = SlimConv(c, c, 3)

    def forward(self, x, emb_act, width, training):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"), x.shape[1])


class InputConv(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.conv = SlimConv(cfg.image_channels, cfg.model_channels, 3)

    def forward(self, x, emb_act, width, training):
        return self.conv(x, self.cfg.channels(self.cfg.model_channels, width))


class LayerSequence(nn.ModuleList):
    def forward(self, x, emb_act, width, training):
        for layer in self:
            x = layer(x, emb_act, width, training)
        return x


class LabelEmbedding(nn.Module):
    """Stored (E, K+1) like a Linear weight: the transpose of nn.Embedding(K+1, E).weight, as ours."""

    def __init__(self, classes, emb):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(emb, classes + 1))

    def forward(self, labels, e):
        return self.weight[:e, labels].t()


def timestep_embedding(t, dim, max_period=10000.0):
    """ADM's [cos, sin] features, computed in float64 and rounded once, as the C# backends do."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    a = t.to(torch.float64)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(a), torch.sin(a)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb.to(torch.float32)


class SlimUNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        ch, emb = cfg.model_channels, cfg.time_embed_channels
        self.time_embed = nn.ModuleList([SlimLinear(ch, emb), nn.SiLU(), SlimLinear(emb, emb)])
        self.input_blocks = nn.ModuleList([LayerSequence([InputConv(cfg)])])
        skips, cur, res = [ch], ch, cfg.image_size
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                seq = LayerSequence([ResBlock(cfg, cur, ch * mult)])
                cur = ch * mult
                if res in cfg.attention_resolutions:
                    seq.append(AttentionBlock(cfg, cur))
                self.input_blocks.append(seq)
                skips.append(cur)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(LayerSequence([Downsample(cur)]))
                skips.append(cur)
                res //= 2
        self.middle_block = LayerSequence([ResBlock(cfg, cur, cur), AttentionBlock(cfg, cur), ResBlock(cfg, cur, cur)])
        self.output_blocks = nn.ModuleList()
        for level in reversed(range(len(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                seq = LayerSequence([ResBlock(cfg, cur + skips.pop(), ch * cfg.channel_mult[level])])
                cur = ch * cfg.channel_mult[level]
                if res in cfg.attention_resolutions:
                    seq.append(AttentionBlock(cfg, cur))
                if level > 0 and i == cfg.num_res_blocks:
                    seq.append(Upsample(cur))
                    res *= 2
                self.output_blocks.append(seq)
        self.out = nn.ModuleList([SlimGroupNorm(cur, cfg.groups), nn.SiLU(),
                                  SlimConv(cur, cfg.image_channels, 3, zero=True)])
        if cfg.num_classes > 0:
            self.label_emb = LabelEmbedding(cfg.num_classes, emb)

    def forward(self, x, t, width, labels=None, training=False):
        """ε̂ (N, C, H, W) for x_t at timesteps t (N); labels in [0, K] (K = null class), None = unconditional."""
        cfg = self.cfg
        if width not in cfg.widths:
            raise ValueError(f"width {width} is not one of {cfg.widths}")
        e = cfg.channels(cfg.time_embed_channels, width)
        emb = self.time_embed[2](F.silu(self.time_embed[0](timestep_embedding(t, cfg.model_channels), e)), e)
        if cfg.num_classes > 0:
            if labels is None:
                labels = torch.full((x.shape[0],), cfg.num_classes, dtype=torch.long)
            emb = emb + self.label_emb(labels, e)
        emb_act = F.silu(emb)
        hs, h = [], x
        for block in self.input_blocks:
            h = block(h, emb_act, width, training)
            hs.append(h)
        h = self.middle_block(h, emb_act, width, training)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb_act, width, training)
        return self.out[2](self.out[0](h, silu=True), cfg.image_channels)
