"""Your own prompt adapter: supervised fine-tuning of a Promptist-style GPT-2 on your pairs.

Promptist's first stage (Hao et al. 2023) is exactly this: fine-tune GPT-2 on pairs of a plain
prompt and a prompt people preferred, the loss on the preferred prompt only. Promptist learnt
Lexica's style, which suits SD 1.x; a user whose model prefers other words (a fine-tuned
checkpoint, their LoRA's captions) teaches it with a few dozen pairs of their own. The second
stage (reinforcement learning on `reward.prompt_reward`) needs thousands of generated images
and is left out; the reward still tells whether the trained adapter helps.

Training runs on a deep copy of the loaded adapter's model, in fp32 (AdamW on fp16 weights
loses small updates), so the adapter that was connected keeps rewriting as before. The result
is written by `families.prompt_adapter.save_adapter` as a new folder that appears whole or not
at all: a Cancel between steps, or an error, leaves nothing behind.

    pairs = read_pairs("a cat on a sofa => a cat on a sofa, soft light, highly detailed")
    result = train_adapter(adapter, pairs, models_dir / "prompt_adapters" / "mine")
    load_model("prompt_adapter", "mine").rephrase(["a cat on a sofa"])
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..errors import InputError, TrainingDivergedError
from ..evaluation.common import COUNT, Range, check_settings
from ..families.prompt_adapter import PromptAdapter, save_adapter
from ..runtime import get_runtime
from .pairs import Pair, collate, encode_pairs, read_pairs

__all__ = ["AdapterTrainResult", "AdapterTrainSettings", "Pair", "read_pairs", "train_adapter"]

LEARNING_RATE = Range(1e-8, 1.0, " (AdamW's step size)")
WEIGHT_DECAY = Range(0.0, 1.0)


@dataclass
class AdapterTrainSettings:
    """How to fine-tune. The defaults suit GPT-2 small (Promptist) on a few dozen pairs: a
    small learning rate, as for any pretrained language model, over many short epochs."""

    epochs: int = 20  # passes over the pairs
    learning_rate: float = 5e-5
    batch_size: int = 4  # pairs per optimiser step
    seed: int = 0  # shuffling and dropout: the same seed, the same adapter
    weight_decay: float = 0.0

    def __post_init__(self):
        for name in ("epochs", "batch_size", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"{name} must be a whole number, got {value!r}.")
        if self.seed < 0:
            raise InputError(f"seed must be 0 or more, got {self.seed}.")
        for name in ("learning_rate", "weight_decay"):
            if not isinstance(getattr(self, name), int | float):
                raise InputError(f"{name} must be a number, got {getattr(self, name)!r}.")
        check_settings(self, epochs=COUNT, batch_size=COUNT, learning_rate=LEARNING_RATE,
                       weight_decay=WEIGHT_DECAY)


@dataclass
class AdapterTrainResult:
    """What training made: the saved folder (``name`` is its folder name, what Load Prompt
    Adapter lists) and how it went (``losses``: one per optimiser step)."""

    folder: Path
    name: str
    base: str  # the adapter it started from
    steps: int
    epochs: int
    losses: list[float]
    pairs: int
    seconds: float

    def epoch_loss(self, epoch: int) -> float:
        """The mean step loss of ``epoch`` (0-based; -1 the last): steadier than one step's."""
        per = self.steps // self.epochs
        epoch = epoch % self.epochs
        return math.fsum(self.losses[epoch * per:(epoch + 1) * per]) / per

    def summary(self) -> str:
        return (f"Trained prompt adapter '{self.name}' from '{self.base}' on {self.pairs} "
                f"pair(s): {self.epochs} epoch(s), {self.steps} step(s) in "
                f"{self.seconds:.1f} s; loss {self.epoch_loss(0):.4f} -> "
                f"{self.epoch_loss(-1):.4f} (mean of the first and the last epoch).\n"
                f"Saved to {self.folder}. Load it with Load Prompt Adapter (refresh the list "
                "first) and connect it to Prompt Adapt; Prompt Reward tells whether it helps.")


def train_adapter(adapter: PromptAdapter, pairs: Sequence[Sequence[str]], out_folder: Path,
                  *, settings: AdapterTrainSettings | None = None) -> AdapterTrainResult:
    """Fine-tune a copy of ``adapter`` on ``pairs`` ((plain, preferred), e.g. `read_pairs`)
    and save it as the new adapter folder ``out_folder``.

    Every pair is checked before any training (InputError naming it: malformed, or too long
    for the adapter), and ``out_folder`` must not exist yet (InputError). The steps are the
    pairs in a seeded shuffle each epoch, ``batch_size`` at a time; progress advances per step,
    Cancel is checked between steps. The folder's ``intenttuner_adapter.json`` records the
    base adapter, the settings and the final loss (`PromptAdapter.metadata` when loaded).
    """
    settings = settings or AdapterTrainSettings()
    pairs = list(pairs)
    if not pairs:
        raise InputError("No prompt pairs to train on: write one pair per line as "
                         "'plain prompt => preferred prompt'.")
    out_folder = Path(out_folder)
    if out_folder.exists() and (not out_folder.is_dir() or any(out_folder.iterdir())):
        raise InputError(f"{out_folder} already exists: choose another name for the adapter, "
                         "or delete the old one first.")  # before training, not after it
    tokenizer = adapter.tokenizer
    examples = encode_pairs(pairs, tokenizer, adapter.max_prompt_tokens)
    per_epoch = math.ceil(len(examples) / settings.batch_size)
    total = per_epoch * settings.epochs
    runtime = get_runtime()
    runtime.check_interrupted()
    start = time.monotonic()
    source = adapter.module()
    device = next(source.parameters()).device
    # fork_rng: the seed drives this run's shuffle and dropout without resetting the host's
    # generators (ComfyUI's samplers draw from them too).
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        model = copy.deepcopy(source).float().train()
        optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                      weight_decay=settings.weight_decay)
        losses: list[float] = []
        with runtime.progress(total=total, desc=f"Training prompt adapter {out_folder.name}",
                              unit="step") as bar:
            for _ in range(settings.epochs):
                order = torch.randperm(len(examples)).tolist()
                for first in range(0, len(order), settings.batch_size):
                    runtime.check_interrupted()
                    chosen = order[first:first + settings.batch_size]
                    batch = collate([examples[i] for i in chosen], tokenizer.pad_token_id)
                    losses.append(_step(model, optimiser, batch, device))
                    bar.update(1)
    model.eval()
    runtime.check_interrupted()  # the last chance to stop before a folder appears
    result = AdapterTrainResult(folder=out_folder, name=out_folder.name, base=adapter.name,
                                steps=total, epochs=settings.epochs, losses=losses,
                                pairs=len(examples), seconds=0.0)
    metadata = {"base": adapter.name, "pairs": len(examples), "epochs": settings.epochs,
                "learning_rate": settings.learning_rate, "batch_size": settings.batch_size,
                "seed": settings.seed, "weight_decay": settings.weight_decay, "steps": total,
                "final_loss": result.epoch_loss(-1),
                "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    save_adapter(model, tokenizer, out_folder, metadata)
    result.seconds = time.monotonic() - start
    return result


def _step(model: torch.nn.Module, optimiser: torch.optim.Optimizer,
          batch: dict[str, torch.Tensor], device: torch.device) -> float:
    """One optimiser step on ``batch``; its loss (the mean over the learnt tokens)."""
    batch = {name: tensor.to(device) for name, tensor in batch.items()}
    loss = model(**batch).loss
    if not torch.isfinite(loss):
        raise TrainingDivergedError(
            f"The prompt adapter's training loss became {loss.item()}, so nothing was saved: "
            "train again with a lower learning rate (the default 5e-05 suits Promptist).")
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.item()
