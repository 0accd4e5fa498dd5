"""Minimal safetensors reader/writer (u64 header length, JSON header, data), enough for our checkpoints and
fixtures without the safetensors package: F32, F64, I64 and I32 tensors plus string metadata."""
import json
import struct

import numpy as np
import torch

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def write(path, tensors, metadata=None):
    """tensors: name -> torch tensor or numpy array (written in the given order)."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        a = np.array(a, order="C", copy=True)  # ascontiguousarray would make a 0-d tensor 1-d
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def read(path):
    """(name -> torch tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], dtype=np.dtype(_DTYPES[h["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(a.reshape(h["shape"]).copy())
    return out, meta


def load_model(path, model_cls):
    """A SlimUNet built from a checkpoint's config metadata, with its EMA weights when present."""
    from unet_config import UNetConfig
    tensors, meta = read(path)
    model = model_cls(UNetConfig.from_json(meta["config"]))
    names = dict(model.named_parameters())
    prefix = "ema." if all("ema." + n in tensors for n in names) else ""
    model.load_state_dict({n: tensors[prefix + n] for n in names})
    return model
