"""Training the reward model on marked images (Lee et al. 2023, stage 2), in-process.

Every image and prompt is embedded ONCE by the connected open_clip encoder (batched, with its
progress and Cancel); training then only runs the small MLP of `families.reward_model` on those
vectors, so it takes seconds. The loss, as in the paper:

    BCE(r(x, z), mark)  +  aux_weight * CE( [r(x, z), r(x, z'_1), ..., r(x, z'_k)] / T, 0 )

the second term over images marked good only: their real prompt ``z`` should score above
copies ``z'`` with one colour, count, attribute or background word swapped
(`reward.perturb`), which teaches the model text no mark covers. ``r`` is the MLP's logit, T=1.

A stratified share of the marks (``held_out``) is kept out of training and reported as the
held-out accuracy, the figure that says whether the model predicts the person's marks.

    examples = examples_from(feedback.marked())
    result = train_reward_model(examples, clip, RewardSettings(epochs=100), name="mine")
    result.held_out_accuracy, result.path           # 0.93, models/reward_models/mine.safetensors
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..errors import InputError, TrainingDivergedError
from ..evaluation.common import COUNT, UNIT, Range, check_settings
from ..families.reward_model import RewardMLP, RewardModel, build, encoder_signature
from ..runtime import get_runtime
from ..training.grad_mode import grad_enabled
from ..training.report import loss_chart
from .examples import Example, examples_from, open_images, stratified_split
from .model_file import save_reward_model
from .perturb import perturbations

__all__ = ["MIN_EACH", "MIN_MARKS", "Example", "RewardSettings", "RewardTrainResult",
           "examples_from", "train_reward_model"]

# Fewer marks than this and the held-out accuracy rests on a handful of images (20 % of 40 is
# 8), so it says little; the hidden-rule test learns a colour rule from 160. MIN_EACH: with
# fewer of a kind the model mostly learns how rare that kind is.
MIN_MARKS = 40
MIN_EACH = 8
LEARNING_RATE = Range(1e-6, 1.0, " (AdamW's step size)")
DROPOUT = Range(0.0, 0.9)
HELD_OUT = Range(0.0, 0.5, " (the share of marks kept out of training)")


@dataclass
class RewardSettings:
    """How to train. The defaults suit a few dozen to a few thousand marks."""

    epochs: int = 150  # passes over the training marks
    learning_rate: float = 1e-3
    hidden: int = 128  # width of the MLP's two hidden layers
    dropout: float = 0.2  # after each hidden layer: few marks, so regularise
    aux_weight: float = 0.5  # the paper's lambda: weight of the real-vs-perturbed prompt task
    perturbed_per_prompt: int = 4  # perturbed prompts each good image's prompt competes with
    held_out: float = 0.2  # share of the good and of the bad marks kept out, for the accuracy
    seed: int = 0  # split, perturbations, initialisation, shuffling, dropout
    min_marks: int = MIN_MARKS  # fewer -> refused, unless train_anyway
    train_anyway: bool = False  # train on too few marks, with a warning
    batch_size: int = 32  # marks per optimiser step
    weight_decay: float = 1e-4  # AdamW's

    def __post_init__(self):
        for name in ("epochs", "hidden", "perturbed_per_prompt", "seed", "min_marks",
                     "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"{name} must be a whole number, got {value!r}.")
        for name in ("learning_rate", "dropout", "aux_weight", "held_out", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InputError(f"{name} must be a number, got {value!r}.")
        check_settings(self, epochs=COUNT, hidden=COUNT, batch_size=COUNT,
                       learning_rate=LEARNING_RATE, dropout=DROPOUT, held_out=HELD_OUT,
                       aux_weight=Range(0.0, 100.0), perturbed_per_prompt=Range(0, 64),
                       seed=Range(0), min_marks=Range(0), weight_decay=UNIT)


@dataclass
class RewardTrainResult:
    """What training made and how well it predicts marks it did not see."""

    model: RewardModel
    path: Path | None  # the saved file; None when no name was given
    train_accuracy: float
    held_out_accuracy: float | None  # None when nothing was held out
    held_out: int  # marks held out
    counts: dict[str, int]  # good, bad, train, held_out, aux (good images with perturbations)
    warnings: list[str]
    losses: list[float]  # mean training loss of each epoch
    prompt_accuracy: float | None = None  # held-out good images whose real prompt beats all
    majority: float | None = None  # held-out accuracy of always answering the commoner mark
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch accuracies

    def summary(self) -> str:
        c = self.counts
        lines = [f"Reward model '{self.model.name}' trained on {c['train']} of "
                 f"{c['good'] + c['bad']} marks ({c['good']} good, {c['bad']} bad) in "
                 f"{self.seconds:.1f} s, {len(self.losses)} epochs; loss "
                 f"{self.losses[0]:.3f} -> {self.losses[-1]:.3f}."]
        if self.held_out_accuracy is None:
            lines.append(f"Training accuracy {self.train_accuracy:.1%}; no marks were held "
                         "out, so how well it predicts new marks is unknown.")
        else:
            lines.append(f"Held-out accuracy {self.held_out_accuracy:.1%} on {self.held_out} "
                         f"marks it never saw (always answering the commoner mark: "
                         f"{self.majority:.1%}); training accuracy {self.train_accuracy:.1%}.")
        if self.prompt_accuracy is not None:
            lines.append(f"Prompt check: for {self.prompt_accuracy:.1%} of the held-out good "
                         "images the real prompt scores above every perturbed one.")
        lines += [f"Warning: {w}" for w in self.warnings]
        lines.append(f"Saved to {self.path}." if self.path else
                     "Not saved (no name given).")
        return "\n".join(lines)

    def chart(self) -> Image.Image:
        """The loss per epoch, titled with the final accuracies."""
        held = ("none held out" if self.held_out_accuracy is None
                else f"held-out {self.held_out_accuracy:.1%}")
        return loss_chart(self.losses, f"Reward model loss per epoch (train "
                                       f"{self.train_accuracy:.1%}, {held})")


@dataclass
class _Data:
    """The embedded examples: image and prompt vectors, and the auxiliary task's rows."""

    images: torch.Tensor  # (N, D)
    texts: torch.Tensor  # (T, D): the real prompts, then the perturbed ones
    prompt_of: torch.Tensor  # (N,) index into texts of each example's prompt
    labels: torch.Tensor  # (N,) 1.0 good, 0.0 bad
    choices: torch.Tensor  # (N, 1 + k) texts rows: the real prompt, then its perturbations
    valid: torch.Tensor  # (N, 1 + k) bool: which choices exist (fewer swaps than k happen)


def train_reward_model(examples: Sequence[Example], encoder, settings: RewardSettings | None = None,
                       name: str | None = None) -> RewardTrainResult:
    """Train a reward model on ``examples`` with ``encoder``'s embeddings (see the module
    docstring); save it as ``name`` (`model_file.save_reward_model`) when given.

    Refused (InputError): no examples; all marks the same; fewer than ``settings.min_marks``
    marks or fewer than `MIN_EACH` of a kind (trained anyway with a warning under
    ``train_anyway``). A NaN loss -> TrainingDivergedError, nothing saved. Seeded: the same
    examples and settings give the same model; the host's random generators are untouched.
    """
    settings = settings or RewardSettings()
    examples = list(examples)
    warnings = _check_marks(examples, settings)
    started = time.monotonic()
    runtime = get_runtime()
    runtime.check_interrupted()
    data = _embed(examples, encoder, settings)
    train, held = stratified_split([e.good for e in examples], settings.held_out, settings.seed)
    if settings.held_out > 0 and not held:
        warnings.append("too few marks to hold any out: the accuracy is measured on the "
                        "training marks only.")
    mlp, losses, history = _train_mlp(data, train, held, settings)
    train_accuracy = _accuracy(mlp, data, train)
    held_accuracy = _accuracy(mlp, data, held) if held else None
    counts = {"good": sum(e.good for e in examples), "bad": sum(not e.good for e in examples),
              "train": len(train), "held_out": len(held),
              "aux": int((data.valid[:, 1:].any(dim=1) & (data.labels > 0)).sum())}
    metadata = {"encoder": json.dumps(encoder_signature(encoder)),
                "marks": json.dumps(counts), "train_accuracy": f"{train_accuracy:.4f}",
                "held_out_accuracy": "" if held_accuracy is None else f"{held_accuracy:.4f}",
                "settings": json.dumps(asdict(settings)),
                "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    runtime.check_interrupted()  # the last chance to stop before a file appears
    path = save_reward_model(name, mlp, metadata) if name else None
    model = build(mlp, path.stem if path else "unsaved reward model", metadata)
    good_held = [i for i in held if data.labels[i] > 0]
    return RewardTrainResult(
        model=model, path=path, train_accuracy=train_accuracy, held_out_accuracy=held_accuracy,
        held_out=len(held), counts=counts, warnings=warnings, losses=losses,
        prompt_accuracy=_prompt_accuracy(mlp, data, good_held),
        majority=_majority(data, held) if held else None,
        seconds=time.monotonic() - started, history=history)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the MLP on one CPU thread, then restore the host's setting. Its matrices are tiny
    (32 rows by a few hundred), so threads only add overhead; on a busy machine they made
    each step 15x slower (36 s against 2.5 s for 600 steps on 2 shared CPUs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check_marks(examples: Sequence[Example], settings: RewardSettings) -> list[str]:
    """Refuse what cannot train; what is merely too few -> refused, or a warning."""
    good = sum(e.good for e in examples)
    bad = len(examples) - good
    need = (f"at least {settings.min_marks} marks, {MIN_EACH} or more of each kind "
            "(good and bad)")
    if not examples:
        raise InputError(f"No marked images: mark images good or bad in Rate Images (or the "
                         f"training monitor) first; the reward model needs {need}.")
    if not good or not bad:
        kind = "good" if good else "bad"
        raise InputError(f"All {len(examples)} marks are '{kind}': a reward model learns the "
                         f"difference between good and bad images, so mark at least "
                         f"{MIN_EACH} images '{'bad' if good else 'good'}' too.")
    problems = []
    if len(examples) < settings.min_marks:
        problems.append(f"{len(examples)} marks")
    if min(good, bad) < MIN_EACH:
        problems.append(f"only {min(good, bad)} '{'good' if good < bad else 'bad'}'")
    if not problems:
        return []
    message = (f"Too few marks to train a reliable reward model ({', '.join(problems)}; "
               f"{good} good, {bad} bad): it needs {need}.")
    if not settings.train_anyway:
        raise InputError(f"{message} Mark more images, or set train_anyway to train on these "
                         "(the result will be unreliable).")
    return [message + " Trained anyway (train_anyway): treat its scores with caution."]


def _embed(examples: Sequence[Example], encoder, settings: RewardSettings) -> _Data:
    """Embed every image, prompt and perturbed prompt once (clones: the encoder returns
    inference-mode tensors, which autograd cannot save)."""
    prompts = list(dict.fromkeys(e.prompt for e in examples))
    rng = random.Random(settings.seed)
    good_prompts = dict.fromkeys(e.prompt for e in examples if e.good)
    swapped = {p: perturbations(p, settings.perturbed_per_prompt, rng) for p in good_prompts}
    texts = list(dict.fromkeys([*prompts, *(z for zs in swapped.values() for z in zs)]))
    row = {text: i for i, text in enumerate(texts)}
    images = encoder.embed_images(open_images(examples))
    text_vectors = encoder.embed_texts(texts)
    with torch.inference_mode(False):  # ordinary copies, even when the host's mode is on
        images, text_vectors = images.clone(), text_vectors.clone()
    k = settings.perturbed_per_prompt
    choices = torch.zeros(len(examples), 1 + k, dtype=torch.long)
    valid = torch.zeros(len(examples), 1 + k, dtype=torch.bool)
    for i, example in enumerate(examples):
        options = [example.prompt, *(swapped.get(example.prompt, []) if example.good else [])]
        choices[i, :len(options)] = torch.tensor([row[t] for t in options])
        valid[i, :len(options)] = True
    return _Data(images=images, texts=text_vectors, prompt_of=choices[:, 0].clone(),
                 labels=torch.tensor([float(e.good) for e in examples]), choices=choices,
                 valid=valid)


def _train_mlp(data: _Data, train: list[int], held: list[int], settings: RewardSettings,
               reembed: Callable[[], _Data] | None = None
               ) -> tuple[RewardMLP, list[float], list[dict[str, float]]]:
    """A seeded MLP trained on the embeddings ``data`` (its rows ``train``; ``held`` for the
    per-epoch accuracies), in eval mode, with each epoch's mean loss and accuracies.
    ``reembed``: called before every epoch but the first for the embeddings that epoch uses
    (bench/reward_model.py's naive baseline re-embeds per epoch; here `data` serves all)."""
    # fork_rng: initialisation and dropout draw from the global generator, which ComfyUI's
    # samplers use too; the seed drives this run without changing the host's state.
    # grad_enabled: ComfyUI runs nodes under inference mode, where nothing could be trained.
    with grad_enabled(), torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(settings.seed)
        mlp = RewardMLP(data.images.shape[1], settings.hidden, settings.dropout)
        mlp.set_standardisation(data.images[train], data.texts[data.prompt_of[train]])
        losses, history = _fit(mlp, data, train, held, settings, reembed)
    mlp.eval()
    return mlp, losses, history


def _fit(mlp: RewardMLP, data: _Data, train: list[int], held: list[int],
         settings: RewardSettings, reembed: Callable[[], _Data] | None = None
         ) -> tuple[list[float], list[dict[str, float]]]:
    """The training loop: seeded shuffles, one progress step per epoch, Cancel between
    steps. Returns the mean loss and the accuracies of each epoch."""
    runtime = get_runtime()
    optimiser = torch.optim.AdamW(mlp.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    order_generator = torch.Generator().manual_seed(settings.seed)
    train_rows = torch.tensor(train, dtype=torch.long)
    losses: list[float] = []
    history: list[dict[str, float]] = []
    with runtime.progress(total=settings.epochs, desc="Training reward model",
                          unit="epoch") as bar:
        for epoch in range(settings.epochs):
            if reembed is not None and epoch:
                data = reembed()
            mlp.train()
            total = 0.0
            shuffled = train_rows[torch.randperm(len(train_rows), generator=order_generator)]
            for batch in shuffled.split(settings.batch_size):
                runtime.check_interrupted()
                loss = _loss(mlp, data, batch, settings.aux_weight)
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(
                        f"The reward model's training loss became {loss.item()} in epoch "
                        f"{epoch + 1}, so nothing was saved: train again with a lower "
                        f"learning rate (now {settings.learning_rate:g}).")
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            losses.append(total / len(train_rows))
            mlp.eval()
            history.append({"epoch": epoch + 1, "loss": losses[-1],
                            "train_accuracy": _accuracy(mlp, data, train),
                            "held_out_accuracy": _accuracy(mlp, data, held) if held else -1.0})
            bar.update(1)
    return losses, history


def _loss(mlp: RewardMLP, data: _Data, batch: torch.Tensor, aux_weight: float) -> torch.Tensor:
    """BCE on the marks of ``batch``, plus ``aux_weight`` x the prompt-classification CE of its
    good images that have perturbed prompts."""
    images = data.images[batch]
    logits = mlp(images, data.texts[data.prompt_of[batch]])
    loss = nn.functional.binary_cross_entropy_with_logits(logits, data.labels[batch])
    valid = data.valid[batch]
    aux = (data.labels[batch] > 0) & valid[:, 1:].any(dim=1)
    if aux_weight > 0 and aux.any():
        choices = data.choices[batch][aux]  # (G, 1 + k)
        candidates = data.texts[choices]  # (G, 1 + k, D)
        scores = mlp(images[aux].unsqueeze(1).expand_as(candidates), candidates)
        scores = scores.masked_fill(~valid[aux], float("-inf"))
        target = torch.zeros(len(choices), dtype=torch.long)  # the real prompt is choice 0
        loss = loss + aux_weight * nn.functional.cross_entropy(scores, target)
    return loss


def _logits(mlp: RewardMLP, data: _Data, rows: list[int]) -> torch.Tensor:
    index = torch.tensor(rows, dtype=torch.long)
    with torch.no_grad():
        return mlp(data.images[index], data.texts[data.prompt_of[index]])


def _accuracy(mlp: RewardMLP, data: _Data, rows: list[int]) -> float:
    """The share of ``rows`` whose mark the model predicts (P(good) > 0.5 means good)."""
    if not rows:
        return float("nan")
    predicted = (_logits(mlp, data, rows) > 0).float()
    return float((predicted == data.labels[rows]).float().mean())


def _majority(data: _Data, rows: list[int]) -> float:
    share = float(data.labels[rows].mean())
    return max(share, 1.0 - share)


def _prompt_accuracy(mlp: RewardMLP, data: _Data, rows: list[int]) -> float | None:
    """The share of good images ``rows`` (with perturbations) whose real prompt scores above
    every perturbed one; None when none has any."""
    rows = [i for i in rows if data.valid[i, 1:].any()]
    if not rows:
        return None
    index = torch.tensor(rows, dtype=torch.long)
    candidates = data.texts[data.choices[index]]
    with torch.no_grad():
        scores = mlp(data.images[index].unsqueeze(1).expand_as(candidates), candidates)
    scores = scores.masked_fill(~data.valid[index], float("-inf"))
    return float((scores[:, 0] > scores[:, 1:].max(dim=1).values).float().mean())
