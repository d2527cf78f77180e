"""The registry of model families: name → `Family` (folder, loader, sniffer, exercise).

Family modules import their heavy libraries (transformers, diffusers, open_clip,
segment_anything, spandrel) inside functions, so importing this registry stays cheap. The tiny
random model of each family is built by ``intenttuner.tiny.TINY_BUILDERS``, which depends on
this registry, never the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import (
    aesthetic,
    base_model,
    captioner,
    detector,
    identity_encoder,
    image_encoder,
    inpainter,
    local_llm,
    prompt_adapter,
    reward_model,
    segmenter,
)
from .base import Family, Package

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        detector.FAMILY,
        segmenter.FAMILY,
        image_encoder.FAMILY,
        captioner.FAMILY,
        base_model.FAMILY,
        inpainter.FAMILY,
        local_llm.FAMILY,
        identity_encoder.FAMILY,
        aesthetic.FAMILY,
        prompt_adapter.FAMILY,
        reward_model.FAMILY,
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family '{name}'; known: {', '.join(FAMILIES)}") from None


def guess_family(tensor_names: Iterable[str]) -> Family | None:
    """The family whose checkpoints look like ``tensor_names``, if any."""
    names = list(tensor_names)
    return next((f for f in FAMILIES.values() if f.sniff(names)), None)


__all__ = ["FAMILIES", "Family", "Package", "get_family", "guess_family"]
