"""The best checkpoint by intent: the combined score of a sample point, the point that has the
highest, and its copy beside the run's final LoRA (``models/loras/<run>_best.safetensors``).

The combined score is the weighted mean of the metrics that apply, leakage counting as
``1 - leakage`` (lower leakage is better): a metric that does not apply, has no score, or has
weight 0 is left out of the sum and of the weights, so it neither helps nor hurts.

The copy is made whenever a new best appears (a later pruning of old checkpoints cannot lose
it) and never lands on a file that existed before: when ``<run>_best.safetensors`` is taken
(another run's final LoRA named so, or a best copy of an earlier session), this run uses
``<run>_best-2.safetensors``, ``-3``... A name some run folder claims is taken too. The one
file taken over is the best copy an earlier session of the same run made, which its sample
records name (`BestCopy.adopt`): a run resumed in its own folder keeps one best file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..training.lora_file import write_new_file

METRICS = ("stability", "controllability", "leakage")
LOWER_IS_BETTER = frozenset({"leakage"})
MAX_SUFFIX = 10_000


def combined(scores: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float]) -> float | None:
    """The combined score of ``scores`` (a SAMPLE event's ``scores``: metric -> {applicable,
    score, ...}) under ``weights`` (metric -> weight); None when no weighted metric has one."""
    total = weight_sum = 0.0
    for metric, weight in weights.items():
        result = scores.get(metric) or {}
        value = result.get("score")
        if not weight or not result.get("applicable") or not _finite(value):
            continue
        total += weight * (1.0 - value if metric in LOWER_IS_BETTER else value)
        weight_sum += weight
    return total / weight_sum if weight_sum else None


def formula(weights: Mapping[str, float], metrics: Sequence[str] = METRICS) -> str:
    """The combined score as text, over the weighted ``metrics`` (those a plan can measure):
    "best = (1*stability + 1*(1 - leakage)) / 2 over the applicable metrics"."""
    terms = [(m, float(weights.get(m, 0))) for m in metrics if weights.get(m)]
    if not terms:
        return "no intent score: the final LoRA is the best"
    parts = [f"{w:g}*{'(1 - ' + m + ')' if m in LOWER_IS_BETTER else m}" for m, w in terms]
    total = sum(w for _, w in terms)
    return f"best = ({' + '.join(parts)}) / {total:g} over the applicable metrics"


def pick(points: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The point (SAMPLE payload) with the highest combined ``score``; of equal ones the
    earliest (fewer steps: the same result for less training); None when none has a score."""
    best = None
    for point in points:
        score = point.get("score")
        if _finite(score) and (best is None or score > best["score"]):
            best = point
    return best


def taken(path: Path) -> bool:
    """``path`` (``<name>.safetensors`` in a LoRA folder) exists, or a run folder ``<name>/``
    beside it will write it as its final file."""
    return path.exists() or path.with_suffix("").is_dir()


def best_path(loras_dir: Path, run_name: str) -> Path:
    """The first free ``<run>_best.safetensors``, ``<run>_best-2.safetensors``..."""
    for n in range(1, MAX_SUFFIX):
        path = loras_dir / f"{run_name}_best{'' if n == 1 else f'-{n}'}.safetensors"
        if not taken(path):
            return path
    raise InputError(f"No free name '{run_name}_best-N.safetensors' in {loras_dir}; remove old "
                     "best copies or choose another run_name.")


def copy_best(src: Path, dst: Path, replace: bool = False) -> Path:
    """Copy ``src`` to ``dst`` atomically (readers see the old file or the whole new one);
    without ``replace`` an existing ``dst`` is refused (InputError)."""
    write_new_file(dst, Path(src).read_bytes(), replace=replace)
    return dst


class BestCopy:
    """A run's best copy: its path, chosen at run start, and the copies made to it. Only a
    file this object wrote is ever replaced."""

    def __init__(self, loras_dir: Path, run_name: str):
        self.loras_dir, self.run_name = Path(loras_dir), run_name
        self.path = best_path(self.loras_dir, run_name)
        self.written = False

    def adopt(self, path: str | Path) -> bool:
        """Go on with ``path``, the best copy an earlier session of this run made (its sample
        records name it), instead of a new name beside it; later bests replace it. Only an
        existing file with one of this run's best names in this LoRA folder is taken over
        (False otherwise: the records may be stale, and another's file is never replaced)."""
        path = Path(path)
        own = re.fullmatch(rf"{re.escape(self.run_name)}_best(-[0-9]+)?\.safetensors", path.name)
        if not own or not path.is_file() or path.parent.resolve() != self.loras_dir.resolve():
            return False
        self.path, self.written = path, True
        return True

    def update(self, src: Path) -> Path:
        """Make ``src`` the best copy; returns its path (moved on when another file took the
        chosen name since the run started)."""
        if not self.written:
            for _ in range(3):  # a file appearing between the check and the write: next name
                if taken(self.path):
                    self.path = best_path(self.loras_dir, self.run_name)
                try:
                    copy_best(src, self.path)
                    break
                except InputError:
                    continue
            else:
                raise InputError(f"Could not claim a best copy name beside {self.path}.")
            self.written = True
            return self.path
        return copy_best(src, self.path, replace=True)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
