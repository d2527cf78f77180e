"""Checkpoints of a run: a loadable LoRA file plus the state that continues training exactly.

``<run_dir>/<run>-step000100.safetensors`` is a complete kohya LoRA (ComfyUI lists it, so a
checkpoint can be tried while the run goes on). Beside it, ``<run>-step000100.train-state``
(``torch.save`` of tensors, numbers and dicts only, read back with ``weights_only=True``) holds
what the LoRA file cannot: the exact fp32 adapters, the optimizer and schedule, the step and
batch position, and the generator. Not a ``.pt``: ComfyUI lists every ``.pt`` under
models/loras as a LoRA.

The state is written first, the LoRA file last, each atomically (`lora_file.write_new_file`):
a checkpoint counts only when both files are there, so a crash or a full disk while saving
leaves the earlier checkpoints as they were and no half checkpoint that looks whole.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import torch

from ..errors import InputError
from .loop import TrainContext
from .lora_file import save_lora_file, write_new_file
from .lora_setup import adapter_state, load_adapter_state

log = logging.getLogger(__name__)

STATE_SUFFIX = ".train-state"
STATE_FORMAT = 1
_STEP = re.compile(r"-step(\d{6,})$")
# Settings a checkpoint's adapters and batch order depend on: resuming with others would not
# continue the same run (the adapters would not even fit for the first four).
NETWORK_SETTINGS = ("rank", "conv_rank", "train_text_encoder", "alpha", "conv_alpha")
ORDER_SETTINGS = ("seed", "batch_size", "gradient_accumulation_steps", "flip", "buckets",
                  "resolution", "caption_dropout")


def checkpoint_path(run_dir: Path, run: str, step: int) -> Path:
    return run_dir / f"{run}-step{step:06d}.safetensors"


def state_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(STATE_SUFFIX)


def checkpoint_step(checkpoint: Path) -> int | None:
    match = _STEP.search(checkpoint.stem)
    return int(match[1]) if match else None


def list_checkpoints(run_dir: Path, run: str) -> list[Path]:
    """The complete checkpoints of run ``run`` in ``run_dir`` (LoRA file and state), oldest
    first."""
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.glob(f"{glob_escape(run)}-step*.safetensors")
             if checkpoint_step(p) is not None and state_path(p).is_file()
             and p.stem.rsplit("-step", 1)[0] == run]
    return sorted(found, key=checkpoint_step)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def training_state(ctx: TrainContext) -> dict:
    """Everything that continues ``ctx`` exactly from its last finished step."""
    epoch, done = ctx.last_position
    state = {
        "format": STATE_FORMAT,
        "step": ctx.step,
        "epoch": epoch,
        "batches_done": done,
        "world_size": ctx.dist.world_size,
        "settings": {k: getattr(ctx.config, k) for k in NETWORK_SETTINGS + ORDER_SETTINGS},
        "adapters": adapter_state(ctx.setup),
        "optimizer": ctx.optimizer.state_dict(),
        "schedule": ctx.schedule.state_dict(),
        "scaler": ctx.scaler.state_dict() if ctx.scaler else {},
        "generator": ctx.last_generator_state.clone(),
        # Stored for completeness; nothing in training draws from torch's global generator
        # (all noise comes from `generator`), so resuming does not touch the host's RNG.
        "torch_rng": torch.get_rng_state(),
    }
    return state


def restore_state(ctx: TrainContext, state: dict, source: Path) -> list[str]:
    """Put a saved state back into a freshly built ``ctx``; returns warnings about settings
    that differ from the checkpoint's (the run then continues, but not identically)."""
    settings = state.get("settings", {})
    changed = [k for k in NETWORK_SETTINGS if k in settings
               and settings[k] != getattr(ctx.config, k)]
    if changed:
        raise InputError(f"resume_from {source}: the checkpoint was trained with "
                         + ", ".join(f"{k}={settings[k]!r}" for k in changed)
                         + "; set the same values (its run folder's config.json has them).")
    warnings = [f"resuming {source.name} with {k}={getattr(ctx.config, k)!r} instead of "
                f"{settings[k]!r}: the run continues, but not exactly as it would have"
                for k in ORDER_SETTINGS if k in settings and settings[k] != getattr(ctx.config, k)]
    if state.get("world_size", 1) != ctx.dist.world_size:
        warnings.append(f"resuming {source.name} on {ctx.dist.world_size} process(es) instead of "
                        f"{state['world_size']}: the batch order differs from then on")
    load_adapter_state(ctx.setup, state["adapters"])
    ctx.optimizer.load_state_dict(state["optimizer"])
    ctx.schedule.load_state_dict(state["schedule"])
    if ctx.scaler and state.get("scaler"):
        ctx.scaler.load_state_dict(state["scaler"])
    ctx.generator.set_state(state["generator"])
    ctx.step = int(state["step"])
    ctx.stream.seek(int(state["epoch"]), int(state["batches_done"]))
    ctx.mark_step_done()
    return warnings


def write_state(path: Path, state: dict, replace: bool = False) -> None:
    """``torch.save`` into memory, then one atomic file (disk full -> DiskFullError)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_new_file(path, buffer.getvalue(), replace=replace)


def read_state(checkpoint: Path) -> dict:
    """The training state beside ``checkpoint``; InputError when it is missing or unreadable."""
    path = state_path(checkpoint)
    if not path.is_file():
        raise InputError(f"resume_from {checkpoint}: its training state {path.name} is missing "
                         "(only checkpoints saved during a run can be resumed, not the final "
                         "LoRA file). Choose a <run>-stepNNNNNN.safetensors in the run folder.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise InputError(f"resume_from {checkpoint}: {path.name} cannot be read ({exc}); "
                         "resume from an earlier checkpoint.") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise InputError(f"resume_from {checkpoint}: {path.name} is not a training state this "
                         "IntentTuner writes; resume from another checkpoint.")
    return state


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str],
                    state: dict) -> Path:
    """Write the checkpoint ``path`` (LoRA file) and its state (see the module docstring).
    DiskFullError (from either file) leaves nothing of this checkpoint behind."""
    if path.exists():
        raise InputError(f"{path} already exists; a checkpoint is never replaced.")
    # A state file without its LoRA file is a leftover of a process killed between the two
    # writes (never a checkpoint: list_checkpoints ignores it), so it may be replaced.
    write_state(state_path(path), state, replace=True)
    try:
        save_lora_file(path, tensors, metadata)
    except BaseException:
        state_path(path).unlink(missing_ok=True)
        raise
    return path


def prune_checkpoints(run_dir: Path, run: str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (0: keep all); returns those deleted."""
    if not keep:
        return []
    old = list_checkpoints(run_dir, run)[:-keep]
    for checkpoint in old:
        # The LoRA file goes first: a state file without its LoRA is not a checkpoint.
        checkpoint.unlink(missing_ok=True)
        state_path(checkpoint).unlink(missing_ok=True)
        log.info("removed old checkpoint %s", checkpoint.name)
    return old

