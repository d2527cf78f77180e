"""Pair generated images with the plan items they were generated from.

ComfyUI runs CLIPTextEncode and KSampler once per element of the Evaluation Prompts lists, so a
score node with ``INPUT_IS_LIST`` receives one IMAGE batch per plan item, in plan order. That
order is the pairing, so it is checked rather than trusted: the counts must fit the plan, and
the prompts that produced the images (the same prompts list, wired to the score node) must be
the plan's own. Anything else is refused with what to connect, never guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from ..errors import InputError
from ..imageio import batch_to_pils, to_rgb_pil
from ..intent.schema import Intent
from .types import EvalItem, EvalPlan, intent_fingerprint


@dataclass(frozen=True)
class Generated:
    item: EvalItem  # what the image was generated from
    image: Image.Image  # RGB, at the size it was generated
    index: int  # position in the flattened image list (ImageRecord.image)


def pair_images(plan: EvalPlan, images, prompts: Sequence[str] | None = None) -> list[Generated]:
    """The images paired with ``plan.items``.

    ``images``: a list (what a ComfyUI list input gives) whose elements are IMAGE batches
    (tensors B x H x W x C, floats in [0, 1]), PIL images or lists of those; a bare batch or
    image counts as a one-element list. Either one element per plan item (every image of
    element i belongs to item i: several seeds' images in one batch are fine), or a single
    batch holding one image per item (image j belongs to item j). Sizes may differ.
    ``prompts``: the prompts that produced the images, when known: they must be the plan's.
    """
    if prompts is not None:  # first: another plan's prompts explain any count mismatch too
        check_prompts(plan, prompts)
    groups = [_pils(element) for element in _as_list(images)]
    total = sum(len(group) for group in groups)
    items = plan.items
    if total == 0:
        raise InputError("Got no images to score. Generate one image batch per prompt of the "
                         "evaluation plan and connect the images here.")
    if len(groups) == len(items):
        pairs = [(item, pil) for item, group in zip(items, groups, strict=True) for pil in group]
        empty = [items[i].id for i, group in enumerate(groups) if not group]
        if empty:
            raise InputError(f"The image batch of plan item '{empty[0]}' is empty: every prompt "
                             "of the evaluation plan needs at least one image.")
    elif len(groups) == 1 and total == len(items):
        pairs = list(zip(items, groups[0], strict=True))
    else:
        raise InputError(
            f"Got {total} images (in {len(groups)} list items) for the {len(items)} prompts of "
            "the evaluation plan: generate one image batch per prompt from the plan's prompts "
            "list (connect Evaluation Prompts' prompts to CLIPTextEncode and its seeds to "
            "KSampler).")
    return [Generated(item, pil, index) for index, (item, pil) in enumerate(pairs)]


def check_prompts(plan: EvalPlan, prompts: Sequence[str] | str) -> None:
    """InputError unless ``prompts`` are the plan's prompts, in order."""
    given = [prompts] if isinstance(prompts, str) else list(prompts)
    expected = plan.prompts()
    for i, (got, want) in enumerate(zip(given, expected, strict=False)):
        if got != want:
            raise InputError(
                f"The images do not come from this plan's prompts: prompt {i} is '{got}', but "
                f"the plan's prompt {i} is '{want}'. Connect the prompts of the Evaluation "
                "Prompts node that made this plan.")
    if len(given) != len(expected):
        raise InputError(
            f"The images do not come from this plan's prompts: got {len(given)} prompts for the "
            f"plan's {len(expected)}. Connect the prompts of the Evaluation Prompts node that "
            "made this plan.")


def check_intent(plan: EvalPlan, intent: Intent) -> None:
    """InputError unless ``plan`` was made for ``intent`` (same public intent JSON)."""
    fingerprint = intent_fingerprint(intent)
    if plan.intent_fingerprint != fingerprint:
        raise InputError(
            f"The plan was made for another intent: the plan's is {plan.intent_fingerprint} "
            f"(trigger '{plan.trigger}'), the connected intent's is {fingerprint} (trigger "
            f"'{intent.trigger_words[0]}'). Make the plan again from this intent with the "
            "Evaluation Prompts node, or connect the intent it was made from.")


def _as_list(images) -> list:
    if images is None:
        return []
    if isinstance(images, Image.Image) or hasattr(images, "shape"):
        return [images]  # one batch or image, not wrapped in a list
    return list(images)


def _pils(element) -> list[Image.Image]:
    """The RGB images of one list element: a batch, an image or a list of those."""
    if isinstance(element, Image.Image):
        return [to_rgb_pil(element)]
    if hasattr(element, "shape"):  # a torch tensor or numpy array: (B, H, W, C) or (H, W, C)
        return [] if len(element.shape) == 4 and element.shape[0] == 0 else batch_to_pils(element)
    if isinstance(element, (list, tuple)):
        return [pil for part in element for pil in _pils(part)]
    raise InputError(f"Expected IMAGE batches or PIL images to score, got "
                     f"{type(element).__name__}.")
