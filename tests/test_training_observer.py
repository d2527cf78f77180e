"""The trainer's observer hooks (`training.observer`) on the tiny model: their order, the
checkpoint on disk at every sample point, a stop between steps ending like a finished run,
Cancel and failures ending the run too, a stop before the first step, and a resume into a
new run that leaves the monitor's records behind."""

from __future__ import annotations

import json

import pytest
from peft.tuners.lora import LoraLayer

from intenttuner.dataset.training_set import TrainingSet
from intenttuner.errors import InputError
from intenttuner.runtime import get_runtime
from intenttuner.training import checkpoints as ckpt
from intenttuner.training.lora_file import read_lora_file
from intenttuner.training.observer import TrainObserver
from intenttuner.training.trainer import train
from tests.training_run_helpers import (
    assert_clean,
    fast_config,
    training_set,
)

pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(TrainObserver):
    """Writes down every hook call, and what was on disk and in the model at each point."""

    def __init__(self, every: int = 0, samples: bool = True, stop_after: int | None = None):
        self.sample_every_steps, self.samples, self.stop_after = every, samples, stop_after
        self.calls: list[tuple] = []
        self.points = []  # (point, its file existed, its state existed, LoRA layers in the UNet)
        self.done = 0
        self.end = None

    def run_started(self, start):
        self.start = start
        self.calls.append(("start", start.start_step, start.total_steps))

    def step_finished(self, info):
        self.done = info.step
        self.calls.append(("step", info.step))

    def checkpoint_ready(self, point):
        lora = any(isinstance(m, LoraLayer) for m in point.model.unet.modules())
        self.points.append((point, point.path.is_file(), ckpt.state_path(point.path).is_file(),
                            lora))
        self.calls.append(("point", point.step, point.final))

    def stop_requested(self):
        return self.stop_after is not None and self.done >= self.stop_after

    def run_ended(self, end):
        self.end = end
        self.calls.append(("end", end.status, end.step))


def steps(first: int, last: int) -> list[tuple]:
    return [("step", n) for n in range(first, last + 1)]


@pytest.mark.parametrize("save_every", [0, 2])
def test_hooks_come_in_order_with_each_points_checkpoint_on_disk(models_root, base, tmp_path,
                                                                 save_every):
    """Sample points every 2 of 5 steps: steps 2 and 4 get a checkpoint first (also when the
    periodic checkpoints fall on the same steps), the final file is the last point, and the
    caller's on_step still sees every step."""
    items = training_set(tmp_path)
    observer, seen = Recorder(every=2), []
    result = train(fast_config(items, max_train_steps=5, run_name="order",
                               save_every_steps=save_every),
                   base, items, on_step=lambda info: seen.append(info.step), observer=observer)
    assert observer.calls == [("start", 0, 5), *steps(1, 2), ("point", 2, False), *steps(3, 4),
                              ("point", 4, False), ("step", 5), ("point", 5, True),
                              ("end", "finished", 5)]
    assert seen == [1, 2, 3, 4, 5]
    run_dir = result.run_dir
    assert observer.start.run_dir == run_dir and observer.start.lora_path == result.lora_path
    assert [p.path for p, *_ in observer.points] == [ckpt.checkpoint_path(run_dir, "order", 2),
                                                     ckpt.checkpoint_path(run_dir, "order", 4),
                                                     result.lora_path]
    # Each checkpoint was complete on disk when its point came; the LoRA was in the model.
    assert [(file, state, lora) for _, file, state, lora in observer.points] == [
        (True, True, True), (True, True, True), (True, False, True)]
    assert [ckpt.checkpoint_step(p) for p in result.checkpoints] == [2, 4]
    # A checkpoint saved only for its point is timed (monitoring's cost); one save_every_steps
    # saved anyway, and the final file, cost the point nothing.
    assert [p.save_seconds > 0 for p, *_ in observer.points] == [not save_every] * 2 + [False]
    assert observer.end.lora_path == result.lora_path and not result.stopped
    assert_clean(base)


def test_no_sampling_wanted_saves_no_extra_checkpoints(models_root, base, tmp_path):
    items = training_set(tmp_path)
    observer = Recorder(every=2, samples=False)
    result = train(fast_config(items, max_train_steps=3, run_name="plain"), base, items,
                   observer=observer)
    assert observer.calls == [("start", 0, 3), *steps(1, 3), ("end", "finished", 3)]
    assert result.checkpoints == []


def test_a_stop_between_steps_ends_like_a_finished_run(models_root, base, tmp_path):
    """Stop asked after step 3 of 8 (just after the step-2 point): the final LoRA file holds
    the 3 steps done, its point comes, and the run ends "stopped"."""
    items = training_set(tmp_path)
    observer = Recorder(every=2, stop_after=3)
    result = train(fast_config(items, max_train_steps=8, run_name="halt"), base, items,
                   observer=observer)
    assert observer.calls == [("start", 0, 8), *steps(1, 2), ("point", 2, False), ("step", 3),
                              ("point", 3, True), ("end", "stopped", 3)]
    assert result.stopped and result.steps == 3 and len(result.losses) == 3
    _, metadata = read_lora_file(result.lora_path)
    assert metadata["ss_steps"] == "3" and metadata["ss_max_train_steps"] == "8"
    assert len((result.run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    assert observer.end.lora_path == result.lora_path
    assert_clean(base)


def test_a_stop_before_the_first_sample_point_keeps_the_steps_done(models_root, base, tmp_path):
    items = training_set(tmp_path)
    observer = Recorder(every=4, stop_after=1)
    result = train(fast_config(items, max_train_steps=8, run_name="early"), base, items,
                   observer=observer)
    assert observer.calls == [("start", 0, 8), ("step", 1), ("point", 1, True),
                              ("end", "stopped", 1)]
    assert result.stopped and result.steps == 1 and result.checkpoints == []
    assert read_lora_file(result.lora_path)[1]["ss_steps"] == "1"


def test_a_stop_before_the_first_step_has_no_point(models_root, base, tmp_path):
    """Nothing was trained: the final file holds the untrained LoRA, which is not sampled."""
    items = training_set(tmp_path)
    observer = Recorder(every=2, stop_after=0)
    result = train(fast_config(items, max_train_steps=8, run_name="never"), base, items,
                   observer=observer)
    assert observer.calls == [("start", 0, 8), ("end", "stopped", 0)]
    assert result.stopped and result.steps == 0 and result.lora_path.is_file()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, as the plain runtime's is_cancel sees it."""


@pytest.mark.parametrize(("error", "status"), [(Interrupted, "cancelled"),
                                               (RuntimeError, "failed")])
def test_cancel_and_failures_end_the_run_before_the_error_goes_on(models_root, base, tmp_path,
                                                                  monkeypatch, error, status):
    items = training_set(tmp_path)
    observer = Recorder(every=2)

    def check_interrupted():
        if observer.done == 3:
            raise error("stopped by the test")

    monkeypatch.setattr(get_runtime(), "check_interrupted", check_interrupted)
    with pytest.raises(error):
        train(fast_config(items, max_train_steps=6, run_name=status), base, items,
              observer=observer)
    assert observer.calls[-3:] == [("point", 2, False), ("step", 3), ("end", status, 3)]
    assert observer.end.lora_path is None and observer.end.error == "stopped by the test"
    run_dir = models_root / "loras" / status
    # As before the observer existed: the last finished step is kept as a checkpoint.
    assert [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(run_dir, status)] == [2, 3]
    assert not (models_root / "loras" / f"{status}.safetensors").exists()
    assert_clean(base)


def test_inputs_refused_before_the_run_starts_call_no_hook(models_root, base, tmp_path):
    items = training_set(tmp_path)
    observer = Recorder(every=2)
    with pytest.raises(InputError, match="no images"):
        train(fast_config(items), base, TrainingSet(), observer=observer)
    assert observer.calls == []


def test_resume_counts_only_step_records_as_losses(models_root, base, tmp_path):
    """The monitor's records share metrics.jsonl with the steps; a resume takes the losses of
    the step records up to its checkpoint. Continued as a new run (the first one has its final
    file), it leaves the first run's events behind: they name that run and its images. (In
    the run's own folder they stay: tests/test_monitor_resume.py.)"""
    items = training_set(tmp_path)
    config = fast_config(items, max_train_steps=4, save_every_steps=2, run_name="again")
    first = train(config, base, items)
    metrics = first.run_dir / "metrics.jsonl"
    events = [{"event": "start", "run": "again", "total_steps": 4, "start_step": 0},
              {"event": "sample", "run": "again", "step": 2, "score": 0.5, "loss": 99.0},
              {"event": "warning", "run": "again", "step": 1, "message": "x"},
              {"event": "end", "run": "again", "step": 4, "status": "finished"}]
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([json.dumps(events[0]), *lines[:2], json.dumps(events[1]),
                                  json.dumps(events[2]), *lines[2:], json.dumps(events[3])])
                       + "\n")
    resumed = train(config.model_copy(update={"resume_from": str(first.checkpoints[0])}),
                    base, items)
    assert resumed.run_name == "again-2" and len(resumed.losses) == 4
    assert resumed.losses[:2] == first.losses[:2]
    records = [json.loads(line) for line in
               (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert not any("event" in r for r in records)
