"""Smoke check of the model stack: for every model family, write a tiny random model in the real
on-disk format, load it through the real loader (the same path real weights take) and run it
once on a synthetic input. No download, no GPU needed.

    python -m intenttuner smoke [--models-dir DIR]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .families import FAMILIES
from .loading import load_model
from .runtime import TorchRuntime, get_runtime, set_runtime
from .tiny import TINY_BUILDERS

log = logging.getLogger(__name__)


@dataclass
class SmokeResult:
    family: str
    file: str
    build_s: float
    load_s: float
    run_s: float
    output: str


def run_smoke(models_dir: Path) -> list[SmokeResult]:
    """Build, load and run a tiny model of each family under ``models_dir``."""
    previous = get_runtime()
    set_runtime(TorchRuntime(models_dir=models_dir))
    try:
        return [_smoke_family(name) for name in FAMILIES]
    finally:
        set_runtime(previous)


def _smoke_family(name: str) -> SmokeResult:
    family = FAMILIES[name]
    folder = get_runtime().download_dir(family.folder)
    started = time.perf_counter()
    path = TINY_BUILDERS[name](folder)
    built = time.perf_counter()
    model = load_model(name, path.relative_to(folder).as_posix())
    loaded = time.perf_counter()
    output = family.exercise(model) if family.exercise else "(loaded)"
    ran = time.perf_counter()
    return SmokeResult(name, str(path), built - started, loaded - built, ran - loaded, output)


def format_table(results: list[SmokeResult]) -> str:
    rows = [("family", "build s", "load s", "run s", "output", "file")]
    rows += [(r.family, f"{r.build_s:.2f}", f"{r.load_s:.2f}", f"{r.run_s:.2f}", r.output,
              r.file) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " +
                     row[5] for row in rows)
