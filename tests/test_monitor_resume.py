"""How a monitored run's sessions end early and go on (tiny SD 1.5 runs on the CPU): Stop from
the panel, a stop before the first step, a cancelled run resumed into its own folder (its
history, best copy and marks carry over), and what a sample point's checkpoint costs."""

from __future__ import annotations

import time

import pytest

from intenttuner.monitor import api, feedback, history, registry
from intenttuner.monitor import monitor as monitor_module
from intenttuner.monitor.events import END, SAMPLE, START, STEP
from intenttuner.monitor.monitor import NOTHING_TRAINED, TrainingMonitor
from intenttuner.monitor.runlog import read_records
from intenttuner.runtime import get_runtime
from intenttuner.training import checkpoints as ckpt
from intenttuner.training import trainer
from intenttuner.training.trainer import train
from tests.monitor_run_helpers import monitored, of, spec_of
from tests.training_run_helpers import assert_clean, fast_config
from tests.training_run_helpers import training_set as make_set

pytestmark = pytest.mark.usefixtures("one_thread")


def test_stop_from_the_panel_keeps_the_best_of_the_steps_done(models_root, base, tmp_path):
    """Stop pressed during step 2 (a sample point): the run ends there, the final file's point
    reuses step 2's samples (same weights), and the best is step 2's own checkpoint."""
    items = make_set(tmp_path)
    events = []

    def emit(event, data):
        events.append((event, data))
        if event == STEP and data["step"] == 2:
            assert registry.request_stop("halt").stopping

    monitor = TrainingMonitor(spec_of(), emit=emit)
    result = train(fast_config(items, max_train_steps=8, run_name="halt"), base, items,
                   observer=monitor)
    assert result.stopped and result.steps == 2
    first, final = of(events, SAMPLE)
    assert (first["step"], first["final"], final["step"], final["final"]) == (2, False, 2, True)
    assert final["images"] == first["images"] and final["checkpoint"] == "halt.safetensors"
    assert sorted(p.name for p in (result.run_dir / "samples").iterdir()) == ["step000002"]
    (end,) = of(events, END)
    assert end["status"] == "stopped" and end["best"]["step"] == 2
    best_file = models_root / "loras" / "halt_best.safetensors"
    checkpoint = ckpt.checkpoint_path(result.run_dir, "halt", 2)
    assert best_file.read_bytes() == checkpoint.read_bytes()


@pytest.mark.parametrize("scored", [True, False])
def test_a_stop_before_the_first_step_names_no_best(models_root, base, tmp_path, scored):
    """Nothing was trained: the untrained final file is neither sampled nor the best (LoRA
    Train's best outputs then fall back to the final file), and the report says why."""
    items = make_set(tmp_path)
    events = []

    def emit(event, data):
        events.append((event, data))
        if event == START:
            registry.request_stop("never")

    monitor = TrainingMonitor(spec_of() if scored else None, emit=emit)
    result = train(fast_config(items, max_train_steps=8, run_name="never"), base, items,
                   observer=monitor)
    assert result.steps == 0 and result.stopped and [e for e, _ in events] == [START, END]
    (end,) = of(events, END)
    assert end["best"] is None and monitor.best is None and NOTHING_TRAINED in end["message"]
    assert f"Best checkpoint: none: {NOTHING_TRAINED}." in monitor.summary_lines()
    assert not list((models_root / "loras").glob("never_best*"))


SAVE_SECONDS = 4.0  # how long the patched checkpoint save of a point takes


def test_a_checkpoint_saved_for_a_point_counts_as_monitoring(models_root, base, tmp_path,
                                                             monkeypatch):
    items = make_set(tmp_path)
    real = trainer.save_step_checkpoint

    def slow_save(run):
        time.sleep(SAVE_SECONDS)
        real(run)

    monkeypatch.setattr(trainer, "save_step_checkpoint", slow_save)
    monitor, events = monitored(spec_of())
    train(fast_config(items, max_train_steps=3, run_name="cost"), base, items, observer=monitor)
    point, final = of(events, SAMPLE)
    # The final file is no extra: its point costs only its sampling (well under SAVE_SECONDS
    # even on a loaded machine), the other one that and the save.
    assert point["seconds"] >= SAVE_SECONDS > final["seconds"]
    (end,) = of(events, END)
    assert end["monitor_seconds"] == pytest.approx(point["seconds"] + final["seconds"])
    assert end["overhead"] >= SAVE_SECONDS / end["total_seconds"]


class Interrupted(KeyboardInterrupt):
    """The user's Cancel (the plain runtime counts Ctrl-C)."""


@pytest.mark.parametrize("stop_at_once", [False, True])
def test_a_cancelled_run_resumed_in_its_folder_keeps_its_history_and_best(
        models_root, base, tmp_path, monkeypatch, stop_at_once):
    """Cancelled at step 3 after the step-2 point (score 0.9), resumed from its step-3
    checkpoint: the earlier records stay (without their "end"), the step-4 point (0.5) does
    not beat step 2, the final one (0.95) does and replaces the same best file; stopped at
    once instead, the resumed run's final file (step 3, 0.5) is still sampled and step 2 stays
    the best. Either way a step-2 image can still be marked."""
    items = make_set(tmp_path)
    loras = models_root / "loras"
    scores = iter([0.9, 0.5] if stop_at_once else [0.9, 0.5, 0.95])
    monkeypatch.setattr(monitor_module, "combined", lambda *_: next(scores))
    cancel = []

    def check_interrupted():
        if cancel:
            raise Interrupted()

    monkeypatch.setattr(get_runtime(), "check_interrupted", check_interrupted)
    config = fast_config(items, max_train_steps=6, run_name="again")
    first = TrainingMonitor(spec_of(), emit=lambda e, d: cancel.append(1) if (
        e == STEP and d["step"] == 3) else None)
    with pytest.raises(Interrupted):
        train(config, base, items, observer=first)
    cancel.clear()
    assert first.best["lora_name"] == "again_best.safetensors"
    run_dir = loras / "again"
    events = []

    def emit(event, data):
        events.append((event, data))
        if event == START and stop_at_once:
            registry.request_stop("again")

    monitor = TrainingMonitor(spec_of(), emit=emit)
    checkpoint = ckpt.checkpoint_path(run_dir, "again", 3)
    result = train(config.model_copy(update={"resume_from": str(checkpoint)}), base, items,
                   observer=monitor)
    assert result.run_dir == run_dir and result.steps == (3 if stop_at_once else 6)

    records = [r.get("event", r.get("step")) for r in read_records(run_dir)]
    later = ["sample", "end"] if stop_at_once else [4, "sample", 5, 6, "sample", "end"]
    assert records == ["start", 1, 2, "sample", 3, "start", *later]
    assert [p["step"] for p in monitor.points] == ([2, 3] if stop_at_once else [2, 4, 6])
    samples = of(events, SAMPLE)
    best_file = loras / "again_best.safetensors"
    assert samples[0]["best"]["step"] == 2 and samples[0]["best"]["path"] == str(best_file)
    (end,) = of(events, END)
    assert end["best"] == monitor.best and monitor.best["path"] == str(best_file)
    assert not (loras / "again_best-2.safetensors").exists()
    if stop_at_once:
        assert monitor.best["step"] == 2 and samples[0]["final"]
        assert best_file.read_bytes() == ckpt.checkpoint_path(run_dir, "again", 2).read_bytes()
    else:
        assert monitor.best["step"] == 6 and best_file.read_bytes() == \
            result.lora_path.read_bytes()

    answer = api.run_history("again")
    assert [e["event"] for e in answer["events"]][:6] == [START, STEP, STEP, SAMPLE, STEP, START]
    start, last_end = history.last_attempt(read_records(run_dir))
    assert start["start_step"] == 3 and last_end["status"] == end["status"]
    assert history.summary(run_dir)["best"]["step"] == monitor.best["step"]
    image = "samples/step000002/stability-000.png"
    assert feedback.add_mark(run_dir, image, "good")["step"] == 2
    assert api.mark_sample({"run": "again", "image": image, "mark": "bad"})["marks"] == {
        image: "bad"}
    assert_clean(base)
