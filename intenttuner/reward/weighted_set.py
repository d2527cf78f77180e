"""The training set of a reward fine-tune: the generated images, each weighted by its mark or
predicted reward, plus the LoRA's original training set as the regulariser.

Lee et al. 2023 (eq. 2) fine-tune by reward-weighted likelihood with a pre-training term:

    L = (1 / N_gen) sum_i r_i L_i  +  beta * (1 / R) sum_j rep_j L_j

over the N_gen generated images (r_i their reward in [0, 1]) and the original set (rep_j each
item's repeats, R their sum: the distribution LoRA Train drew from). The trainer draws every
entry of the set alike and multiplies each sample's loss by its item's ``loss_weight``, so with
N entries in all (generated images once each, originals their repeats) the weights

    w_i = r_i * N / N_gen        w_j = beta * N / R

make its expected loss exactly L. An image of weight 0 (marked bad, or beta = 0 for the
originals) adds nothing to L and is left out of the set (counted in the report), so no step is
spent on it.

The set is an ordinary kohya folder with a ``dataset.json`` under
``<output>/intenttuner/reward_sets/<run>/`` (``<run>_00002`` when taken: nothing is replaced),
written through a temporary folder as Save Training Set writes, so it can be read, resumed from
and trained on again like any other set. The prompt of each generated image is its caption.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..dataset.folders import some_of
from ..dataset.kohya import PARTIAL_PREFIX, move_into_place, remove_stale_partials
from ..dataset.kohya_read import read_training_set
from ..dataset.naming import group_folder, set_name
from ..dataset.training_set import TrainingItem, TrainingSet, clean_caption
from ..errors import InputError
from ..runtime import get_runtime
from ..training.lora_metadata import REWARD_SETTINGS

REWARD_SETS = ("intenttuner", "reward_sets")  # under the runtime's output folder
WEIGHTINGS = ("marks", "reward", "both")
GENERATED_GROUP = "generated"
LISTED = 5  # images named per error
# Fewer images of reward above 0 than this still train (the user may insist), with a warning:
# a handful of images pulls the LoRA towards those very pictures, not towards what they share.
MIN_KEPT = 8
MARK_REWARD = {"good": 1.0, "bad": 0.0}


@dataclass(frozen=True)
class Weighted:
    """One generated image and its reward r in [0, 1], from a mark or the reward model."""

    path: Path
    prompt: str
    reward: float
    by: str  # "mark" or "reward model"


@dataclass
class WeightedSet:
    training_set: TrainingSet   # the combined set as the trainer reads it
    weighting: str
    beta: float
    images: list[Weighted]      # every generated image considered, with its reward
    original: int               # items of the original set
    left_out: int               # generated images of weight 0 (not in the set)
    warnings: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return len(self.images) - self.left_out

    def summary(self) -> str:
        rewards = [w.reward for w in self.images]
        marks = sum(w.by == "mark" for w in self.images)
        lines = [f"reward set: {len(self.images)} generated image(s) weighted by "
                 f"{self.weighting} ({marks} by mark, {len(self.images) - marks} by the reward "
                 f"model), mean reward {sum(rewards) / len(rewards):.3f}; "
                 f"{self.left_out} of weight 0 left out",
                 f"regulariser: {self.original} original image(s) at beta {self.beta:g}"
                 + (" (left out: beta 0)" if not self.beta else ""),
                 f"written to {self.training_set.root}"]
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])


def image_rewards(feedback, weighting: str = "marks", reward_model=None,
                  encoder=None) -> list[Weighted]:
    """The generated images of ``feedback`` (a `FeedbackSet`) with their reward: ``marks``: the
    marked ones, good 1 and bad 0; ``reward``: every image, the reward model's P(good);
    ``both``: marks where marked, the reward model elsewhere. Images without a prompt are
    refused by name (the prompt becomes the caption trained on)."""
    if weighting not in WEIGHTINGS:
        raise InputError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}.")
    needs_model = weighting != "marks"
    if needs_model and (reward_model is None or encoder is None):
        raise InputError(f"weighting '{weighting}' scores images with a reward model: connect a "
                         "reward model (Train / Load Reward Model) and the image encoder it was "
                         "trained with, or choose weighting 'marks'.")
    items = feedback.marked() if weighting == "marks" else feedback.items()
    if weighting == "marks" and not any(i.mark == "good" for i in items):
        raise InputError(f"No image of {feedback_name(feedback)} is marked good, so there is "
                         "nothing to move the LoRA towards; mark some images good (Rate Images "
                         "or the training monitor) or use a reward model.")
    check_prompts(items, feedback)
    found = [Weighted(i.path, clean_caption(i.prompt), MARK_REWARD[i.mark], "mark")
             for i in items if i.mark in MARK_REWARD]
    rest = [i for i in items if i.mark not in MARK_REWARD]
    if weighting == "reward":
        found, rest = [], list(items)
    if rest:
        found += scored(rest, reward_model, encoder)
    if not found:
        raise InputError(f"{feedback_name(feedback)} has no images to fine-tune on; generate "
                         "and rate some first.")
    return found


def scored(items, reward_model, encoder) -> list[Weighted]:
    from PIL import Image

    from .score import score_images

    images = []
    for item in items:
        with Image.open(item.path) as image:
            images.append(image.convert("RGB"))
    rewards = score_images(reward_model, encoder, images, [i.prompt for i in items])
    return [Weighted(i.path, clean_caption(i.prompt), float(r), "reward model")
            for i, r in zip(items, rewards.tolist(), strict=True)]


def check_prompts(items, feedback) -> None:
    missing = [i.image for i in items if not (i.prompt or "").strip()]
    if missing:
        raise InputError(f"{len(missing)} image(s) of {feedback_name(feedback)} have no prompt "
                         f"({some_of(missing, LISTED)}); the prompt is what the LoRA learns them "
                         "for. Rate images together with their prompts (connect the prompts "
                         "to Rate Images).")
    absent = [i.image for i in items if not Path(i.path).is_file()]
    if absent:
        raise InputError(f"{len(absent)} image file(s) of {feedback_name(feedback)} are gone "
                         f"({some_of(absent, LISTED)}); restore them or rate new images.")


def feedback_name(feedback) -> str:
    return f"feedback set '{getattr(feedback, 'name', 'feedback')}'"


def build_weighted_set(feedback, original: TrainingSet, run: str, weighting: str = "marks",
                       beta: float = 1.0, reward_model=None, encoder=None,
                       provenance: dict[str, Any] | None = None) -> WeightedSet:
    """Write the combined set of ``feedback``'s images (weighted as `image_rewards` says) and
    ``original``'s items (times ``beta``) as ``<output>/intenttuner/reward_sets/<run>/`` (see
    the module docstring). ``provenance``: names to record in the set's settings (and so in
    the LoRA's metadata), e.g. the LoRA fine-tuned."""
    if not isinstance(beta, (int, float)) or beta != beta or not 0 <= beta <= 100:
        raise InputError(f"beta must be a number from 0 to 100, got {beta!r}.")
    if not original.items:
        raise InputError("The original training set has no images; connect the set the LoRA "
                         "was trained on (its regulariser).")
    images = image_rewards(feedback, weighting, reward_model, encoder)
    kept = [w for w in images if w.reward > 0]
    if not kept:
        raise InputError("Every generated image has reward 0 (all marked bad, or scored 0), so "
                         "the reward term is empty; mark some good images.")
    originals = list(original.items) if beta > 0 else []
    repeats = sum(item.repeats for item in originals)
    entries = len(kept) + repeats
    weights = [w.reward * entries / len(images) for w in kept]
    original_weight = beta * entries / repeats if originals else 0.0
    warnings = set_warnings(feedback, images, len(kept))
    settings = {REWARD_SETTINGS: {
        **(provenance or {}), "feedback": getattr(feedback, "name", ""), "weighting": weighting,
        "beta": beta, "generated": len(images), "kept": len(kept),
        "left_out": len(images) - len(kept), "original": len(original.items),
        "original_set": original.name,
        "mean_reward": round(sum(w.reward for w in images) / len(images), 4),
        "reward_model": getattr(reward_model, "name", None) if weighting != "marks" else None}}
    combined = write_set(run, kept, weights, originals, original, original_weight, settings)
    return WeightedSet(training_set=combined, weighting=weighting, beta=float(beta),
                       images=images, original=len(original.items),
                       left_out=len(images) - len(kept), warnings=warnings)


def set_warnings(feedback, images: Sequence[Weighted], kept: int) -> list[str]:
    """Too few useful images, or marks that are all alike: trained anyway, with a warning."""
    warnings = []
    if kept < MIN_KEPT:
        warnings.append(f"{feedback_name(feedback)}: only {kept} image(s) with a reward above "
                        f"0; at least {MIN_KEPT} (a few dozen is better) are needed for a "
                        "steady fine-tune. Training anyway: rate more images to improve it")
    # Only when marks are all there is: a reward model's scores elsewhere still tell them apart.
    if all(w.by == "mark" and w.reward == MARK_REWARD["good"] for w in images):
        warnings.append(f"every marked image of {feedback_name(feedback)} is marked good, so "
                        "the fine-tune cannot tell what to avoid (it trains on them all alike); "
                        "mark the bad ones too, or weight by a reward model")
    return warnings


def write_set(run: str, kept: Sequence[Weighted], weights: Sequence[float],
              originals: Sequence[TrainingItem], original: TrainingSet, original_weight: float,
              settings: dict) -> TrainingSet:
    """The folder, written through a temporary one and moved into place under a free name."""
    parent = get_runtime().output_dir().joinpath(*REWARD_SETS)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(parent)
    name = set_name(run)
    temp = parent / f"{PARTIAL_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        taken: set[str] = set()
        generated = group_folder(1, GENERATED_GROUP, taken)
        items = [copy_item(temp, w.path, f"{generated}/gen_{n:04d}", w.prompt, GENERATED_GROUP,
                           1, weight)
                 for n, (w, weight) in enumerate(zip(kept, weights, strict=True))]
        folders: dict[str, str] = {}
        for item in originals:  # an original group named "generated" joins ours by name only
            if item.group not in folders:
                folders[item.group] = group_folder(item.repeats, item.group, taken)
            stem = Path(item.image).stem
            items.append(copy_item(temp, original.image_path(item),
                                   f"{folders[item.group]}/{stem}", item.caption, item.group,
                                   item.repeats, original_weight))
        groups = {GENERATED_GROUP: 1, **{i.group: i.repeats for i in originals}}
        combined = TrainingSet(intent=original.intent, groups=groups, items=items,
                               created_at=datetime.now(timezone.utc).isoformat(),
                               settings=settings)
        combined.root = str(temp)
        combined.save_manifest()
        final = move_into_place(temp, parent, name, "new")
    except BaseException:  # Cancel included: no half set stays behind
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return read_training_set(final)


def copy_item(root: Path, source: Path, stem: str, caption: str, group: str, repeats: int,
              weight: float) -> TrainingItem:
    image = f"{stem}{Path(source).suffix.lower() or '.png'}"
    (root / image).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, root / image)
    caption_file = f"{stem}.txt"
    (root / caption_file).write_text(caption + "\n", encoding="utf-8")
    return TrainingItem(image=image, caption_file=caption_file, caption=caption,
                        caption_source="file", group=group, repeats=repeats,
                        loss_weight=weight)
