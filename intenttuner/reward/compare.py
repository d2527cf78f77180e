"""Before / after a reward fine-tune: the same prompts and seeds generated with the old LoRA and
with the new one, each image scored by the reward model, and (with a monitor's intent and
models) both sets scored by the intent's metrics; and how well each LoRA still reproduces the
original training set (its denoising loss at fixed noise, `monitor.reproduction`: the paper's
beta term is there to keep it).

Fixed prompts and seeds make the two columns differ by the LoRA only: every item's start noise
comes from its own seed (`monitor.sampling.generate`), each LoRA is applied from its saved file
(`training.lora_apply.lora_applied`, exactly the weights a user loads) and taken off again, so
the base model comes back untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..errors import InputError
from ..evaluation.pairing import pair_images
from ..evaluation.types import EvalItem, EvalPlan, Test
from ..families.sd_model import BaseModel
from ..monitor.grid import sample_grid
from ..monitor.reproduction import Pair, denoising_losses
from ..monitor.scoring import scores_payload
from ..monitor.settings import MonitorSettings
from ..training.config import TrainConfig
from ..training.lora_apply import lora_applied

MAX_PROMPTS = 8  # prompts compared when they come from the feedback (one seed each)
MAX_REPRODUCED = 32  # training images whose reproduction is measured (a few seconds' worth)
ScoreFn = Callable[[list, str], object]  # monitor.scoring.scorer's: Generated list -> EvalScores


@dataclass(frozen=True)
class LoraFile:
    path: Path
    config: TrainConfig  # its network settings (rank, alpha, conv_rank, train_text_encoder)


@dataclass
class CompareRow:
    prompt: str
    seed: int
    reward_before: float | None
    reward_after: float | None


@dataclass
class Comparison:
    rows: list[CompareRow]
    images_before: list[Image.Image]
    images_after: list[Image.Image]
    intent_before: dict[str, float | None] = field(default_factory=dict)  # metric -> score
    intent_after: dict[str, float | None] = field(default_factory=dict)
    # Mean denoising loss of the original training set at fixed noise (lower: reproduced
    # better); None when no set was given.
    reproduction_before: float | None = None
    reproduction_after: float | None = None

    def mean_reward(self, when: str) -> float | None:
        values = [getattr(r, f"reward_{when}") for r in self.rows]
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    def summary(self) -> str:
        lines = [f"before/after on {len(self.rows)} fixed prompt(s) and seed(s):"]
        before, after = self.mean_reward("before"), self.mean_reward("after")
        if before is None:
            lines.append("  reward: no reward model connected")
        else:
            lines.append(f"  reward (P(good)): {before:.3f} -> {after:.3f} ({after - before:+.3f})")
        for metric in self.intent_before:
            lines.append(f"  {metric}: {_number(self.intent_before[metric])} -> "
                         f"{_number(self.intent_after.get(metric))}")
        if not self.intent_before:
            lines.append("  intent scores: none (connect a Training Monitor to score them)")
        if self.reproduction_before is not None:
            lines.append(f"  training-set reproduction (denoising loss at fixed noise, lower "
                         f"is better): {self.reproduction_before:.4f} -> "
                         f"{self.reproduction_after:.4f} (x{self.reproduction_ratio():.2f})")
        return "\n".join(lines)

    def reproduction_ratio(self) -> float | None:
        """After / before of the training set's denoising loss: above 1, the fine-tune lost
        some of what the LoRA had learned (raise beta to keep more)."""
        if self.reproduction_before is None or self.reproduction_after is None:
            return None
        return self.reproduction_after / max(self.reproduction_before, 1e-12)

    def image(self) -> Image.Image:
        """Before | after in two columns, the reward under each image, the means as title."""
        pictures, captions = [], []
        for row, old, new in zip(self.rows, self.images_before, self.images_after, strict=True):
            pictures += [old, new]
            captions += [f"before: {row.prompt}\nreward {_number(row.reward_before)}",
                         f"after (seed {row.seed})\nreward {_number(row.reward_after)}"]
        before, after = self.mean_reward("before"), self.mean_reward("after")
        scores = [f"{m} {_number(self.intent_before[m])} -> {_number(self.intent_after.get(m))}"
                  for m in self.intent_before]
        ratio = self.reproduction_ratio()
        kept = [f"training-set loss x{ratio:.2f}"] if ratio is not None else []
        title = "; ".join([f"reward {_number(before)} -> {_number(after)}", *scores, *kept])
        return sample_grid(pictures, captions, f"Reward fine-tune, before | after: {title}",
                           columns=2)


def compare_items(prompts: Sequence[str], seed: int = 0,
                  count: int = MAX_PROMPTS) -> list[EvalItem]:
    """Up to ``count`` distinct prompts, in order, one fixed seed each (``seed`` + n)."""
    distinct = list(dict.fromkeys(p.strip() for p in prompts if p and p.strip()))[:count]
    if not distinct:
        raise InputError("No prompts to compare the LoRAs on; the feedback images need their "
                         "prompts.")
    return [EvalItem(id=f"compare-{n:03d}", test=Test.STABILITY, prompt=prompt, seed=seed + n)
            for n, prompt in enumerate(distinct)]


def generate_with(model: BaseModel, lora: LoraFile, items: Sequence[EvalItem],
                  settings: MonitorSettings, size: int, device,
                  reproduce: Sequence[Pair] = ()) -> tuple[list[Image.Image], float | None]:
    """``items`` generated with ``lora`` applied, and the mean denoising loss of
    ``reproduce`` under it (None when empty); the LoRA is applied once for both."""
    from ..monitor.sampling import generate

    with lora_applied(model, lora.config, lora.path):
        images = generate(model, items, settings, size, device)
        losses = denoising_losses(model, reproduce, size, device) if reproduce else []
    return images, sum(losses) / len(losses) if losses else None


def compare_loras(model: BaseModel, before: LoraFile, after: LoraFile,
                  items: Sequence[EvalItem], settings: MonitorSettings, size: int,
                  device: torch.device | str, reward_model=None, encoder=None,
                  score: ScoreFn | None = None, plan: EvalPlan | None = None,
                  reproduce: Sequence[Pair] = ()) -> Comparison:
    """Generate ``items`` (or ``plan``'s items, when scoring by the intent) with each LoRA and
    score both (see the module docstring). ``score``: `monitor.scoring.scorer` of the monitor's
    spec, with ``plan`` its evaluation plan; ``reward_model`` + ``encoder``: P(good) per image;
    ``reproduce``: (image file, caption) of the original training set, whose denoising loss
    each LoRA gets (`MAX_REPRODUCED` of them at most, spread over the set)."""
    if plan is not None:
        items = list(plan.items)
    if not items:
        raise InputError("No prompts to compare the LoRAs on.")
    reproduce = spread(list(reproduce), MAX_REPRODUCED)
    old, loss_old = generate_with(model, before, items, settings, size, device, reproduce)
    new, loss_new = generate_with(model, after, items, settings, size, device, reproduce)
    rewards_old = rewards_new = [None] * len(items)
    if reward_model is not None and encoder is not None:
        from .score import score_images

        prompts = [item.prompt for item in items]
        rewards_old = [float(v) for v in score_images(reward_model, encoder, old, prompts)]
        rewards_new = [float(v) for v in score_images(reward_model, encoder, new, prompts)]
    rows = [CompareRow(item.prompt, item.seed, a, b)
            for item, a, b in zip(items, rewards_old, rewards_new, strict=True)]
    comparison = Comparison(rows=rows, images_before=old, images_after=new,
                            reproduction_before=loss_old, reproduction_after=loss_new)
    if score is not None and plan is not None:
        comparison.intent_before = _scores(score(pair_images(plan, old), "before"))
        comparison.intent_after = _scores(score(pair_images(plan, new), "after"))
    return comparison


def spread(values: list, count: int) -> list:
    """At most ``count`` of ``values``, evenly spaced (every group of a sorted set shows)."""
    if len(values) <= count:
        return values
    return [values[n * len(values) // count] for n in range(count)]


def _scores(result) -> dict[str, float | None]:
    return {metric: entry["score"] for metric, entry in scores_payload(result).items()
            if entry["applicable"]}


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
