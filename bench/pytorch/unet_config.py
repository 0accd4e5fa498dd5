"""The UNet hyper-parameters of src/Ddsm/Model/UNetConfig.cs, read from and written to the same JSON
(our checkpoints carry it as the metadata "config"), with the same presets."""
import json
from dataclasses import dataclass, field, asdict

# JSON keys of the C# record (PascalCase) for each field here.
_KEYS = {
    "name": "Name", "image_channels": "ImageChannels", "image_size": "ImageSize",
    "model_channels": "ModelChannels", "channel_mult": "ChannelMult", "num_res_blocks": "NumResBlocks",
    "attention_resolutions": "AttentionResolutions", "head_channels": "HeadChannels",
    "attention_heads": "AttentionHeads", "dropout": "Dropout", "scale_shift_norm": "ScaleShiftNorm",
    "groups": "Groups", "num_classes": "NumClasses", "widths": "Widths",
}


@dataclass
class UNetConfig:
    name: str = "custom"
    image_channels: int = 1
    image_size: int = 32
    model_channels: int = 64
    channel_mult: list = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 2
    attention_resolutions: list = field(default_factory=lambda: [16])  # in pixels
    head_channels: int = 32
    attention_heads: int = 0       # > 0: a fixed number of heads that shrink with the width
    dropout: float = 0.1
    scale_shift_norm: bool = True
    groups: int = 16
    num_classes: int = 0           # > 0: class-conditional, with a null class for guidance
    widths: list = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])

    @property
    def time_embed_channels(self):
        return 4 * self.model_channels

    def channels(self, c_max, width):
        # C#'s Math.Round and Python's round both round half to even.
        return int(round(c_max * width))

    def to_json(self):
        return json.dumps({_KEYS[k]: v for k, v in asdict(self).items()})

    @staticmethod
    def from_json(text):
        d = json.loads(text)
        known = {v: k for k, v in _KEYS.items()}
        return UNetConfig(**{known[k]: v for k, v in d.items() if k in known})

    def replace(self, **kw):
        return UNetConfig(**{**asdict(self), **kw})


def _quarters():
    return [0.25, 0.5, 0.75, 1.0]


def _eighths():
    return [k / 8 for k in range(2, 9)]


PRESETS = {
    "fmnist32": UNetConfig(name="fmnist32", image_channels=1, image_size=32, model_channels=64, channel_mult=[1, 2, 2],
                           num_res_blocks=2, attention_resolutions=[16], head_channels=32, dropout=0.1,
                           widths=[2 / 8, 4 / 8, 6 / 8, 8 / 8]),
    "cifar10": UNetConfig(name="cifar10", image_channels=3, image_size=32, model_channels=128,
                          channel_mult=[1, 2, 2, 2], num_res_blocks=2, attention_resolutions=[16], head_channels=32,
                          dropout=0.1, scale_shift_norm=False, widths=_eighths()),
    "celeba64": UNetConfig(name="celeba64", image_channels=3, image_size=64, model_channels=128,
                           channel_mult=[1, 2, 2, 2], num_res_blocks=3, attention_resolutions=[16, 8], head_channels=32,
                           dropout=0.1, widths=_eighths()),
    "tiny": UNetConfig(name="tiny", image_channels=1, image_size=8, model_channels=32, channel_mult=[1, 2],
                       num_res_blocks=1, attention_resolutions=[4], head_channels=16, dropout=0.0, widths=[0.5, 1.0]),
}
PRESETS["cifar10-ddsm"] = PRESETS["cifar10"].replace(name="cifar10-ddsm", groups=32, attention_heads=1,
                                                     widths=_quarters())
