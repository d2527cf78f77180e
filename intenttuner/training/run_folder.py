"""Where a run writes: its name, ``models/loras/<run>.safetensors`` and ``models/loras/<run>/``.

A run never replaces anything: when ``<run>.safetensors`` or the folder ``<run>/`` exists, the
run takes ``<run>-2``, ``<run>-3``... (the folder is claimed with an exclusive mkdir, so two
runs started at once cannot share it). A resumed run continues in its checkpoint's own folder
while that run's final file does not exist yet; once it does, the continuation is a new run.

The run folder holds ``config.json`` (the exact settings: ``python -m intenttuner train`` runs
it again), ``metrics.jsonl`` (one JSON object per step, and the training monitor's event
records) and the checkpoints.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..dataset.naming import MAX_NAME, slug
from ..dataset.training_set import write_text_atomic
from ..errors import InputError
from ..runtime import get_runtime
from .config import TrainConfig

METRICS_FILE = "metrics.jsonl"
PATH_PARTS = ("/", "\\", "..", ":", "\0")  # a run name holding one is a path, refused
MAX_SUFFIX = 10_000


@dataclass(frozen=True)
class RunFolder:
    name: str
    loras_dir: Path

    @property
    def run_dir(self) -> Path:
        return self.loras_dir / self.name

    @property
    def lora_path(self) -> Path:
        return self.loras_dir / f"{self.name}.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_FILE


def loras_dir(config: TrainConfig) -> Path:
    if config.output_dir:
        return Path(config.output_dir).expanduser()
    return get_runtime().model_dirs("loras")[0]


def run_name(config: TrainConfig, training_set) -> str:
    """The run's base name: ``run_name``, or the training set's folder name, as a safe file
    name (ASCII letters, digits, ``_``, ``-``); path-like names are refused, not rewritten."""
    raw = config.run_name.strip()
    if raw and any(bad in raw for bad in PATH_PARTS):
        raise InputError(f"run_name {config.run_name!r} must be a plain name (no '/', '\\', "
                         "'..' or ':'): the LoRA always goes into the LoRA folder. Try "
                         f"{slug(raw, 'lora', MAX_NAME, lower=False)!r}.")
    if raw:
        name = slug(raw, "", MAX_NAME, lower=False)
        if not name:
            raise InputError(f"run_name {config.run_name!r} has no letters or digits that are "
                             "safe in a file name; use ASCII letters, digits, '_' or '-'.")
        return name
    return slug(Path(training_set.root).name if training_set.root else "", "lora", MAX_NAME,
                lower=False)


def claim_new(loras: Path, base: str) -> RunFolder:
    """The first free ``base``, ``base-2``, ``base-3``... whose folder this call created."""
    loras.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_SUFFIX):
        folder = RunFolder(base if n == 1 else f"{base}-{n}", loras)
        if folder.lora_path.exists():
            continue
        try:
            folder.run_dir.mkdir()
        except FileExistsError:
            continue
        return folder
    raise InputError(f"No free run name '{base}-N' in {loras}; choose another run_name.")


def new_run_folder(config: TrainConfig, training_set) -> RunFolder:
    return claim_new(loras_dir(config), run_name(config, training_set))


def checkpoint_file(config: TrainConfig) -> Path:
    """``config.resume_from`` as a path: absolute, or relative to the LoRA folder."""
    path = Path(config.resume_from).expanduser()
    if not path.is_absolute():
        path = loras_dir(config) / path
    if path.suffix != ".safetensors" or not path.is_file():
        raise InputError(f"resume_from {config.resume_from!r}: no checkpoint at {path}. Choose a "
                         "<run>-stepNNNNNN.safetensors file from a run folder in models/loras.")
    return path


def resumed_run_folder(checkpoint: Path, newest: bool) -> RunFolder:
    """The run folder a resume from ``checkpoint`` writes to: its own while that run has no
    final file and ``checkpoint`` is its ``newest`` (later checkpoints would be made again,
    and are never replaced), else a new run named after it."""
    run_dir = checkpoint.parent
    own = RunFolder(run_dir.name, run_dir.parent)
    if newest and not own.lora_path.exists():
        return own
    return claim_new(own.loras_dir, own.name)


def write_metrics(folder: RunFolder, record: dict) -> None:
    """Append one step's record to metrics.jsonl (non-finite numbers as null)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in record.items()}
    with folder.metrics_path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(clean) + "\n")


def read_metrics(path: Path, up_to_step: int) -> list[dict]:
    """The records of steps <= ``up_to_step`` in a metrics.jsonl, in file order: the trainer's
    step records and the monitor's event records (a "start" record counts at its
    ``start_step``: it has no step of its own). Damaged lines are skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text("utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        step = record.get("start_step" if record.get("event") == "start" else "step")
        if isinstance(step, int) and not isinstance(step, bool) and step <= up_to_step:
            records.append(record)
    return records


def is_step_record(record: dict) -> bool:
    """A trainer step record: the monitor's records carry an "event" key."""
    return "event" not in record


def restart_metrics(folder: RunFolder, records: list[dict]) -> None:
    """Rewrite metrics.jsonl with ``records`` (those up to the resumed checkpoint): a resumed
    run drops the steps after its checkpoint, which it is about to train again. The monitor's
    records of the earlier session stay (its sample points and their images are this run's
    history, which marks and the panel go on using), except its "end" record: that session
    did not end the run, this one goes on with it."""
    folder.run_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records if r.get("event") != "end")
    write_text_atomic(folder.metrics_path, text)  # the history before the checkpoint stays
