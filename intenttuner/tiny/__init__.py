"""Tiny random models of every family, written in the real on-disk formats (one module per
family). Used by the tests, the benchmarks and ``python -m intenttuner smoke``.

This package sits above the registry: it imports ``intenttuner.families`` (to build models
with the families' own code), never the other way round. `TINY_BUILDERS` says which builder
writes the smoke/test model of each family:

    path = TINY_BUILDERS["segmenter"](models_dir / "sams")  # a file or model folder
    model = FAMILIES["segmenter"].load(path)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import (
    aesthetic,
    base_model,
    captioner_florence,
    detector,
    identity_encoder,
    image_encoder,
    inpainter,
    local_llm,
    prompt_adapter,
    reward_model,
    segmenter,
)

# Family name (``FAMILIES`` key) -> builder(folder) -> path of the tiny model it wrote there,
# in the format of the family's default weights. tests/test_families.py checks that every
# registered family has one.
TINY_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "detector": detector.make_tiny_detector_hf,
    "segmenter": segmenter.make_tiny,
    "image_encoder": image_encoder.make_tiny,
    "captioner": captioner_florence.make_tiny,  # Florence-2, the default (BLIP: captioner.py)
    "base_model": base_model.make_tiny_sd15_checkpoint,
    "inpainter": inpainter.make_random_lama,  # full size: LaMa cannot be shrunk (see module)
    "local_llm": local_llm.make_tiny,  # a Qwen2.5-Instruct folder in miniature
    "identity_encoder": identity_encoder.make_tiny,  # a facebook/dino-vits16 folder in miniature
    "aesthetic": aesthetic.make_tiny,  # fits the tiny open_clip encoder's 32-value embeddings
    "prompt_adapter": prompt_adapter.make_tiny,  # a microsoft/Promptist folder in miniature
    "reward_model": reward_model.make_tiny,  # for the tiny open_clip encoder (same seed)
}

__all__ = ["TINY_BUILDERS"]
