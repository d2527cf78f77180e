"""Training Monitor and LoRA Train's monitor as ComfyUI calls them (the pack loaded as ComfyUI
loads it), without ComfyUI itself: the schemas, the settings refused before training, and short
runs on a tiny SD 1.5 with and without a monitor, scored by tiny real models. (The same in the
real ComfyUI and browser: tests/test_browser_train_monitor.py.)"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tests.dataset_helpers import module
from tests.test_evaluation_nodes import lib, make_intent, node, tiny
from tests.test_training_nodes import graph_inputs
from tests.test_training_nodes import settings as train_settings

PIA = ("trigger: vincent. Keep his face [1]. His hair colour can change between red hair and "
       "blue hair. Never a necklace.")


def monitor_class(pack):
    return pack.NODE_CLASS_MAPPINGS["IntentTunerTrainingMonitor"]


def monitor_widgets(pack) -> dict:
    required = monitor_class(pack).INPUT_TYPES()["required"]
    return {name: spec for name, spec in required.items()
            if name not in ("intent", "detector", "identity_encoder", "clip")}


def monitor_settings(pack, **overrides) -> dict:
    return {**{name: options["default"] for name, (_, options) in monitor_widgets(pack).items()},
            **overrides}


def test_the_monitor_node_has_a_widget_per_setting_with_its_default_and_a_tooltip(pack):
    cls = monitor_class(pack)
    assert cls.CATEGORY == "IntentTuner/Training" and cls.DISPLAY_NAME == "Training Monitor"
    assert cls.RETURN_TYPES == ("IT_MONITOR",) and len(cls.OUTPUT_TOOLTIPS) == 1
    schema = cls.INPUT_TYPES()
    for section in schema.values():
        for name, (_, options) in section.items():
            assert options.get("tooltip"), name
    settings = lib(pack, "monitor.settings").MonitorSettings
    widgets = monitor_widgets(pack)
    assert list(widgets) == [f.name for f in dataclasses.fields(settings)]
    for field in dataclasses.fields(settings):
        kind, options = widgets[field.name]
        assert options["default"] == field.default, field.name
        assert kind == ("FLOAT" if isinstance(field.default, float) else "INT"), field.name
        # every value the widget offers is one the settings accept
        settings(**{field.name: options["min"]})
        settings(**{field.name: options["max"]})
    # The plan's seed stays put between queues: no "randomize after queue" control.
    assert widgets["seed"][1]["control_after_generate"] is False
    assert widgets["sample_size"][1]["step"] == 8
    required, optional = schema["required"], schema["optional"]
    assert [required[n][0] for n in ("intent", "detector", "identity_encoder", "clip")] == [
        "INTENT", "IT_DETECTOR", "IT_IDENTITY_ENCODER,IT_IMAGE_ENCODER", "IT_IMAGE_ENCODER"]
    assert {n: spec[0] for n, spec in optional.items()} == {
        "quality_scorer": "IT_QUALITY_SCORER", "reference_images": "IMAGE"}


def test_lora_train_takes_a_monitor_and_appends_its_outputs(pack):
    cls = pack.NODE_CLASS_MAPPINGS["IntentTunerLoRATrain"]
    schema = cls.INPUT_TYPES()
    assert schema["optional"]["monitor"][0] == "IT_MONITOR"
    assert schema["hidden"] == {"unique_id": "UNIQUE_ID"}
    # Saved workflows link outputs by slot: the first four stay where they were.
    assert cls.RETURN_TYPES[:4] == ("IT_LORA", "STRING", "IMAGE", "STRING")
    assert cls.RETURN_NAMES[4:] == ("best_lora", "best_lora_name", "curves", "samples")
    assert cls.RETURN_TYPES[4:] == ("IT_LORA", "STRING", "IMAGE", "IMAGE")
    assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"stability_weight": 0.0, "controllability_weight": 0.0, "leakage_weight": 0.0},
     "At least one of stability_weight"),
    ({"sample_size": 100}, "sample_size 100 must be a multiple of 8"),
    ({"box_threshold": 1.5}, "box_threshold must be between 0 and 1"),
])
def test_settings_that_cannot_work_are_refused_by_the_monitor_node(pack, overrides, message):
    errors = lib(pack, "errors")
    with pytest.raises(errors.InputError, match=message):
        monitor_class(pack)().make(object(), object(), object(), object(),
                                   **monitor_settings(pack, **overrides))


def test_the_monitor_node_hands_on_intent_models_settings_and_references(pack):
    intent, detector, dino, clip, quality = object(), object(), object(), object(), object()
    references = torch.rand((2, 16, 24, 3))
    # FLOAT widgets may arrive as ints (the frontend's JSON writes 1.0 as 1)
    (spec,) = monitor_class(pack)().make(
        intent, detector, dino, clip, quality_scorer=quality, reference_images=references,
        **monitor_settings(pack, sample_every_steps=7, stability_weight=2))
    assert isinstance(spec, lib(pack, "monitor.settings").MonitorSpec)
    assert spec.intent is intent
    assert (spec.models.detector, spec.models.identity_encoder, spec.models.clip,
            spec.models.quality) == (detector, dino, clip, quality)
    assert spec.settings.sample_every_steps == 7 and spec.settings.stability_weight == 2.0
    assert isinstance(spec.settings.stability_weight, float)
    assert [image.size for image in spec.reference_images] == [(24, 16), (24, 16)]
    (plain,) = monitor_class(pack)().make(intent, detector, dino, clip,
                                          **monitor_settings(pack))
    assert plain.reference_images is None and plain.models.quality is None


# -- LoRA Train with and without a monitor, in-process on tiny models ------------------------

@pytest.fixture
def run_inputs(pack, tmp_path, models_root):
    _, base_model, training_set = graph_inputs(pack, tmp_path, models_root)
    return base_model, training_set


@pytest.fixture
def events(pack, monkeypatch):
    runtime = lib(pack, "runtime").get_runtime()
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(runtime, "send_event", lambda event, data: sent.append((event, data)))
    return sent


def train(pack, run_inputs, monitor=None, **overrides) -> dict:
    base_model, training_set = run_inputs
    values = train_settings(pack, **{"rank": 4, "alpha": 2.0, "resolution": 64,
                                     "max_train_steps": 4, "gradient_checkpointing": False,
                                     **overrides})
    with torch.inference_mode():  # ComfyUI's executor runs the node so
        return pack.NODE_CLASS_MAPPINGS["IntentTunerLoRATrain"]().train(
            training_set=training_set, base_model=base_model, monitor=monitor, unique_id="7",
            **values)


def of(events, name: str) -> list[dict]:
    return [data for event, data in events if event == f"intenttuner.train.{name}"]


def is_drawn(batch) -> bool:
    """An IMAGE batch of one picture with something on it, not a blank frame."""
    array = np.asarray(batch)
    return array.ndim == 4 and array.shape[0] == 1 and array.shape[-1] == 3 and \
        float(array.std()) > 0.05


def test_without_a_monitor_the_run_is_watched_by_its_loss_and_the_final_lora_is_the_best(
        pack, run_inputs, models_root, events):
    out = train(pack, run_inputs)
    lora, name, chart, report, best, best_name, curves, samples = out["result"]
    assert name == "pia.safetensors" and lora.lora_path == models_root / "loras" / name
    # No scores, no best checkpoint: the best outputs are the final LoRA, so a graph works.
    assert best.lora_path == lora.lora_path and best_name == name
    assert is_drawn(curves) and is_drawn(samples) and is_drawn(chart)
    assert "Trained pia: 4 step(s)." in report and out["ui"]["text"] == [report]
    assert len(out["ui"]["images"]) == 0  # outside ComfyUI the outputs carry the images
    # The monitor sends every event, the steps too (the node no longer sends its own).
    assert [d["step"] for d in of(events, "step")] == [1, 2, 3, 4]
    assert all(d["node"] == "7" and d["run"] == "pia" for _, d in events)
    (start,) = of(events, "start")
    assert start["monitor"]["enabled"] is False and start["prompt_id"] is None
    (end,) = of(events, "end")
    assert end["status"] == "finished" and end["best"]["lora_name"] == name
    assert end["best"]["score"] is None and of(events, "sample") == []


@pytest.fixture
def monitor(pack, models_root):
    clip = node(pack, "LoadImageEncoder").load(tiny(pack, models_root, "image_encoder"),
                                               "auto")[0]
    detector = node(pack, "LoadDetector").load(tiny(pack, models_root, "detector"), "auto")[0]
    dino = node(pack, "LoadIdentityEncoder").load(tiny(pack, models_root, "identity_encoder"),
                                                  "auto")[0]
    (spec,) = monitor_class(pack)().make(
        make_intent(pack, PIA), detector, dino, clip,
        **monitor_settings(pack, sample_every_steps=2, sample_steps=2, batch_size=2,
                           box_threshold=0.0))
    return spec


def test_with_a_monitor_every_point_is_scored_and_the_best_checkpoint_kept(
        pack, run_inputs, models_root, events, monitor):
    out = train(pack, run_inputs, monitor=monitor)
    lora, name, _, report, best, best_name, curves, samples = out["result"]
    loras = models_root / "loras"
    assert best_name == "pia_best.safetensors" and best.lora_path == loras / best_name
    assert best.lora_path.is_file() and lora.lora_path.is_file()
    assert best.run_dir == lora.run_dir and best.steps == lora.steps
    assert is_drawn(curves) and is_drawn(samples)
    points = of(events, "sample")
    assert [p["step"] for p in points] == [2, 4] and points[-1]["final"] is True
    for point in points:
        assert {i["test"] for i in point["images"]} == {"stability", "controllability",
                                                        "leakage"}
        for image in point["images"]:
            assert (lora.run_dir / image["path"]).is_file(), image
    (start,) = of(events, "start")
    assert start["monitor"]["enabled"] is True and start["monitor"]["sample_every_steps"] == 2
    (end,) = of(events, "end")
    assert end["status"] == "finished" and end["best"]["lora_name"] == best_name
    assert end["best"]["step"] in (2, 4)
    # The report says what monitoring cost and which checkpoint is best, and why.
    assert "Trained pia: 4 step(s)." in report
    assert "%" in report and f"step {end['best']['step']}" in report, report
    records = [json.loads(line) for line in (lora.run_dir / "metrics.jsonl").open()]
    assert [r["event"] for r in records if "event" in r] == ["start", "sample", "sample", "end"]


def test_stop_ends_the_run_early_and_keeps_the_best_so_far(pack, run_inputs, models_root,
                                                           events, monitor):
    registry = module(f"{pack.__name__}.intenttuner", "monitor.registry")
    runtime = lib(pack, "runtime").get_runtime()
    sent = runtime.send_event

    def stop_after_first_point(event, data):  # what the panel's Stop button does, by HTTP
        sent(event, data)
        if event == "intenttuner.train.sample" and data["step"] == 2:
            registry.request_stop(data["run"])

    runtime.send_event = stop_after_first_point
    out = train(pack, run_inputs, monitor=monitor, max_train_steps=40)
    lora, _, _, report, best, best_name, _, _ = out["result"]
    (end,) = of(events, "end")
    assert end["status"] == "stopped" and end["step"] < 40
    assert lora.steps == end["step"] and lora.lora_path.is_file()
    assert f"Stopped by Stop after {lora.steps} of 40 step(s)" in report, report
    assert best.lora_path.is_file() and best_name == end["best"]["lora_name"]
    assert registry.get("pia") is None  # the run is no longer active
