"""Quantized int8 weights kept on disk, so a start skips the per-channel quantization of every ``Linear``.

int8_dynamic's fbgemm path quantizes each weight (a min/max observer, then ``quantize_per_channel``: 0.19 s for
tiny.en, most of it its 20-MB head) and prepacks it for fbgemm. The prepacked form cannot be saved (torch unpacks it
to pickle it), but the quantized weights can: with them cached, a start reads 30 MB of int8 and only prepacks.

The key is the content of the float weights being quantized (name, shape, dtype and a CRC-32 of every weight and
bias: 30 ms for tiny.en, against the 190 ms it saves) plus the quantization settings and torch's version, so a
different checkpoint, fine-tune or scheme never reads another's entry. Entries are written once, atomically (a
temporary file renamed into place): a concurrent process sees a whole file or none.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from pathlib import Path

import torch

from asrforge.paths import cache_dir

FORMAT_VERSION = 1  # bump when what an entry holds changes


def entry_path(linears: dict[str, torch.nn.Linear], scheme: str) -> Path:
    digest = hashlib.sha256(f"v{FORMAT_VERSION} torch {torch.__version__} {scheme}".encode())
    for name, layer in linears.items():
        digest.update(f"{name} {tuple(layer.weight.shape)} {layer.weight.dtype}".encode())
        for tensor in (layer.weight, layer.bias):
            if tensor is not None:
                digest.update(zlib.crc32(_bytes(tensor)).to_bytes(4, "little"))
    return cache_dir() / "int8" / f"{digest.hexdigest()[:24]}.safetensors"


def load(path: Path) -> dict[str, torch.Tensor] | None:
    """The quantized weights of an entry by layer name, or None when there is none (or it is unreadable)."""
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    try:
        stored = load_file(str(path))
    except Exception:  # a torn or foreign file: quantize again and overwrite it
        return None
    names = {key.rsplit(".", 1)[0] for key in stored}
    return {name: _quantized(stored, name) for name in names}


def save(path: Path, weights: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    stored: dict[str, torch.Tensor] = {}
    for name, weight in weights.items():
        stored[f"{name}.int8"] = weight.int_repr().contiguous()
        if weight.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine):
            stored[f"{name}.scales"] = weight.q_per_channel_scales().contiguous()
            stored[f"{name}.zero_points"] = weight.q_per_channel_zero_points().contiguous()
            stored[f"{name}.axis"] = torch.tensor([weight.q_per_channel_axis()])
        else:
            stored[f"{name}.scale"] = torch.tensor([weight.q_scale()], dtype=torch.float64)
            stored[f"{name}.zero_point"] = torch.tensor([weight.q_zero_point()])
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        save_file(stored, tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the entry from other users of a shared cache
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _quantized(stored: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    values = stored[f"{name}.int8"]
    if f"{name}.scales" in stored:
        return torch._make_per_channel_quantized_tensor(
            values, stored[f"{name}.scales"], stored[f"{name}.zero_points"], int(stored[f"{name}.axis"])
        )
    return torch._make_per_tensor_quantized_tensor(
        values, float(stored[f"{name}.scale"]), int(stored[f"{name}.zero_point"])
    )


def _bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().contiguous().view(-1)
    return memoryview(flat.view(torch.uint8).numpy())
