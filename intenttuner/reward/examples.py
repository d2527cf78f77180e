"""The reward model's examples: marked images with their prompts, read from feedback sets, and
the stratified held-out split that measures how well the model predicts marks it never saw."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import InputError
from ..imageio import open_image, to_rgb_pil

MARKS = {"good": True, "bad": False}
SHOWN = 5  # offending images named in a message; the rest are counted


@dataclass
class Example:
    """One marked image: ``good`` is the person's mark of ``image`` for ``prompt``."""

    image: Image.Image | Path  # a PIL image, or a file read when training starts
    prompt: str
    good: bool


def examples_from(marked: Iterable) -> list[Example]:
    """Examples from feedback-set images (`feedback_set.MarkedImage`: ``path``, ``image``,
    ``prompt``, ``mark``, ``source``): good and bad marks only, unmarked and skipped ones left
    out. Marked images without a prompt -> InputError naming them (up to five)."""
    examples, missing = [], []
    for item in marked:
        if item.mark not in MARKS:
            continue
        prompt = (item.prompt or "").strip()
        if not prompt:
            missing.append(f"{item.source}/{item.image}")
            continue
        examples.append(Example(Path(item.path), prompt, MARKS[item.mark]))
    if missing:
        more = f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
        raise InputError(
            f"{len(missing)} marked image(s) have no prompt: {', '.join(missing[:SHOWN])}{more}. "
            "A mark judges an image for its prompt: rate them again in Rate Images with their "
            "prompts connected, or mark them Skip.")
    return examples


def open_images(examples: Sequence[Example]) -> list[Image.Image]:
    """The examples' images as RGB PIL images (files opened here; an unreadable one ->
    InputError naming it)."""
    images = []
    for example in examples:
        if isinstance(example.image, Image.Image):
            images.append(to_rgb_pil(example.image))
            continue
        try:  # upright (EXIF), any bit depth; a damaged file -> InputError naming it
            images.append(to_rgb_pil(open_image(example.image)))
        except OSError as exc:
            reason = exc.strerror or exc
            raise InputError(f"Marked image {example.image} cannot be read ({reason}): restore "
                             "the file, or mark it Skip.") from None
    return images


def stratified_split(labels: Sequence[bool], fraction: float,
                     seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) indexes: ``fraction`` of the good and of the bad examples, drawn by
    ``seed``, held out; each kind keeps at least one training example. Sorted lists."""
    rng = random.Random(seed)
    train, held = [], []
    for kind in (True, False):
        members = [i for i, label in enumerate(labels) if label is kind]
        rng.shuffle(members)
        n_held = min(round(fraction * len(members)), max(len(members) - 1, 0))
        held += members[:n_held]
        train += members[n_held:]
    return sorted(train), sorted(held)
