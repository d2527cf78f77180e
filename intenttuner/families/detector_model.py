"""`GroundingDinoDetector`: a loaded GroundingDINO that finds boxes of text phrases in images.

Built by the family's loader (``FAMILY.load`` in `detector`), from either on-disk format;
`detect` is the one call the pipeline makes:

    found = det.detect([image], ["black leather jacket", "necklace"])
    boxes = [(d.box, d.score, d.phrase_index) for d in found[0]]  # XYXY, original pixels

All phrases of a call go through the model in one pass per image (more only when they exceed
the model's text length): they are joined into one caption (`detector_phrases.build_caption`)
and each output box is given to the phrase whose tokens it matches best.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..errors import InputError
from ..imageio import to_rgb_pil
from ..runtime import get_runtime
from .detector_phrases import (
    assign_phrases,
    boxes_to_pixels,
    build_caption,
    normalise_phrase,
    phrase_token_spans,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawDetection:
    """One detected box, before any filtering by the detection stage."""

    box: tuple[float, float, float, float]  # XYXY, pixels of the ORIGINAL image
    score: float  # box confidence in [0, 1]: the highest token probability of the box
    phrase_index: int  # index into the phrases passed to detect()


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
