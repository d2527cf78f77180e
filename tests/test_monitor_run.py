"""A real `TrainingMonitor` over tiny SD 1.5 runs (CPU): the real sampling path and the real
evaluation metrics with known-output stand-in models. Its events and their payloads, the files
it leaves in the run folder, failures that cost a point and not the run, Cancel, an intent with
nothing to test, two runs at once, the command line, half precision and SDXL. (Stop and resume:
tests/test_monitor_resume.py; sampling itself: tests/test_monitor_sampling.py.)"""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from intenttuner.intent.schema import Intent
from intenttuner.monitor import registry, sampling
from intenttuner.monitor.best import combined
from intenttuner.monitor.events import END, SAMPLE, START, STEP, WARNING
from intenttuner.monitor.grid import THUMBNAIL
from intenttuner.monitor.monitor import TrainingMonitor
from intenttuner.monitor.runlog import read_records
from intenttuner.training.trainer import train
from tests.evaluation_helpers import intent
from tests.monitor_run_helpers import SIZE, VINCENT, monitored, of, spec_of
from tests.training_run_helpers import (
    assert_clean,
    fast_config,
    load_tiny,
    training_set,
)

pytestmark = pytest.mark.usefixtures("one_thread")

START_KEYS = {"run", "node", "prompt_id", "time", "total_steps", "start_step", "run_dir",
              "monitor", "tensorboard"}
MONITOR_KEYS = {"enabled", "sample_every_steps", "images_per_point", "formula", "weights",
                "metrics", "concepts", "notes"}
STEP_KEYS = {"step", "total_steps", "loss", "lr", "epoch", "images_per_s", "run", "node", "time",
             "eta_s"}
SAMPLE_KEYS = {"run", "node", "time", "step", "final", "checkpoint", "seconds", "overhead",
               "score", "scores", "images", "warnings", "best"}
IMAGE_KEYS = {"filename", "subfolder", "type", "path", "item", "test", "prompt", "seed"}
END_KEYS = {"run", "node", "time", "status", "step", "best", "overhead", "monitor_seconds",
            "total_seconds", "message"}


class Thumbnails:
    """A UI that keeps what it was asked to show (ComfyUI's temp images, headless)."""

    def __init__(self):
        self.calls = []

    def __call__(self, images, prefix):
        self.calls.append((images, prefix))
        return [{"filename": f"{prefix}_{i}.png", "subfolder": "intenttuner", "type": "temp"}
                for i in range(len(images))]


def test_a_monitored_run_tells_its_story_in_events_and_files(models_root, base, tmp_path):
    items = training_set(tmp_path)
    thumbnails = Thumbnails()
    monitor, events = monitored(spec_of(), node="7", prompt_id="p1", save_thumbnails=thumbnails)
    result = train(fast_config(items, max_train_steps=4, run_name="story"), base, items,
                   observer=monitor)
    assert [e for e, _ in events] == [START, STEP, STEP, SAMPLE, STEP, STEP, SAMPLE, END]
    assert all(d["run"] == "story" and d["node"] == "7" for _, d in events)

    (start,) = of(events, START)
    assert set(start) == START_KEYS and set(start["monitor"]) == MONITOR_KEYS
    assert start["prompt_id"] == "p1" and start["run_dir"] == str(result.run_dir)
    assert (start["total_steps"], start["start_step"]) == (4, 0)
    plan = start["monitor"]
    assert plan["enabled"] and plan["sample_every_steps"] == 2 and plan["images_per_point"] == 4
    assert plan["metrics"] == ["stability", "controllability", "leakage"]
    assert plan["concepts"] == {"stability": ["face"], "controllability": ["hair colour"],
                                "leakage": ["necklace"]}
    assert plan["formula"].startswith("best = (1*stability + 1*controllability")
    assert (start["tensorboard"] is None) == (not (result.run_dir / "tensorboard").is_dir())

    steps = of(events, STEP)
    assert all(set(s) == STEP_KEYS for s in steps) and [s["step"] for s in steps] == [1, 2, 3, 4]
    assert [s["loss"] for s in steps] == result.losses
    assert all(s["eta_s"] >= 0 for s in steps) and steps[-1]["eta_s"] == 0

    samples = of(events, SAMPLE)
    assert [(s["step"], s["final"], s["checkpoint"]) for s in samples] == [
        (2, False, "story-step000002.safetensors"), (4, True, "story.safetensors")]
    for sample in samples:
        assert set(sample) == SAMPLE_KEYS and 0 <= sample["overhead"] <= 1
        assert set(sample["scores"]) == {"stability", "controllability", "leakage"}
        assert sample["scores"]["stability"]["concepts"].keys() == {"face"}
        assert sample["score"] == pytest.approx(combined(sample["scores"], spec_of().settings
                                                         .weights))
        assert [i["item"] for i in sample["images"]] == ["stability-000", "controllability-000",
                                                         "controllability-001", "leakage-000"]
        for image in sample["images"]:
            assert set(image) == IMAGE_KEYS
            assert image["path"] == f"samples/step{sample['step']:06d}/{image['item']}.png"
            with open(result.run_dir / image["path"], "rb") as png:
                assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert samples[0]["images"][1]["prompt"] != samples[0]["images"][2]["prompt"]
    assert [prefix for _, prefix in thumbnails.calls] == ["train/story", "train/story"]
    assert all(max(i.size) <= THUMBNAIL for images, _ in thumbnails.calls for i in images)

    (end,) = of(events, END)
    assert set(end) == END_KEYS and end["status"] == "finished" and end["step"] == 4
    assert 0 <= end["overhead"] <= 1 and end["monitor_seconds"] <= end["total_seconds"]
    assert end["best"] == monitor.best and monitor.best["lora_name"] == "story_best.safetensors"

    # metrics.jsonl: the trainer's 4 step records once, and each other event as emitted.
    records = read_records(result.run_dir)
    assert [r["event"] if "event" in r else r["step"] for r in records] == [
        "start", 1, 2, "sample", 3, 4, "sample", "end"]
    emitted = [{"event": e.rsplit(".", 1)[1], **d} for e, d in events if e != STEP]
    assert [r for r in records if "event" in r] == json.loads(json.dumps(emitted))
    assert monitor.points == samples and monitor.curves_image().size == (900, 560)
    assert monitor.grid_image().width > 2 * SIZE
    assert any("story_best.safetensors" in line for line in monitor.summary_lines())
    assert registry.get("story") is None
    assert_clean(base)


def test_a_failed_point_is_a_warning_and_training_goes_on(models_root, base, tmp_path,
                                                          monkeypatch):
    items = training_set(tmp_path)
    real, calls = sampling.generate, []

    def generate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(sampling, "generate", generate)
    monitor, events = monitored(spec_of())
    result = train(fast_config(items, max_train_steps=4, run_name="flaky"), base, items,
                   observer=monitor)
    assert result.steps == 4 and not result.stopped
    (warning,) = of(events, WARNING)
    assert warning["step"] == 2 and "sampling at step 2 failed: CUDA out of memory" in \
        warning["message"] and "Training goes on" in warning["message"]
    first, second = of(events, SAMPLE)
    assert first["score"] is None and first["images"] == [] and first["scores"] == {}
    assert first["warnings"] == [warning["message"]]
    assert second["score"] is not None and monitor.best["step"] == 4
    assert of(events, END)[0]["status"] == "finished"
    assert monitor.warnings == [warning["message"]]


class Interrupted(KeyboardInterrupt):
    """The user's Cancel (the plain runtime counts Ctrl-C)."""


def test_cancel_while_sampling_cancels_the_run(models_root, base, tmp_path, monkeypatch):
    items = training_set(tmp_path)

    def generate(*args, **kwargs):
        raise Interrupted()

    monkeypatch.setattr(sampling, "generate", generate)
    monitor, events = monitored(spec_of())
    with pytest.raises(Interrupted):
        train(fast_config(items, max_train_steps=4, run_name="cut"), base, items,
              observer=monitor)
    assert [e for e, _ in events] == [START, STEP, STEP, END]
    (end,) = of(events, END)
    assert end["status"] == "cancelled" and end["step"] == 2 and end["best"] is None
    assert registry.get("cut") is None and of(events, WARNING) == []
    assert_clean(base)


UNTESTABLE = {"description": "ohwx, his pose should change", "trigger_words": ["ohwx"],
              "domain": "portrait",
              "concepts": [{"name": "pose", "phrase": "pose", "granularity": "attribute",
                            "operation": "modify", "values": []}]}


@pytest.mark.parametrize("untestable", [False, True])
def test_nothing_to_test_is_monitored_by_the_loss(models_root, base, tmp_path, untestable):
    """No spec, or an intent whose only concept cannot be tested (a change without values):
    loss-only events, no samples, no extra checkpoints, the final LoRA as the best, and the
    reason in a note."""
    items = training_set(tmp_path)
    spec = None
    if untestable:
        spec = dataclasses.replace(spec_of(), intent=Intent.from_data(UNTESTABLE))
    monitor, events = monitored(spec)
    assert not monitor.samples
    result = train(fast_config(items, max_train_steps=3, run_name="loss"), base, items,
                   observer=monitor)
    assert [e for e, _ in events] == [START, STEP, STEP, STEP, END]
    plan = of(events, START)[0]["monitor"]
    assert not plan["enabled"] and plan["metrics"] == [] and plan["images_per_point"] == 0
    assert plan["notes"][0].startswith("loss only")
    if untestable:
        assert "no kept, modified or deleted concept" in plan["notes"][0]
    assert result.checkpoints == [] and not (result.run_dir / "samples").exists()
    best = of(events, END)[0]["best"]
    assert best["path"] == str(result.lora_path) and best["score"] is None
    assert best["lora_name"] == "loss.safetensors" and "no intent scores" in best["reason"]
    assert monitor.grid_image().size[0] > 0 and monitor.summary_lines()[0].startswith("Monitor")


def test_two_monitors_at_once_keep_their_own_run_and_node(models_root, tmp_path):
    """Two runs training at the same time in two threads (as two queued ComfyUI prompts never
    do, but a server with two workers could): each monitor's events name its own run and node,
    and the registry lists both while they run."""
    both_started = threading.Barrier(2, timeout=120)
    seen_active: list[set[str]] = []
    runs = {}

    def run(name: str, node: str):
        model = load_tiny(tmp_path / f"base-{name}")
        items = training_set(tmp_path / name)
        events = []

        def emit(event, data):
            events.append((event, data))
            if event == START:
                both_started.wait()
                seen_active.append({r.run for r in registry.active()})

        monitor = TrainingMonitor(spec_of(), emit=emit, node=node)
        runs[name] = (train(fast_config(items, max_train_steps=2, run_name=name), model, items,
                            observer=monitor), events)

    threads = [threading.Thread(target=run, args=args) for args in (("left", "1"),
                                                                    ("right", "2"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert set(runs) == {"left", "right"}
    assert seen_active == [{"left", "right"}] * 2
    for name, node in (("left", "1"), ("right", "2")):
        result, events = runs[name]
        assert {(d["run"], d["node"]) for _, d in events} == {(name, node)}
        assert [e for e, _ in events][-2:] == [SAMPLE, END]
        starts = [r for r in read_records(result.run_dir) if r.get("event") == "start"]
        assert [(r["run"], r["node"]) for r in starts] == [(name, node)]
    assert registry.active() == []


@pytest.fixture
def cli_run(tmp_path, models_root):
    """A config file of a tiny SD 1.5 run, an intent file, and the tiny scoring models written
    into the models root (their names as the loaders list them)."""
    from intenttuner.families import FAMILIES
    from intenttuner.tiny import TINY_BUILDERS
    from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint
    from intenttuner.training.config import make_config
    from tests.training_helpers import make_kohya_set

    names = {}
    for family in ("detector", "identity_encoder", "image_encoder"):
        folder = models_root / FAMILIES[family].folder
        names[family] = TINY_BUILDERS[family](folder).relative_to(folder).as_posix()
    checkpoint = make_tiny_sd15_checkpoint(models_root / "checkpoints")
    config = make_config(base_model=str(checkpoint), training_set=str(make_kohya_set(
        tmp_path / "set", count=2)), run_name="cli", rank=4, alpha=4.0, resolution=64,
        max_train_steps=2, gradient_checkpointing=False, cache_latents_to_disk=False)
    intent_path = tmp_path / "intent.json"
    intent(VINCENT, [("red", (10, 10, 50, 50))]).save(intent_path)
    models = ["--detector", names["detector"], "--identity-encoder", names["identity_encoder"],
              "--clip", names["image_encoder"], "--quality", "none"]
    return config.save(tmp_path / "run"), intent_path, models


def test_the_command_line_samples_scores_and_names_the_best(cli_run, models_root, capsys):
    from intenttuner.__main__ import main

    config, intent_path, models = cli_run
    code = main(["train", str(config), "--models-dir", str(models_root), "--monitor-every", "1",
                 "--intent", str(intent_path), "--monitor-prompts", "1", "--sample-steps", "1",
                 *models])
    out, err = capsys.readouterr()
    assert code == 0, err
    run_dir = models_root / "loras" / "cli"
    samples = [r for r in read_records(run_dir) if r.get("event") == "sample"]
    assert [(s["step"], s["final"]) for s in samples] == [(1, False), (2, True)]
    assert all(set(s["scores"]) == {"stability", "controllability", "leakage"} for s in samples)
    best = [r for r in read_records(run_dir) if r.get("event") == "end"][0]["best"]
    assert f"best LoRA: {best['path']}" in out and "Monitor: 2 sample point(s)" in out
    assert (models_root / "loras" / best["lora_name"]).is_file()


def test_the_command_line_refuses_monitor_flags_it_cannot_act_on(cli_run, models_root, capsys):
    from intenttuner.__main__ import main

    config, _, models = cli_run
    code = main(["train", str(config), "--models-dir", str(models_root), *models])
    assert code == 1 and "only act with --monitor-every N" in capsys.readouterr().err
    code = main(["train", str(config), "--models-dir", str(models_root), "--monitor-every", "1",
                 *models])
    err = capsys.readouterr().err
    assert code == 1 and "neither the config nor its training set has one" in err
    assert "--intent INTENT_JSON" in err
    assert not (models_root / "loras" / "cli").exists()  # refused before training


@pytest.mark.parametrize(("kind", "precision"), [("sd15", "fp16"), ("sdxl", "bf16")])
def test_half_precision_and_sdxl_runs_are_sampled(models_root, tmp_path, kind, precision):
    """fp32 LoRA layers over half-precision weights sample without a dtype clash (SDXL through
    its own pipeline, with the trained text encoders), and the base model comes back in its
    own dtype."""
    from intenttuner.families.base_model import load_base_model
    from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint, make_tiny_sdxl_checkpoint

    make = make_tiny_sdxl_checkpoint if kind == "sdxl" else make_tiny_sd15_checkpoint
    model = load_base_model(make(tmp_path / "base"), precision=precision)
    dtype = model.dtype
    items = training_set(tmp_path)
    monitor, events = monitored(spec_of(sample_every_steps=0))
    train(fast_config(items, max_train_steps=1, run_name=kind, mixed_precision=precision,
                      train_text_encoder=True, conv_rank=2), model, items, observer=monitor)
    (sample,) = of(events, SAMPLE)
    assert sample["final"] and len(sample["images"]) == 4 and of(events, WARNING) == []
    assert_clean(model, dtype)
