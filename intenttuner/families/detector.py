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
  the shapes say everything that matters). The BERT tokenizer those checkpoints need
  (``vocab.txt`` of bert-base-uncased) is looked up by `find_bert_tokenizer_dir`.

    det = FAMILY.load(models_dir / "grounding-dino" / "grounding-dino-tiny")
    found = det.detect([image], ["black leather jacket", "necklace"])
    boxes = [(d.box, d.score, d.phrase_index) for d in found[0]]  # XYXY, original pixels

All phrases of a call go through the model in one pass per image: they are joined into one
caption ``"black leather jacket . necklace ."`` (lower case), as GroundingDINO was trained, and
each output box is given to the phrase whose tokens it matches best.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, WeightsCorruptError, WeightsNotFoundError, WrongModelFamilyError
from ..imageio import to_rgb_pil
from ..runtime import get_runtime
from ..weights import safe_load
from . import gdino_convert
from .base import Family, Package, check_family, resolve_dtype

log = logging.getLogger(__name__)

BUNDLED_CONFIG = (Path(__file__).resolve().parents[2] / "models" / "configs" / "grounding-dino"
                  / "groundingdino_swint_ogc.json")
HF_MODEL_TYPE = "grounding-dino"
HF_SOURCE = "https://huggingface.co/IDEA-Research/grounding-dino-tiny"

# The BERT vocabulary original-format checkpoints need (the lead's downloader fetches it).
BERT_TOKENIZER_FOLDER = "bert-base-uncased"  # MODEL_FOLDERS key and sub-folder name
BERT_VOCAB_FILE = "vocab.txt"
BERT_VOCAB_SOURCE = "https://huggingface.co/google-bert/bert-base-uncased"
BERT_VOCAB_SIZE = 231_508
BERT_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
BERT_HF_REPOS = ("google-bert/bert-base-uncased", "bert-base-uncased")

# transformers' GroundingDino finds phrase boundaries by these bert-base-uncased token ids
# (SPECIAL_TOKENS in modeling_grounding_dino.py), so any tokenizer we pair it with must agree.
REQUIRED_TOKEN_IDS = {"[CLS]": 101, "[SEP]": 102, ".": 1012, "?": 1029}


@dataclass(frozen=True)
class RawDetection:
    """One detected box, before any filtering by the detection stage."""

    box: tuple[float, float, float, float]  # XYXY, pixels of the ORIGINAL image
    score: float  # box confidence in [0, 1]: the highest token probability of the box
    phrase_index: int  # index into the phrases passed to detect()


# --- pure helpers (unit-tested without a model) ----------------------------------------------


def normalise_phrase(phrase: str) -> str:
    """Lower-case ``phrase`` and remove ``.``/``?``, which GroundingDINO reads as phrase ends."""
    cleaned = phrase.lower().replace(".", " ").replace("?", " ")
    return " ".join(cleaned.split())


def build_caption(phrases: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join normalised ``phrases`` as ``"a . b . c ."``; return it and each phrase's
    ``(start, end)`` character span in it."""
    caption, spans = "", []
    for phrase in phrases:
        start = len(caption)
        caption += phrase
        spans.append((start, len(caption)))
        caption += " . "
    return caption.rstrip(), spans


def phrase_token_spans(offsets: Sequence[tuple[int, int]],
                       char_spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token index span ``(first, last + 1)`` of each phrase in a tokenized caption.

    ``offsets`` are the tokenizer's ``(start, end)`` character offsets per token (``(0, 0)`` for
    special tokens); a token belongs to the phrase whose character span contains it. A phrase
    without tokens gets ``(0, 0)`` and so can never be assigned a box.
    """
    spans = []
    for lo, hi in char_spans:
        inside = [t for t, (s, e) in enumerate(offsets) if e > s and s >= lo and e <= hi]
        spans.append((inside[0], inside[-1] + 1) if inside else (0, 0))
    return spans


def assign_phrases(probs: torch.Tensor, token_spans: Sequence[tuple[int, int]],
                   box_threshold: float, text_threshold: float,
                   ) -> list[tuple[int, int, float]]:
    """Pick the boxes to keep and the phrase of each; return ``(query, phrase, score)`` rows.

    ``probs`` is ``(queries, tokens)``: sigmoid token probabilities over the caption's real
    tokens (special tokens included, as in the original GroundingDINO). A query is kept if its
    highest token probability (its ``score``) exceeds ``box_threshold``; it goes to the phrase
    whose span holds the highest probability, and only if that probability exceeds
    ``text_threshold``. Rows are ordered by query index.
    """
    if probs.numel() == 0 or not token_spans:
        return []
    scores = probs.max(dim=-1).values
    per_phrase = torch.stack(
        [probs[:, s:e].max(dim=-1).values if e > s else torch.zeros_like(scores)
         for s, e in token_spans], dim=-1)
    phrase_prob, phrase = per_phrase.max(dim=-1)
    keep = (scores > box_threshold) & (phrase_prob > text_threshold)
    return [(int(q), int(phrase[q]), float(scores[q])) for q in torch.nonzero(keep).flatten()]


def boxes_to_pixels(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Map ``(N, 4)`` normalised ``(cx, cy, w, h)`` boxes (relative to the unpadded image, as
    GroundingDINO predicts them) to XYXY pixels of a ``width`` x ``height`` image, clipped to it."""
    cx, cy, w, h = boxes.float().unbind(-1)
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
    scale = torch.tensor([width, height, width, height], dtype=xyxy.dtype, device=xyxy.device)
    return torch.minimum((xyxy * scale).clamp(min=0), scale)


# --- the wrapper ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Caption:
    """One caption and what it covers: ``phrase_indices[k]`` owns ``token_spans[k]``."""

    text: str
    phrase_indices: tuple[int, ...]
    token_spans: tuple[tuple[int, int], ...]
    input_ids: torch.Tensor  # (1, tokens)


class GroundingDinoDetector:
    """A loaded GroundingDINO: `detect` boxes of text phrases in batches of PIL images.

    Load once (``FAMILY.load``), call `detect` many times. The module is held by the runtime's
    `ManagedModel`, so the host decides where it lives between calls.
    """

    def __init__(self, model: Any, image_processor: Any, tokenizer: Any, *,
                 source: Path, kind: str):
        self.source = Path(source)
        self.kind = kind  # "hf" (Hugging Face folder) or "original" (IDEA-Research .pth)
        self._managed = get_runtime().manage(model.eval())
        self._image_processor = image_processor
        self._tokenizer = tokenizer
        self.max_text_len = int(model.config.max_text_len)  # caption tokens per pass
        self.dtype = next(model.parameters()).dtype  # inputs are cast to it

    def __repr__(self) -> str:
        return f"GroundingDinoDetector({self.kind}: {self.source.name}, {self.dtype})"

    def detect(self, images: Sequence[Image.Image], phrases: Sequence[str], *,
               box_threshold: float = 0.35, text_threshold: float = 0.25,
               batch_size: int = 4) -> list[list[RawDetection]]:
        """Detect every phrase in every image; one list of detections per image.

        ``images``: PIL images of any size and mode (RGBA, L, I;16, ... are converted to RGB;
        numpy HxWxC arrays work too). ``phrases``: what to look for, e.g. ``["hair", "black
        leather jacket"]``. A box is kept when its highest token probability exceeds
        ``box_threshold`` and its best phrase's probability exceeds ``text_threshold`` (both in
        [0, 1]). Detections are sorted by score, highest first; boxes are XYXY pixels of the
        original image, clipped to it. ``batch_size`` images go through the model together.
        """
        phrases = self._check_inputs(images, phrases, box_threshold, text_threshold, batch_size)
        if not images:
            return []
        captions = self._captions(phrases)
        runtime = get_runtime()
        model = self._managed.load()
        results: list[list[RawDetection]] = []
        with runtime.progress(total=len(images), desc="Detecting") as bar:
            for start in range(0, len(images), batch_size):
                runtime.check_interrupted()
                batch = [to_rgb_pil(image) for image in images[start:start + batch_size]]
                results += self._detect_batch(model, batch, captions, box_threshold,
                                              text_threshold)
                bar.update(len(batch))
        return results

    def _check_inputs(self, images: Sequence, phrases: Sequence[str], box_threshold: float,
                      text_threshold: float, batch_size: int) -> list[str]:
        if isinstance(phrases, str):
            raise InputError(f"phrases must be a list of strings, got the string {phrases!r}.")
        if not phrases:
            raise InputError("detect() needs at least one phrase to look for.")
        cleaned = []
        for i, phrase in enumerate(phrases):
            text = normalise_phrase(phrase) if isinstance(phrase, str) else ""
            if not text:
                raise InputError(f"Phrase {i} ({phrase!r}) is empty; give each concept a few "
                                 "words, e.g. 'black leather jacket'.")
            cleaned.append(text)
        for name, value in (("box_threshold", box_threshold), ("text_threshold", text_threshold)):
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be between 0 and 1, got {value}.")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}.")
        if isinstance(images, Image.Image):
            raise InputError("images must be a list of images; wrap a single image in [image].")
        return cleaned

    def _captions(self, phrases: list[str]) -> list[_Caption]:
        """Tokenized captions covering all ``phrases``; more than one only when they do not
        fit in the model's text length (256 tokens for the released models)."""
        groups, current, used = [], [], 2  # [CLS] and [SEP]
        for index, phrase in enumerate(phrases):
            cost = len(self._tokenizer(phrase, add_special_tokens=False)["input_ids"]) + 1
            if cost + 2 > self.max_text_len:
                raise InputError(f"Phrase {index} is too long ({cost - 1} tokens; at most "
                                 f"{self.max_text_len - 3}). Describe the concept in fewer words.")
            if current and used + cost > self.max_text_len:
                groups.append(current)
                current, used = [], 2
            current.append(index)
            used += cost
        groups.append(current)
        if len(groups) > 1:
            log.info("%d phrases do not fit one caption; running %d passes per image",
                     len(phrases), len(groups))
        return [self._encode_caption([phrases[i] for i in g], tuple(g)) for g in groups]

    def _encode_caption(self, phrases: list[str], indices: tuple[int, ...]) -> _Caption:
        text, char_spans = build_caption(phrases)
        encoded = self._tokenizer(text, return_offsets_mapping=True)
        spans = phrase_token_spans([tuple(o) for o in encoded["offset_mapping"]], char_spans)
        ids = torch.tensor([encoded["input_ids"]], dtype=torch.long)
        return _Caption(text, indices, tuple(spans), ids)

    def _detect_batch(self, model: Any, images: list[Image.Image], captions: list[_Caption],
                      box_threshold: float, text_threshold: float) -> list[list[RawDetection]]:
        device, dtype = self._managed.device, self.dtype
        pixels = self._image_processor(images=images, return_tensors="pt")
        pixel_values = pixels["pixel_values"].to(device=device, dtype=dtype)
        pixel_mask = pixels["pixel_mask"].to(device)
        found: list[list[RawDetection]] = [[] for _ in images]
        for caption in captions:
            ids = caption.input_ids.to(device).expand(len(images), -1)
            with torch.inference_mode():
                out = model(pixel_values=pixel_values, pixel_mask=pixel_mask, input_ids=ids,
                            attention_mask=torch.ones_like(ids),
                            token_type_ids=torch.zeros_like(ids))
            tokens = ids.shape[1]
            probs = out.logits[..., :tokens].float().sigmoid().cpu()
            boxes = out.pred_boxes.float().cpu()
            for i, image in enumerate(images):
                rows = assign_phrases(probs[i], caption.token_spans, box_threshold,
                                      text_threshold)
                if not rows:
                    continue
                pixel_boxes = boxes_to_pixels(boxes[i, [q for q, _, _ in rows]], *image.size)
                found[i] += [
                    RawDetection(tuple(float(v) for v in box), score,
                                 caption.phrase_indices[phrase])
                    for box, (_, phrase, score) in zip(pixel_boxes.tolist(), rows, strict=True)
                ]
        return [sorted(f, key=lambda d: -d.score) for f in found]


# --- loading ----------------------------------------------------------------------------------


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
    _check_tokenizer(tokenizer, model, path)
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
        return gdino_convert.infer_config(
            shapes, defaults, decoder_bbox_embed_share=gdino_convert.box_heads_shared(state_dict))
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


def _check_tokenizer(tokenizer: Any, model: Any, source: Path) -> None:
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in REQUIRED_TOKEN_IDS}
    vocab_size = model.config.text_config.vocab_size
    if ids != REQUIRED_TOKEN_IDS or len(tokenizer) > vocab_size:
        raise WeightsCorruptError(
            f"The tokenizer used with {source} is not bert-base-uncased's: GroundingDINO needs "
            f"[CLS]=101, [SEP]=102, '.'=1012, '?'=1029 and at most {vocab_size} tokens, this one "
            f"has {ids} and {len(tokenizer)} tokens. Use vocab.txt from {BERT_VOCAB_SOURCE}."
        )


def bert_tokenizer(vocab_file: Path) -> Any:
    """A lower-casing BERT WordPiece tokenizer (fast, so it reports character offsets) built
    from ``vocab_file`` alone."""
    from transformers import BertTokenizerFast

    # Positional on purpose: the keyword is ``vocab_file`` in transformers 4 and ``vocab`` in 5
    # (where an unknown keyword is silently ignored, giving an empty vocabulary).
    return BertTokenizerFast(str(vocab_file), do_lower_case=True)


def bert_tokenizer_candidates(checkpoint: Path | None = None) -> list[Path]:
    """Folders searched, in order, for bert-base-uncased's ``vocab.txt``.

    ``bert-base-uncased/`` next to ``checkpoint`` (if given), ``<models>/bert-base-uncased``
    (where the GroundingDINO+SAM packs keep it), ``<models>/grounding-dino/bert-base-uncased``,
    then the Hugging Face cache snapshots of google-bert/bert-base-uncased and
    bert-base-uncased.
    """
    from ..weights.locate import hf_snapshot_dirs

    runtime = get_runtime()
    folders = [checkpoint.parent / BERT_TOKENIZER_FOLDER] if checkpoint is not None else []
    folders += runtime.model_dirs(BERT_TOKENIZER_FOLDER)
    folders += [d / BERT_TOKENIZER_FOLDER for d in runtime.model_dirs(FAMILY.folder)]
    for repo in BERT_HF_REPOS:
        folders += hf_snapshot_dirs(repo)
    return list(dict.fromkeys(folders))  # drop repeats, keep the order


def find_bert_tokenizer_dir(tokenizer_dir: str | Path | None = None, *,
                            needed_by: Path | None = None) -> Path:
    """The folder holding bert-base-uncased's ``vocab.txt`` for original GroundingDINO files.

    ``tokenizer_dir`` (if given) is the only place looked at; otherwise
    `bert_tokenizer_candidates` (``needed_by``: the checkpoint, whose own folder is searched
    first). Raises WeightsNotFoundError naming the file, its source and the folder to put it in.
    """
    folders = ([Path(tokenizer_dir)] if tokenizer_dir is not None
               else bert_tokenizer_candidates(needed_by))
    for folder in folders:
        vocab = folder / BERT_VOCAB_FILE
        if vocab.is_file() and vocab.stat().st_size > 0:
            return folder
    target = (Path(tokenizer_dir) if tokenizer_dir is not None
              else get_runtime().download_dir(BERT_TOKENIZER_FOLDER))
    user = (f"{needed_by.name} is an original GroundingDINO checkpoint and needs"
            if needed_by is not None else "Original GroundingDINO checkpoints need")
    raise WeightsNotFoundError(
        f"{user} the BERT tokenizer file {BERT_VOCAB_FILE} (bert-base-uncased, "
        f"{BERT_VOCAB_SIZE:,} bytes, sha256 {BERT_VOCAB_SHA256}) from {BERT_VOCAB_SOURCE}. "
        f"Download it into {target}/. Looked in: {', '.join(str(f) for f in folders)}."
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


def _make_tiny(folder: Path) -> Path:
    from ..tiny.detector import make_tiny_detector_hf

    return make_tiny_detector_hf(folder)


FAMILY = Family(
    name="detector",
    title="GroundingDINO detector",
    folder="grounding-dino",
    packages=(Package("transformers", "transformers"),),
    load=load,
    sniff=sniff,
    make_tiny=_make_tiny,
    exercise=exercise,
)
