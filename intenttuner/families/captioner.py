"""Image captioners (transformers): Florence-2 (the default) and BLIP, for dataset captions.

A captioner is a Hugging Face model folder in ``models/captioners``; ``load`` reads its
``config.json`` and dispatches on ``model_type``:

- ``"florence2"``: Florence-2 through transformers' native ``Florence2ForConditionalGeneration``
  (transformers >= 4.56), e.g. ``models/captioners/Florence-2-base/`` from
  florence-community/Florence-2-base (the default) or -large. Microsoft's own
  ``microsoft/Florence-2-*`` folders need ``trust_remote_code`` and are refused with a message
  pointing at the florence-community conversion. See ``captioner_florence.py``.
- ``"blip"``: BLIP captioning, e.g. ``models/captioners/blip-image-captioning-large/``
  (Salesforce/blip-image-captioning-large), which also works on older transformers. See
  ``captioner_blip.py``.

Folders are opened with ``from_pretrained(folder, local_files_only=True)``: nothing is
downloaded, and transformers reads ``model.safetensors`` (or a ``.bin`` with
``weights_only=True``). Every captioner has the same interface:

    captioner = FAMILY.load(models_dir / "captioners" / "Florence-2-base")
    captioner.kind        # "florence2" | "blip"
    captioner.identity    # "florence2:Florence-2-base": names model and folder (caption caches)
    captioner.caption(images, detail="detailed", batch_size=8)  # one string per image

This module holds the family, the folder checks, the dispatch and what both share: the
settings check and the batching loop (progress, Cancel, RGB conversion).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..errors import InputError, WeightsCorruptError, WeightsNotFoundError, WrongModelFamilyError
from ..imageio import to_rgb_pil
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from ..weights.folders import MODEL_FOLDERS
from .base import Family, Package, synthetic_image

log = logging.getLogger(__name__)

# How much a caption says: Florence-2 writes one sentence, a few sentences or a paragraph
# (its <CAPTION>, <DETAILED_CAPTION>, <MORE_DETAILED_CAPTION> tasks); BLIP has one style.
DETAILS = ("short", "detailed", "more_detailed")
KINDS = {"florence2": "Florence-2", "blip": "BLIP"}  # config.json model_type -> name
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def sniff(tensor_names: Iterable[str]) -> bool:
    """True for captioning weights of a kind this family loads (Florence-2 or BLIP)."""
    names = list(tensor_names)
    return sniff_florence(names) or sniff_blip(names)


def sniff_blip(names: Sequence[str]) -> bool:
    """BLIP captioning weights: a ``vision_model`` plus a ``text_decoder`` (BLIP retrieval/VQA
    checkpoints have no decoder; BLIP-2 has a Q-Former and a language model)."""
    return (any(n.startswith("vision_model.") for n in names)
            and any(n.startswith("text_decoder.") for n in names))


def sniff_florence(names: Sequence[str]) -> bool:
    """Native (converted) Florence-2 weights: the DaViT tower, its projector and the BART
    encoder-decoder under ``model.``."""
    return all(any(n.startswith(prefix) for n in names) for prefix in (
        "model.vision_tower.", "model.multi_modal_projector.", "model.language_model.encoder."))


def load(path: str | Path, precision: str = "auto") -> Any:
    """Load the captioner folder ``path`` (a file inside it is accepted too).

    ``precision``: ``"auto"`` (fp16 on CUDA, fp32 elsewhere), ``"fp32"``, ``"fp16"``, ``"bf16"``.
    Raises WrongModelFamilyError when the folder holds another kind of model (or Microsoft's
    remote-code Florence-2), WeightsCorruptError when files are missing or truncated, and
    MissingDependencyError when transformers is too old for the model.
    """
    FAMILY.require()
    folder = _model_folder(Path(path))
    config, _ = check_folder(folder)
    if config.get("model_type") == "florence2":
        from .captioner_florence import load_florence

        return load_florence(folder, precision)
    from .captioner_blip import load_blip

    return load_blip(folder, precision)


def _model_folder(path: Path) -> Path:
    if path.is_dir():
        return path
    if path.is_file() and (path.parent / "config.json").is_file():
        return path.parent
    if path.is_file():
        raise WrongModelFamilyError(
            f"{path} is a single file, but captioners (Florence-2, BLIP) are Hugging Face "
            "model folders: put the whole folder (config.json, model.safetensors, "
            f"preprocessor and tokenizer files) in models/{FAMILY.folder}/<name>/."
        )
    raise WeightsNotFoundError(f"Captioner folder not found: {path}")


def check_folder(folder: Path) -> tuple[dict, list[str] | None]:
    """Raise unless ``folder`` holds a complete captioner of a supported kind; returns its
    config and tensor names (None when only a pickle ``.bin`` holds the weights)."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise WeightsCorruptError(
            f"{folder} has no config.json, so it is not a complete Hugging Face model folder. "
            "Download the captioner folder again."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsCorruptError(f"{config_path} is not valid JSON ({exc}).") from None
    kind = config.get("model_type")
    if kind == "florence2":
        from .captioner_florence import refuse_remote_code

        refuse_remote_code(folder, config)  # before the weights: their names differ too
    names = _tensor_names(folder)
    # model_type "blip" also covers the retrieval and VQA heads, which have no caption decoder.
    matches = {"florence2": sniff_florence, "blip": sniff_blip}.get(kind)
    if matches is None or (names is not None and not matches(names)):
        _raise_wrong_family(folder, config, names)
    missing = [name for name in ("preprocessor_config.json", "tokenizer_config.json")
               if not (folder / name).is_file()]
    if kind == "florence2" and not ((folder / "tokenizer.json").is_file() or all(
            (folder / name).is_file() for name in ("vocab.json", "merges.txt"))):
        missing.append("tokenizer.json (or vocab.json and merges.txt)")
    if kind == "blip" and not any((folder / n).is_file() for n in ("tokenizer.json", "vocab.txt")):
        missing.append("tokenizer.json or vocab.txt")
    if missing:  # transformers would fall back to defaults (an empty vocabulary!)
        raise WeightsCorruptError(
            f"{folder} is incomplete: {', '.join(missing)} missing. Download the captioner "
            "folder again."
        )
    return config, names


def _tensor_names(folder: Path) -> list[str] | None:
    """Tensor names from the weights' headers, or None when only a pickle file exists (it is
    read by transformers with weights_only=True; listing it would mean loading it twice)."""
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return list(safe_load.read_safetensors_header(single)[0])
    if index.is_file():
        try:
            return list(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
        except (ValueError, KeyError) as exc:
            raise WeightsCorruptError(f"{index} is not a valid weight index ({exc}).") from None
    if (folder / "pytorch_model.bin").is_file():
        return None
    raise WeightsCorruptError(
        f"{folder} has a config.json but no weights ({', '.join(_WEIGHT_FILES)}). The "
        "download is incomplete: download the captioner folder again."
    )


def _raise_wrong_family(folder: Path, config: dict, names: list[str] | None) -> None:
    from . import guess_family

    kind = config.get("model_type") or "unknown"
    archs = ", ".join(config.get("architectures") or []) or "no architectures listed"
    expected = f"{KINDS[kind]} image captioner" if kind in KINDS else "image captioner"
    other = guess_family(names) if names else None
    if other is not None and other.name != FAMILY.name:
        where = (f"It looks like a {other.title} model: move it to models/{other.folder} "
                 f"({MODEL_FOLDERS[other.folder].purpose}).")
    else:
        where = ("Captioners here must be Florence-2 (florence-community/Florence-2-base or "
                 "-large) or BLIP captioning (e.g. Salesforce/blip-image-captioning-large).")
    raise WrongModelFamilyError(
        f"{folder} holds a '{kind}' model ({archs}), not a {expected}. {where}"
    )


@dataclass(frozen=True)
class Settings:
    """One caption call's generation settings, checked."""

    detail: str
    max_new_tokens: int
    num_beams: int
    prompt: str | None = None  # BLIP only


class Captioner:
    """What the captioners share: settings checks and the batching loop. Subclasses set
    ``kind`` and ``max_tokens`` and implement ``_caption_batch``."""

    kind: str
    max_tokens: dict[str, int]  # detail -> default max_new_tokens

    def __init__(self, managed: ManagedModel, processor, dtype: torch.dtype, folder: Path):
        self._managed = managed
        self._processor = processor
        self.dtype = dtype
        self.folder = folder
        self.identity = f"{self.kind}:{folder.name}"

    def caption(self, images: Sequence[Image.Image], *, detail: str = "detailed",
                batch_size: int = 8, max_new_tokens: int | None = None,
                num_beams: int = 3) -> list[str]:
        """One caption per image, in order ("" where the model wrote nothing).

        ``detail`` is one of ``DETAILS``. Images of any PIL mode and size are converted to RGB
        (alpha composited on white) and resized by the model's processor; ``batch_size`` images
        go through one ``generate`` call. ``max_new_tokens`` bounds the caption length in
        tokens (None: the model's default for ``detail``), ``num_beams`` is the beam-search
        width (1: greedy); neither samples, so batching does not change the captions.
        """
        settings = self._settings(detail, batch_size, max_new_tokens, num_beams)
        return self._run(images, batch_size, settings)

    def settings_key(self, detail: str, max_new_tokens: int | None = None) -> str:
        """Which captions ``caption(detail=..., max_new_tokens=...)`` writes, as a string: the
        model, the task it runs and the length bound, with defaults resolved. Equal keys mean
        equal captions, so a caller may cache captions under it."""
        settings = self._settings(detail, 1, max_new_tokens, 3)
        return f"{self.identity}/{self.task_name(detail)}/{settings.max_new_tokens}"

    def task_name(self, detail: str) -> str:
        """What ``detail`` makes the model do (a model with one caption style ignores it)."""
        return detail

    def _settings(self, detail: str, batch_size: int, max_new_tokens: int | None,
                  num_beams: int, prompt: str | None = None) -> Settings:
        if detail not in DETAILS:
            raise InputError(f"detail '{detail}' is not one of {', '.join(DETAILS)}.")
        if max_new_tokens is None:
            max_new_tokens = self.max_tokens[detail]
        if batch_size < 1 or max_new_tokens < 1 or num_beams < 1:
            raise InputError(
                f"batch_size, max_new_tokens and num_beams must be at least 1, got "
                f"{batch_size}, {max_new_tokens}, {num_beams}."
            )
        return Settings(detail, max_new_tokens, num_beams, prompt.strip() if prompt else None)

    def _run(self, images: Iterable, batch_size: int, settings: Settings) -> list[str]:
        """Caption ``images`` ``batch_size`` at a time, with progress and Cancel between
        batches."""
        return in_batches(list(images), batch_size,
                          lambda chunk: self._caption_batch(chunk, settings))

    def _generate(self, inputs: dict[str, torch.Tensor], settings: Settings) -> torch.Tensor:
        """``model.generate`` on ``inputs`` (moved to the model's device; pixel values in
        the model's dtype): deterministic beam search (or greedy)."""
        model = self._managed.load()
        device = model.device  # transformers models expose the device they are on
        kwargs = {name: value.to(device, self.dtype) if name == "pixel_values"
                  else value.to(device) for name, value in inputs.items()}
        with torch.inference_mode():
            return model.generate(**kwargs, max_new_tokens=settings.max_new_tokens,
                                  num_beams=settings.num_beams, do_sample=False)

    def _caption_batch(self, images: list[Image.Image], settings: Settings) -> list[str]:
        raise NotImplementedError


def in_batches(images: list, batch_size: int,
               caption_batch: Callable[[list[Image.Image]], list[str]]) -> list[str]:
    """Apply ``caption_batch`` to RGB copies of ``images``, ``batch_size`` at a time: one
    progress step per image, the runtime's Cancel checked before each batch."""
    runtime = get_runtime()
    captions: list[str] = []
    with runtime.progress(total=len(images), desc="Captioning") as bar:
        for start in range(0, len(images), batch_size):
            runtime.check_interrupted()
            chunk = [to_rgb_pil(image) for image in images[start:start + batch_size]]
            captions.extend(caption_batch(chunk))
            bar.update(len(chunk))
    return captions


def exercise(captioner: Captioner) -> str:
    """Caption a synthetic image; quote the caption."""
    caption = captioner.caption([synthetic_image()], max_new_tokens=8, num_beams=1)[0]
    return f"caption {caption[:40]!r}"


FAMILY = Family(
    name="captioner",
    title="Florence-2 / BLIP image captioner",
    folder="captioners",
    packages=(Package("transformers", "transformers"),),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
