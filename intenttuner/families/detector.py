"""GroundingDINO open-vocabulary detector: images and text phrases in, boxes out.

Backend: transformers' own ``GroundingDinoForObjectDetection``. It runs on transformers 4.5x and
5.x alike, whereas ``groundingdino-py`` 0.4.0 crashes on transformers 5 (``BertModel`` lost
``get_extended_attention_mask``) and needs a compiled extension for speed. The one backend
reads both formats users keep in ``models/grounding-dino``:

* a Hugging Face folder, e.g. ``models/grounding-dino/grounding-dino-tiny/`` holding the files of
  ``IDEA-Research/grounding-dino-tiny`` (``config.json``, ``model.safetensors``,
  ``preprocessor_config.json``, tokenizer files). This is the default weight.
* an original IDEA-Research checkpoint, ``groundingdino_swint_ogc.pth`` (Swin-T) or
  ``groundingdino_swinb_cogcoor.pth`` (Swin-B), as other GroundingDINO packs store it. It is read
  with ``safe_load`` (never unpickled), its tensors renamed by `gdino_convert`, its config
  inferred from the tensor shapes (bundled Swin-T config for the rest) and loaded with strict
  key checking. The ``*.cfg.py`` files next to these checkpoints are never executed (nor read:
  the shapes say everything that matters; `gdino_config` reads them). The BERT tokenizer those
  checkpoints need (``vocab.txt`` of bert-base-uncased) is looked up by
  `gdino_tokenizer.find_bert_tokenizer_dir`.

    det = FAMILY.load(models_dir / "grounding-dino" / "grounding-dino-tiny")
    found = det.detect([image], ["black leather jacket", "necklace"])
    boxes = [(d.box, d.score, d.phrase_index) for d in found[0]]  # XYXY, original pixels

This module is the family's entry (`FAMILY`) and its loader; the loaded model is
`detector_model.GroundingDinoDetector`, whose caption and phrase maths live in
`detector_phrases`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError, WeightsCorruptError, WeightsNotFoundError, WrongModelFamilyError
from ..runtime import get_runtime
from ..weights import safe_load
from . import gdino_convert
from .base import Family, Package, check_family, resolve_dtype
from .detector_model import GroundingDinoDetector
from .gdino_config import box_heads_shared, infer_config
from .gdino_tokenizer import (
    BERT_VOCAB_FILE,
    bert_tokenizer,
    check_tokenizer,
    find_bert_tokenizer_dir,
)

log = logging.getLogger(__name__)

BUNDLED_CONFIG = (Path(__file__).resolve().parents[2] / "models" / "configs" / "grounding-dino"
                  / "groundingdino_swint_ogc.json")
HF_MODEL_TYPE = "grounding-dino"
HF_SOURCE = "https://huggingface.co/IDEA-Research/grounding-dino-tiny"


def load(path: str | Path, *, precision: str = "auto",
         tokenizer_dir: str | Path | None = None,
         image_size: int | None = None) -> GroundingDinoDetector:
    """Load a GroundingDINO detector from ``path``.

    ``path``: a Hugging Face model folder (``config.json`` + ``model.safetensors`` + processor
    files) or a single checkpoint file in the original IDEA-Research layout (``.pth``, or a
    ``.safetensors`` with the same tensors). ``precision``: ``"auto"`` (fp16 on CUDA, else fp32),
    ``"fp32"``, ``"fp16"`` or ``"bf16"``. ``tokenizer_dir``: folder with bert-base-uncased's
    ``vocab.txt`` for original checkpoints (found automatically when None). ``image_size``:
    the shorter image side the model sees, in pixels (None: the folder's
    ``preprocessor_config.json``, or 800 for original checkpoints, as GroundingDINO was
    trained); the longer side is capped at 1333/800 of it. Smaller is faster and finds fewer
    small objects.
    """
    FAMILY.require()
    path = Path(path)
    size = _image_size(image_size)
    if path.is_dir():
        model, image_processor, tokenizer = _load_hf_folder(path, size)
        kind = "hf"
    elif path.is_file():
        model, image_processor, tokenizer = _load_original(path, tokenizer_dir, size)
        kind = "original"
    else:
        raise WeightsNotFoundError(
            f"GroundingDINO weights not found: {path}. Put a Hugging Face folder (e.g. "
            f"grounding-dino-tiny from {HF_SOURCE}) or groundingdino_swint_ogc.pth into "
            "models/grounding-dino."
        )
    check_tokenizer(tokenizer, model, path)
    dtype = resolve_dtype(precision, get_runtime().torch_device())
    model = model.to(dtype=dtype).eval()
    log.info("loaded GroundingDINO (%s format) from %s as %s", kind, path, dtype)
    return GroundingDinoDetector(model, image_processor, tokenizer, source=path, kind=kind)


def _image_size(shortest: int | None) -> dict[str, int] | None:
    """Image processor ``size`` for a shorter side of ``shortest`` pixels (None: unchanged)."""
    if shortest is None:
        return None
    if not 32 <= shortest <= 2048:
        raise InputError(f"image_size must be between 32 and 2048 pixels, got {shortest}.")
    return {"shortest_edge": int(shortest), "longest_edge": round(shortest * 1333 / 800)}


def _load_hf_folder(folder: Path, size: dict[str, int] | None) -> tuple[Any, Any, Any]:
    from transformers import AutoImageProcessor, AutoTokenizer, GroundingDinoForObjectDetection

    config_path = folder / "config.json"
    if not config_path.is_file():
        raise WeightsNotFoundError(
            f"{folder} has no config.json, so it is not a Hugging Face model folder. Download "
            f"all files of {HF_SOURCE} into it, or put an original groundingdino_*.pth file "
            "directly into models/grounding-dino."
        )
    _check_hf_config(folder, config_path)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise WeightsNotFoundError(
            f"{folder} has no model.safetensors. Download it from {HF_SOURCE} into that folder."
        )
    safe_load.read_safetensors_header(weights)  # truncation -> WeightsCorruptError, by name
    # Without these transformers 5 quietly builds an empty tokenizer from config.json alone.
    needed = {"preprocessor_config.json": ("preprocessor_config.json",),
              "tokenizer.json or vocab.txt": ("tokenizer.json", "vocab.txt")}
    absent = [label for label, names in needed.items()
              if not any((folder / n).is_file() for n in names)]
    if absent:
        raise WeightsNotFoundError(
            f"{folder} lacks {' and '.join(absent)}. Download the processor and tokenizer "
            f"files of {HF_SOURCE} into that folder."
        )
    try:  # separately: AutoProcessor needs a processor_class entry not every folder has
        overrides = {"size": size} if size else {}
        image_processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True,
                                                             **overrides)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise WeightsNotFoundError(
            f"{folder}: the processor/tokenizer files are missing or unreadable "
            f"(preprocessor_config.json, tokenizer.json or vocab.txt, tokenizer_config.json). "
            f"Download them from {HF_SOURCE}. Details: {str(exc).splitlines()[0]}"
        ) from None
    try:
        model = GroundingDinoForObjectDetection.from_pretrained(folder, local_files_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise WeightsCorruptError(
            f"{folder}: transformers could not load the GroundingDINO weights "
            f"({str(exc).splitlines()[0]}). Download the folder again from {HF_SOURCE}."
        ) from None
    return model, image_processor, tokenizer


def _check_hf_config(folder: Path, config_path: Path) -> None:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsCorruptError(f"{config_path} is not valid JSON ({exc}).") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type == HF_MODEL_TYPE:
        return
    weights = folder / "model.safetensors"
    if weights.is_file():  # the tensor names may tell which family it belongs to
        check_family(FAMILY, folder, safe_load.tensor_names(weights))
    raise WrongModelFamilyError(
        f"{folder} is a '{model_type}' model folder (config.json model_type), not GroundingDINO "
        f"('{HF_MODEL_TYPE}'). Move it out of models/grounding-dino and use e.g. "
        f"grounding-dino-tiny from {HF_SOURCE}."
    )


def _load_original(path: Path, tokenizer_dir: str | Path | None,
                   size: dict[str, int] | None) -> tuple[Any, Any, Any]:
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
    )

    state_dict = gdino_convert.strip_module_prefix(safe_load.load_state_dict(path))
    check_family(FAMILY, path, state_dict)
    if not gdino_convert.is_original_layout(state_dict):  # a bare hub-format file
        state_dict = _hub_file_to_original(path, state_dict)
    config = GroundingDinoConfig(**_original_config(path, state_dict))
    converted = gdino_convert.original_to_hub(state_dict)
    if converted.unknown:
        raise WrongModelFamilyError(
            f"{path} has {len(converted.unknown)} tensors no GroundingDINO Swin-T/Swin-B "
            f"checkpoint has (e.g. {', '.join(converted.unknown[:3])}); it is a variant this "
            "pack does not support. Use groundingdino_swint_ogc.pth or grounding-dino-tiny."
        )
    del state_dict
    vocab = find_bert_tokenizer_dir(tokenizer_dir, needed_by=path) / BERT_VOCAB_FILE
    tokenizer = bert_tokenizer(vocab)
    try:
        model, info = GroundingDinoForObjectDetection.from_pretrained(
            None, config=config, state_dict=converted.state_dict, output_loading_info=True)
    except (RuntimeError, ValueError) as exc:
        raise WeightsCorruptError(
            f"{path}: the converted weights do not fit the GroundingDINO model "
            f"({str(exc).splitlines()[0]})."
        ) from None
    _check_loading_info(path, model, info)
    # The original preprocessing: shorter side 800, longer at most 1333, ImageNet mean/std.
    image_processor = GroundingDinoImageProcessor(**({"size": size} if size else {}))
    return model, image_processor, tokenizer


def _hub_file_to_original(path: Path, state_dict: dict) -> dict:
    try:
        return gdino_convert.hub_to_original(state_dict)
    except ValueError as exc:
        raise WrongModelFamilyError(
            f"{path} has Hugging Face GroundingDINO tensor names that this pack cannot map "
            f"({exc}). Use the whole model folder (grounding-dino-tiny from {HF_SOURCE})."
        ) from None


def _original_config(path: Path, state_dict: dict) -> dict:
    defaults = json.loads(BUNDLED_CONFIG.read_text(encoding="utf-8"))
    shapes = {name: tuple(t.shape) for name, t in state_dict.items()}
    try:
        return infer_config(
            shapes, defaults, decoder_bbox_embed_share=box_heads_shared(state_dict))
    except KeyError as exc:
        raise WrongModelFamilyError(
            f"{path} lacks the GroundingDINO tensor {exc}; the file is incomplete or a variant "
            "this pack does not support."
        ) from None
    except ValueError as exc:
        raise WrongModelFamilyError(f"{path}: {exc}.") from None


def _check_loading_info(path: Path, model: Any, info: dict) -> None:
    """Strict key check: transformers only warns, we refuse half-loaded models."""

    def relevant(keys: Iterable[str], ignore: Iterable[str] | None) -> list[str]:
        patterns = [re.compile(p) for p in (ignore or ())]
        return sorted(k for k in keys if not any(p.search(k) for p in patterns)
                      and not gdino_convert.HUB_OPTIONAL.match(k))

    missing = relevant(info.get("missing_keys", ()), model._keys_to_ignore_on_load_missing)
    unexpected = relevant(info.get("unexpected_keys", ()),
                          model._keys_to_ignore_on_load_unexpected)
    mismatched = sorted(str(k) for k in info.get("mismatched_keys", ()))
    if missing or unexpected or mismatched:
        raise WeightsCorruptError(
            f"{path} does not match the GroundingDINO architecture inferred from it: "
            f"{len(missing)} missing tensors {missing[:3]}, {len(unexpected)} unexpected "
            f"{unexpected[:3]}, {len(mismatched)} of the wrong shape {mismatched[:3]}."
        )


def sniff(tensor_names: Iterable[str]) -> bool:
    """True for GroundingDINO checkpoints in the original layout (``backbone.0.``,
    ``transformer.``, ``bert.``) or in Hugging Face's (``model.backbone.conv_encoder.``,
    ``model.text_backbone.``)."""
    names = list(tensor_names)
    return gdino_convert.is_original_layout(names) or gdino_convert.is_hub_layout(names)


def exercise(detector: GroundingDinoDetector) -> str:
    """Detect two phrases on a synthetic 96x64 RGBA image (thresholds 0); describe the result."""
    array = np.zeros((64, 96, 4), dtype=np.uint8)
    array[16:48, 24:72] = (220, 30, 30, 255)
    found = detector.detect([Image.fromarray(array, "RGBA")], ["red square", "background"],
                            box_threshold=0.0, text_threshold=0.0)[0]
    best = f", best score {found[0].score:.2f}" if found else ""
    return f"{len(found)} boxes for 2 phrases on a 96x64 image ({detector.kind}{best})"


FAMILY = Family(
    name="detector",
    title="GroundingDINO detector",
    folder="grounding-dino",
    packages=(Package("transformers", "transformers"),),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
