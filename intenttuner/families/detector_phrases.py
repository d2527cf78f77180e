"""GroundingDINO's caption and phrase maths, without a model: how phrases become one caption,
which tokens belong to which phrase, which boxes to keep, and where they lie in pixels.

GroundingDINO reads all phrases of a call as one lower-case caption ``"black leather jacket .
necklace ."``, as it was trained; each output box is given to the phrase whose tokens it
matches best. These functions are unit-tested without weights (tests/test_family_detector.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


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
