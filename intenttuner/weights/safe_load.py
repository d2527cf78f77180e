"""Read tensors from weight files without ever unpickling arbitrary objects.

``.safetensors`` files are read with safetensors; pickle-based files (``.pth``, ``.pt``,
``.bin``, ``.ckpt``) only with ``torch.load(weights_only=True)``. Every failure becomes a
`WeightsCorruptError` (or `WeightsNotFoundError`) that names the file and says what to do,
instead of a zip/pickle traceback from deep inside torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import struct
from pathlib import Path

import torch

from ..errors import WeightsCorruptError, WeightsNotFoundError
from .folders import PICKLE_FILE_EXTENSIONS, SAFE_FILE_EXTENSIONS

log = logging.getLogger(__name__)

# Training checkpoints often wrap the weights; these are the wrappers seen in the wild
# (GroundingDINO: "model", LDM/SD .ckpt: "state_dict", DeepSpeed-style: "module").
_CONTAINER_KEYS = ("state_dict", "model", "module")

# Harmless non-tensor objects that real checkpoints carry next to their weights
# (GroundingDINO's training args are an argparse.Namespace of plain values).
_SAFE_EXTRA_GLOBALS = [argparse.Namespace]


def load_state_dict(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Return the ``{name: tensor}`` mapping stored in ``path``.

    Container dicts (``{"model": {...}}``, ``{"state_dict": {...}}``) are unwrapped. Raises
    WeightsNotFoundError for a missing file and WeightsCorruptError for anything unreadable.
    """
    path = Path(path)
    _check_exists(path)
    suffix = path.suffix.lower()
    if suffix in SAFE_FILE_EXTENSIONS:
        return _load_safetensors(path, map_location)
    if suffix in PICKLE_FILE_EXTENSIONS:
        return _unwrap(_torch_load(path, map_location), path)
    raise WeightsCorruptError(
        f"{path}: unsupported weight file type '{suffix}'. Use .safetensors (preferred) or "
        f"one of {', '.join(PICKLE_FILE_EXTENSIONS)}."
    )


def tensor_names(path: str | Path) -> list[str]:
    """Names of the tensors in ``path``; cheap for safetensors (header only)."""
    path = Path(path)
    if path.suffix.lower() in SAFE_FILE_EXTENSIONS:
        return list(read_safetensors_header(path)[0])
    return list(load_state_dict(path).keys())


def read_safetensors_header(path: str | Path) -> tuple[dict, dict[str, str]]:
    """Return ``(tensor_info_by_name, metadata)`` from a safetensors header without reading
    the tensors. Raises WeightsCorruptError on a truncated or malformed header."""
    path = Path(path)
    _check_exists(path)
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                raise ValueError(f"header claims {header_len} bytes but file has {size}")
            header = json.loads(f.read(header_len))
        if not isinstance(header, dict):
            raise ValueError(f"the header is a JSON {type(header).__name__}, not an object")
        metadata = header.pop("__metadata__", None) or {}
        end = max((_end_offset(name, info) for name, info in header.items()), default=0)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise _corrupt(path, exc) from None
    if 8 + header_len + end > size:
        raise _corrupt(path, f"file is {size} bytes, tensors need {8 + header_len + end}")
    return header, metadata


def _end_offset(name: str, info: object) -> int:
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and o >= 0 for o in offsets) and offsets[0] <= offsets[1]):
        raise ValueError(f"tensor '{name}' has no valid data_offsets")
    return offsets[1]


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise WeightsNotFoundError(f"Weight file not found: {path}")
    if path.stat().st_size == 0:
        raise _corrupt(path, "the file is empty")


def _load_safetensors(path: Path, map_location: str | torch.device) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_safetensors_header(path)  # catches truncation with a precise message first
    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise _corrupt(path, exc) from None


def _torch_load(path: Path, map_location: str | torch.device) -> object:
    try:
        with torch.serialization.safe_globals(_SAFE_EXTRA_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsCorruptError(
            f"{path} contains Python objects other than tensors, so it is not opened (loading it "
            f"could run arbitrary code). Use a .safetensors version of this model instead. "
            f"Details: {str(exc).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise _corrupt(path, exc) from None


def _unwrap(obj: object, path: Path) -> dict:
    for _ in range(2):  # {"model": {"state_dict": ...}} occurs too
        if isinstance(obj, dict) and not _looks_like_tensors(obj):
            inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not _looks_like_tensors(obj):
        raise WeightsCorruptError(
            f"{path} is a readable torch file but holds no model weights (top-level "
            f"{type(obj).__name__} with keys {list(obj)[:5] if isinstance(obj, dict) else '-'})."
        )
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _looks_like_tensors(d: dict) -> bool:
    return any(isinstance(v, torch.Tensor) for v in d.values())


def _corrupt(path: Path, detail: object) -> WeightsCorruptError:
    return WeightsCorruptError(
        f"{path} could not be read: it looks truncated or corrupt ({detail}). Delete it and "
        "download it again (an interrupted download or a full disk are the usual causes)."
    )
