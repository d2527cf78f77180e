"""What every model family declares: one `Family` entry per kind of model.

Adding a model family means writing its module (loader, ``sniff``, ``exercise``), adding one
`Family` to ``FAMILIES`` in ``families/__init__.py`` and its tiny random model builder to
``intenttuner.tiny.TINY_BUILDERS``; nothing else branches on family names.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import MissingDependencyError


@dataclass(frozen=True)
class Package:
    """An optional Python package a family needs."""

    module: str  # import name, e.g. "segment_anything"
    pip: str  # what to pip install, e.g. "segment-anything"


@dataclass(frozen=True)
class Family:
    name: str  # registry key, e.g. "segmenter"
    title: str  # human name used in messages, e.g. "Segment Anything (SAM)"
    folder: str  # MODEL_FOLDERS key its weights live in
    packages: tuple[Package, ...]  # optional packages it needs beyond torch
    # load(path, **options) -> model wrapper. ``path`` is a file or a model directory.
    load: Callable[..., Any]
    # sniff(tensor_names) -> True if a checkpoint with these tensor names belongs to the family.
    sniff: Callable[[Iterable[str]], bool]
    # exercise(model) -> str: run a loaded model once on a synthetic input and describe the
    # output ("3 masks 64x48"); the smoke check and the ComfyUI integration test call it.
    exercise: Callable[[Any], str] | None = None
    extra_folders: tuple[str, ...] = ()  # other MODEL_FOLDERS keys its models may live in

    def missing_packages(self) -> list[Package]:
        return missing_packages(self.packages)

    def require(self) -> None:
        require_packages(self.packages, self.title)


def missing_packages(packages: Iterable[Package]) -> list[Package]:
    """Those of ``packages`` that are not installed (checked without importing them)."""
    return [p for p in packages if importlib.util.find_spec(p.module) is None]


def require_packages(packages: Iterable[Package], feature: str) -> None:
    """Raise MissingDependencyError (with the pip command) for the first missing package."""
    missing = missing_packages(packages)
    if missing:
        raise MissingDependencyError(missing[0].module, feature, missing[0].pip)


def check_family(family: Family, path: Path, tensor_names: Iterable[str]) -> None:
    """Raise WrongModelFamilyError unless ``tensor_names`` look like a ``family`` checkpoint.

    The message names the family the file does look like, so a SAM file dropped into
    ``models/grounding-dino`` is reported as such, with the folder it belongs in.
    """
    from ..errors import WrongModelFamilyError
    from ..weights.folders import MODEL_FOLDERS
    from . import guess_family  # the registry imports this module, so import late

    names = list(tensor_names)
    if family.sniff(names):
        return
    other = guess_family(names)
    if other is not None and other.name != family.name:
        hint = (f"It looks like a {other.title} model: move it to models/{other.folder} "
                f"({MODEL_FOLDERS[other.folder].purpose}).")
    else:
        sample = ", ".join(names[:3]) or "no tensors"
        hint = f"Its tensor names ({sample}, ...) match no model family this pack knows."
    raise WrongModelFamilyError(f"{path} is not a {family.title} checkpoint. {hint}")


def hf_model_folder(path: Path, family_name: str, what: str, layout: str) -> Path:
    """The Hugging Face model folder ``path`` names: the folder, or the folder of a file that
    sits beside its config.json. A lone weight file is refused: as another family's model when
    its tensor names say so (with the folder it belongs in), else with ``layout`` (how folders
    of this family look). ``what`` names the family in messages ("local LLM")."""
    from ..errors import WeightsNotFoundError, WrongModelFamilyError
    from ..weights import safe_load
    from ..weights.folders import MODEL_FOLDERS
    from . import guess_family  # the registry imports this module, so import late

    if path.is_dir():
        return path
    if path.is_file() and (path.parent / "config.json").is_file():
        return path.parent
    if not path.is_file():
        raise WeightsNotFoundError(f"{what[:1].upper()}{what[1:]} folder not found: {path}")
    other = guess_family(safe_load.tensor_names(path))
    if other is not None and other.name != family_name:
        where = (f"It looks like a {other.title} model: move it to models/{other.folder} "
                 f"({MODEL_FOLDERS[other.folder].purpose}).")
    else:
        where = layout
    raise WrongModelFamilyError(f"{path} is a single file, not a {what} folder. {where}")


def read_json_object(path: Path, fix: str) -> dict:
    """The JSON object in ``path``, a file of a Hugging Face model folder; a missing,
    unreadable or non-object file -> WeightsCorruptError ending with ``fix`` (what to do)."""
    from ..errors import WeightsCorruptError

    if not path.is_file():
        raise WeightsCorruptError(f"{path.parent} has no {path.name}, so it is not a complete "
                                  f"Hugging Face model folder. {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsCorruptError(f"{path} is not valid JSON ({exc}). {fix}") from None
    if not isinstance(data, dict):
        raise WeightsCorruptError(f"{path} holds a JSON {type(data).__name__}, not an object. "
                                  f"{fix}")
    return data


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``"auto"`` → fp16 on CUDA, fp32 elsewhere; or an explicit ``"fp32"``/``"fp16"``/``"bf16"``."""
    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in table:
        from ..errors import InputError

        raise InputError(f"precision '{precision}' is not one of auto, {', '.join(table)}.")
    return table[precision]


def synthetic_image(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A deterministic RGB image with some structure (gradient + noise): the input the
    families' ``exercise`` functions run models on."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    noise = rng.integers(0, 64, (height, width, 3)).astype(np.float32)
    pixels = np.clip(ramp * np.array([1.0, 0.6, 0.3]) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB")
