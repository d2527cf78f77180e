"""`TrainingMonitor`: the observer of a training run behind LoRA Train's panel and the command
line's ``--monitor-every``. It tells the run's story as ``intenttuner.train.*`` events (to
``emit``, the run folder's metrics.jsonl and TensorBoard), answers the panel's Stop, and, given
a `MonitorSpec`, samples the intent's evaluation prompts at every sample point, scores them and
keeps the best checkpoint by intent:

    run_started  -> START (the plan: metrics, concepts, formula, notes); registered for Stop;
                    resumed in its own folder, the earlier points and best copy go on (`resume`)
    step_finished -> STEP (+ ETA over the mean step time, monitoring included)
    checkpoint_ready -> images (samples/stepNNNNNN/<item>.png), scores, SAMPLE; a new best
                    is copied to <run>_best.safetensors at once (pruning cannot lose it)
    run_ended    -> END (status, best, overhead); unregistered

Sampling or scoring that fails costs the point its score (a WARNING says why), never the run;
the user's Cancel during a point still cancels. Without a spec, or with an intent that has
nothing to test, the run is monitored by its loss alone and the best is the final LoRA.

    monitor = TrainingMonitor(spec, emit=get_runtime().send_event)
    result = train(config, observer=monitor)
    monitor.best["path"], monitor.summary_lines()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from ..dataset.naming import MAX_NAME, slug
from ..evaluation.pairing import pair_images
from ..evaluation.types import Test
from ..runtime import get_runtime
from ..training.observer import CheckpointPoint, RunEnd, RunStart, TrainObserver
from ..training.report import step_event
from ..training.run_hooks import is_cancel, one_line
from . import registry, resume, sampling
from .best import BestCopy, combined, formula, pick
from .curves import curves_image
from .events import END, SAMPLE, START, STEP, WARNING, json_safe
from .grid import sample_grid, save_thumbnails
from .runlog import RunLog, read_records
from .scoring import (
    ScoreFn,
    claim_step_dir,
    plan_of,
    plan_summary,
    scorer,
    scores_payload,
    training_references,
    warnings_of,
)
from .settings import MonitorSpec
from .tensorboard_sink import TensorBoardSink, open_sink

log = logging.getLogger(__name__)

UNSCORED = "Training goes on; this point has no score."
LOSS_ONLY = ("loss only: no intent to sample and score the run by (connect a Training Monitor "
             "to LoRA Train, or pass --monitor-every on the command line)")
NOTHING_TRAINED = "stopped before the first step: nothing was trained"
Emit = Callable[[str, dict], None]
SaveThumbnails = Callable[[list, str], list[dict]]


class TrainingMonitor(TrainObserver):
    """Observes one run (see the module docstring). After it: ``points`` (the SAMPLE
    payloads), ``best`` (END's best: {step, score, lora_name, path, reason} or None),
    ``overhead`` (share of the wall time spent monitoring), ``status``, ``warnings``."""

    def __init__(self, spec: MonitorSpec | None, emit: Emit, node: str | None = None,
                 prompt_id: str | None = None, score_fn: ScoreFn | None = None,
                 save_thumbnails: SaveThumbnails | None = None):
        self.spec, self.node, self.prompt_id = spec, node, prompt_id
        self._emit_to, self._score_fn = emit, score_fn
        self._save_thumbnails = save_thumbnails
        # The plan first: an intent with nothing to test makes this a loss-only monitor
        # before the trainer asks whether to sample (no checkpoints saved for nothing).
        self.plan, self.notes = plan_of(spec) if spec is not None else (None, [LOSS_ONLY])
        self.samples = self.plan is not None
        self.sample_every_steps = spec.settings.sample_every_steps if self.samples else 0
        if self.samples and not self.sample_every_steps:
            self.notes.append("sample_every_steps is 0: the run is sampled at its end only")
        self.run: RunStart | None = None
        self.points: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.overhead = 0.0
        self.monitor_seconds = 0.0
        self.total_seconds = 0.0
        self.status: str | None = None
        self.message = ""  # END's message: how the run ended
        self.no_best = ""  # why ``best`` is None, when the run ended without one for a reason
        self.warnings: list[str] = []
        self._started = 0.0
        self._entry: registry.ActiveRun | None = None
        self._log: RunLog | None = None
        self._sink: TensorBoardSink | None = None
        self._best_copy: BestCopy | None = None
        self._best_point: dict[str, Any] | None = None  # the best point whose copy was made
        self._score: ScoreFn | None = None

    # -- the trainer's hooks ----------------------------------------------------------------
    def run_started(self, start: RunStart) -> None:
        self.run, self._started = start, time.perf_counter()
        self._log, self._sink = RunLog(start.run_dir), open_sink(start.run_dir)
        self._entry = registry.register(start.run_name, start.run_dir, self.node,
                                        self.prompt_id, start.total_steps)
        self._entry.update(start.start_step)
        if self.samples:
            self._best_copy = BestCopy(start.lora_path.parent, start.run_name)
            self._score = self._score_fn or scorer(self.spec, self._references(start))
            if start.start_step > 0:
                self._take_over(start)
        self._emit(START, {**self._who(), "prompt_id": self.prompt_id,
                           "total_steps": start.total_steps, "start_step": start.start_step,
                           "run_dir": str(start.run_dir), "monitor": self._plan_payload(),
                           "tensorboard": str(self._sink.log_dir) if self._sink else None})

    def step_finished(self, info) -> None:
        if self._entry is not None:
            self._entry.update(info.step)
        self._emit(STEP, {**self._who(), **step_event(info),
                          "eta_s": self._eta(info.step, info.total_steps)})

    def checkpoint_ready(self, point: CheckpointPoint) -> None:
        if not self.samples or self.run is None:
            return
        began = time.perf_counter()
        last = self.points[-1] if self.points else None
        if last is not None and last["step"] == point.step:
            # Stopped right after a sample point: the final file holds the very same weights.
            payload = {**last, **self._who(), "final": point.final,
                       "checkpoint": point.path.name, "warnings": []}
        else:
            payload = self._sample(point)
        self.points.append(payload)
        if pick(self.points) is payload:
            self._new_best(point, payload)
        if self._sink is not None and payload["images"]:
            self._sink_call(lambda: self._sink.add_grid(point.step, self.grid_image()))
        # Saving a checkpoint only for this point is monitoring's cost too.
        seconds = time.perf_counter() - began + point.save_seconds
        self.monitor_seconds += seconds
        # "best" (the run's best after this point) names the best copy, which a resumed
        # session takes over (`resume`).
        payload.update(seconds=seconds, overhead=self._overhead(), best=self.best)
        self._emit(SAMPLE, payload)

    def stop_requested(self) -> bool:
        return self._entry is not None and self._entry.stopping

    def run_ended(self, end: RunEnd) -> None:
        self.status = end.status
        self.total_seconds = time.perf_counter() - self._started if self.run else 0.0
        self.overhead = self._overhead()
        self.best = self._final_best(end)
        try:
            if self.run is not None:
                self.message = self._end_message(end)
                self._emit(END, {**self._who(), "status": end.status, "step": end.step,
                                 "best": self.best, "overhead": self.overhead,
                                 "monitor_seconds": self.monitor_seconds,
                                 "total_seconds": self.total_seconds, "message": self.message})
        finally:
            if self._sink is not None:
                self._sink_call(self._sink.close)
            if self._entry is not None:  # only our own entry: a refused register is not ours
                registry.unregister(self._entry.run)
                self._entry = None

    # -- what the node shows after the run --------------------------------------------------
    def curves_image(self) -> Image.Image:
        """Loss, lr and every score over the steps (`curves.curves_image` of metrics.jsonl)."""
        return curves_image(read_records(self.run.run_dir) if self.run else [])

    def grid_image(self) -> Image.Image:
        """The images of the last sample point that has any, with their prompts."""
        point = next((p for p in reversed(self.points) if p["images"]), None)
        if point is None or self.run is None:
            why = "no sample point yet" if self.samples else self.notes[0]
            return sample_grid([], [], f"{self.run.run_name if self.run else 'run'}: {why}")
        pictures, captions = [], []
        for image in point["images"]:
            with Image.open(self.run.run_dir / image["path"]) as picture:
                pictures.append(picture.convert("RGB"))
            captions.append(f"{image['test']}: {image['prompt']}")
        score = point["score"]
        title = (f"{self.run.run_name}, step {point['step']}: score "
                 + (f"{score:.3f}" if score is not None else "n/a"))
        return sample_grid(pictures, captions, title)

    def summary_lines(self) -> list[str]:
        """The monitor's lines of the node's report."""
        if self.samples:
            lines = [f"Monitor: {len(self.points)} sample point(s) of {len(self.plan.items)} "
                     f"image(s); monitoring took {self.overhead:.0%} of the run "
                     f"({self.monitor_seconds:.0f} s of {self.total_seconds:.0f} s)."]
        else:
            lines = ["Monitor: the loss only."]
        if self.best is not None:
            lines.append(f"Best checkpoint: {self.best['lora_name']} (step {self.best['step']}"
                         f"): {self.best['reason']}.")
        elif self.no_best:
            lines.append(f"Best checkpoint: none: {self.no_best}.")
        lines += [f"Monitor note: {note}" for note in self.notes]
        lines += [f"Monitor warning: {warning}" for warning in self.warnings]
        return lines

    # -- a sample point ---------------------------------------------------------------------
    def _sample(self, point: CheckpointPoint) -> dict[str, Any]:
        """Generate, save and score the plan at ``point``; failures leave the point unscored
        (each with a WARNING)."""
        step, warnings = point.step, []
        images, pictures, scores, score = [], [], {}, None
        try:
            settings = self.spec.settings
            size = settings.sample_size or self.run.config.resolution_for(point.model.kind)
            device = next(point.model.unet.parameters()).device
            pictures = sampling.generate(point.model, self.plan.items, settings, size, device)
            images = self._save_images(step, pictures, warnings)
        except Exception as exc:  # noqa: BLE001 - any failure of a point spares the run
            self._survive(exc, step, f"sampling at step {step} failed", warnings, UNSCORED)
            pictures = []
        if pictures:
            try:
                result = self._score(pair_images(self.plan, pictures), f"step {step}")
                scores = scores_payload(result)
                score = combined(scores, self.spec.settings.weights)
                warnings += warnings_of(result)
            except Exception as exc:  # noqa: BLE001
                self._survive(exc, step, f"scoring at step {step} failed", warnings,
                              UNSCORED)
        return {**self._who(), "step": step, "final": point.final,
                "checkpoint": point.path.name, "seconds": 0.0, "overhead": 0.0,
                "score": score, "scores": scores, "images": images, "warnings": warnings}

    def _save_images(self, step: int, pictures: list[Image.Image],
                     warnings: list[str]) -> list[dict[str, Any]]:
        """The full-size PNGs in the run folder, and UI thumbnails (when the host has a UI)."""
        folder = claim_step_dir(self.run.run_dir / "samples", step)
        refs: list[dict] = []
        try:
            save = self._save_thumbnails or get_runtime().save_ui_images
            refs = save_thumbnails(save, pictures, self.run.run_name)
        except Exception as exc:  # noqa: BLE001 - the PNGs are what counts
            self._survive(exc, step, f"the thumbnails of step {step} were not saved", warnings,
                          "The panel cannot show this point's images; the PNGs are in the run "
                          "folder.")
        if len(refs) != len(pictures):
            refs = [{} for _ in pictures]  # no UI (headless): the run folder PNGs only
        images = []
        for item, picture, ref in zip(self.plan.items, pictures, refs, strict=True):
            name = f"{slug(item.id, 'image', MAX_NAME, lower=False)}.png"
            picture.save(folder / name)
            images.append({**ref, "path": f"samples/{folder.name}/{name}", "item": item.id,
                           "test": item.test.value, "prompt": item.prompt, "seed": item.seed})
        return images

    def _take_over(self, start: RunStart) -> None:
        """Resumed in its own folder: the earlier sessions' points and best (`resume`)."""
        earlier = resume.take_over(start.run_dir, start.start_step, self._best_copy)
        self.points = earlier.points
        if earlier.best is not None:
            self._best_point = earlier.best
            self.best = self._best_entry(earlier.best, earlier.path)
        if earlier.note:
            self.notes.append(earlier.note)

    def _new_best(self, point: CheckpointPoint, payload: dict[str, Any]) -> None:
        try:
            path = self._best_copy.update(point.path)
        except Exception as exc:  # noqa: BLE001 - the run goes on; the last copy stays
            self._survive(exc, point.step, f"the best checkpoint (step {point.step}) could not "
                          "be copied", payload["warnings"], "The previous best copy stays.")
            return
        self._best_point = payload
        self.best = self._best_entry(payload, path)

    def _survive(self, exc: Exception, step: int, what: str, warnings: list[str],
                 then: str) -> None:
        """Turn a failure inside a point into a warning (``what`` failed, ``then`` what
        follows); the user's Cancel goes on (also one pressed while the point was failing for
        another reason)."""
        get_runtime().check_interrupted()
        if is_cancel(exc):
            raise exc
        log.warning("%s", what, exc_info=exc)
        message = f"{what}: {one_line(exc)}. {then}"
        warnings.append(message)
        self._warn(step, message)

    # -- payloads ---------------------------------------------------------------------------
    def _who(self) -> dict[str, Any]:
        return {"run": self.run.run_name if self.run else None, "node": self.node,
                "time": time.time()}

    def _plan_payload(self) -> dict[str, Any]:
        weights = self.spec.settings.weights if self.spec is not None else {}
        metrics, concepts = plan_summary(self.spec, self.plan) if self.samples else ([], {})
        return {"enabled": self.samples, "sample_every_steps": self.sample_every_steps,
                "images_per_point": len(self.plan.items) if self.samples else 0,
                "formula": formula(weights, metrics), "weights": weights,
                "metrics": metrics, "concepts": concepts, "notes": list(self.notes)}

    def _best_entry(self, point: dict[str, Any], path: Path) -> dict[str, Any]:
        scored = sum(p["score"] is not None for p in self.points)
        metrics = [m for m, r in point["scores"].items()
                   if r["applicable"] and r["score"] is not None]
        return {"step": point["step"], "score": point["score"], "lora_name": path.name,
                "path": str(path),
                "reason": f"the highest combined score, {point['score']:.3f}, of {scored} scored "
                          f"sample point(s); {formula(self.spec.settings.weights, metrics)}"}

    def _final_best(self, end: RunEnd) -> dict[str, Any] | None:
        """The best scored point's copy; else the final LoRA (a run that finished or was
        stopped without any intent score); None for a cancelled or failed run without one,
        and for a run stopped before its first step (``no_best`` says so)."""
        if self._best_point is not None:
            return self._best_entry(self._best_point, Path(self.best["path"]))
        if end.lora_path is None:
            return None
        if end.step == 0:  # its file is the untrained LoRA: LoRA Train falls back to it anyway
            self.no_best = NOTHING_TRAINED
            return None
        why = "no intent scores" + ("" if self.samples else f" ({self.notes[0]})")
        return {"step": end.step, "score": None, "lora_name": end.lora_path.name,
                "path": str(end.lora_path), "reason": f"{why}: the final LoRA"}

    def _end_message(self, end: RunEnd) -> str:
        total = self.run.total_steps
        text = f"Training {end.status} at step {end.step}/{total}"
        if end.error:
            return f"{text}: {end.error}"
        if self.best is None:
            return f"{text}; no best: {self.no_best}." if self.no_best else f"{text}."
        return f"{text}; best: {self.best['lora_name']} (step {self.best['step']})."

    def _eta(self, step: int, total: int) -> float | None:
        done = step - (self.run.start_step if self.run else 0)
        if done <= 0 or not self._started:
            return None
        return (time.perf_counter() - self._started) / done * max(total - step, 0)

    def _overhead(self) -> float:
        wall = time.perf_counter() - self._started if self._started else 0.0
        return min(1.0, self.monitor_seconds / wall) if wall > 0 else 0.0

    # -- where events go --------------------------------------------------------------------
    def _warn(self, step: int, message: str) -> None:
        self.warnings.append(message)
        self._emit(WARNING, {**self._who(), "step": step, "message": message})

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        """To the run folder's metrics.jsonl (the record the history is read from: a failure
        there is the run's), then TensorBoard and the live listener (their failures are
        logged: the run and its records go on without them)."""
        data = json_safe(payload)
        if self._log is not None:
            self._log.write(event, data)
        if self._sink is not None:
            self._sink_call(self._sink.write, event, data)
        try:
            self._emit_to(event, data)
        except Exception:  # noqa: BLE001
            log.exception("could not send the %s event", event)

    def _sink_call(self, method, *args) -> None:
        try:
            method(*args)
        except Exception:  # noqa: BLE001 - TensorBoard is a view; metrics.jsonl stays whole
            log.exception("TensorBoard writing failed; the run goes on without it")
            self._sink = None

    def _references(self, start: RunStart) -> list[Image.Image] | None:
        """Stability's reference images: the spec's, else the training set's originals."""
        if not any(item.test is Test.STABILITY for item in self.plan.items):
            return None
        if self.spec.reference_images is not None:
            return list(self.spec.reference_images)
        return training_references(start.training_set) or None

