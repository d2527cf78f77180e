"""Progress of a headless run: one tqdm bar per stage, the stage's name as its description,
left on screen with the stage's time when it ends.

The library's own progress (``runtime.progress(total, desc)``: images detected, steps trained,
latents cached...) is drawn on the current stage's bar: the bar takes the task's total and
shows its description after the count, so each stage reads as one line however many tasks it
runs. The stages' seconds are kept for the run's summary.

    runtime = StageRuntime(models_dir, output_dir)
    with Stages(["detect concepts", ...], runtime, show=True) as stages:
        with stages("detect concepts"):
            detect_concepts(...)  # its "Detecting" bar fills the stage's bar
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..runtime import TorchRuntime


class StageRuntime(TorchRuntime):
    """The plain-torch runtime, its progress bars drawn on the current stage's bar."""

    name = "torch (headless run)"

    def __init__(self, models_dir: Any = None, output_dir: Any = None):
        super().__init__(models_dir=models_dir, output_dir=output_dir)
        self.bar: Any = None  # the current stage's tqdm bar; None: no progress shown

    def progress(self, total: int | None, desc: str, unit: str = "it") -> StageTask:
        return StageTask(self.bar, total, desc, unit)


class StageTask:
    """One library task on the stage's bar (the interface of `runtime.Progress`)."""

    def __init__(self, bar: Any, total: int | None, desc: str, unit: str):
        self.bar, self.total, self.current = bar, total, 0
        if bar is not None:
            bar.unit, bar.unit_scale = unit, unit == "B"
            bar.reset(total=total)
            bar.set_postfix_str(desc, refresh=True)

    def update(self, n: int = 1) -> None:
        self.current += n
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        """The stage's bar stays until the stage ends."""

    def __enter__(self) -> StageTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Stages:
    """The run's stages in order: a bar for each (see the module docstring) and its time."""

    def __init__(self, names: Sequence[str], runtime: StageRuntime, show: bool):
        self.names, self.runtime, self.show = list(names), runtime, show
        self.seconds: dict[str, float] = {}
        self._redirect: contextlib.ExitStack | None = None

    def __enter__(self) -> Stages:
        self._redirect = contextlib.ExitStack()
        if self.show:  # log lines printed above the bars instead of through them
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(self, *exc: object) -> None:
        self._redirect.close()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        from tqdm.auto import tqdm

        number = self.names.index(name) + 1
        bar = tqdm(total=None, desc=f"[{number}/{len(self.names)}] {name}", leave=True,
                   dynamic_ncols=True, disable=not self.show)
        self.runtime.bar = bar if self.show else None
        started, ended = time.perf_counter(), "failed after"
        try:
            yield
            ended = "done in"
        finally:
            self.seconds[name] = time.perf_counter() - started
            bar.set_postfix_str(f"{ended} {self.seconds[name]:.1f} s", refresh=False)
            bar.close()
            self.runtime.bar = None
