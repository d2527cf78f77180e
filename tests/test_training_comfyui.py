"""LoRA Train and Apply Trained LoRA inside a real ComfyUI: ComfyUI's models freed before
training, an event per step, the LoRA in ComfyUI's LoRA list and applied through its own LoRA
loader with every key mapped, Cancel keeping a loadable checkpoint. (Skips without
COMFYUI_PATH; see tests/comfyui_harness.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.comfyui_harness import make_base_dir, run_in_comfyui

pytestmark = pytest.mark.comfyui

SCRIPT = Path(__file__).with_name("comfyui_training_inprocess.py")
IMAGE_CHANGE = 1.0  # mean absolute pixel difference (0..255) the trained LoRA must exceed


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    base = make_base_dir(tmp_path_factory.mktemp("comfy-training"))
    return run_in_comfyui(SCRIPT, base, timeout=1200)


def test_comfyuis_models_are_freed_before_training(result):
    assert result["plain_ok"]
    # After a plain Load Checkpoint -> KSampler graph ComfyUI holds its SD 1.5 model loaded...
    assert "BaseModel" in result["loaded_before"], result["loaded_before"]
    # ...and when the first step is done only our training modules are loaded.
    assert result["loaded_at_first_step"], result["loaded_at_first_step"]
    assert set(result["loaded_at_first_step"]) == {"_Holder"}, result["loaded_at_first_step"]


def test_training_sends_an_event_per_step_and_shows_its_chart(result):
    assert result["trained"]["ok"], result["trained"]["error"]
    assert result["steps"] == [1, 2, 3, 4]
    # Only to the tab that queued the run: other tabs' panels never see its events.
    assert result["step_clients"] == ["tab-1"]
    event = result["step_event"][0]
    assert event["total_steps"] == 4 and isinstance(event["loss"], float) and event["lr"] > 0
    assert result["ui_images"] == 1  # the loss chart on the node
    assert "Trained comfy: 4 step(s)." in result["report"]


def test_the_lora_is_listed_and_every_key_reaches_comfyuis_model(result):
    assert "comfy.safetensors" in result["lora_list"]
    assert "comfy/comfy-step000002.safetensors" in result["lora_list"]  # checkpoints can be tried
    applied = result["applied"]
    assert applied["unmapped"] == []
    assert applied["unet_modules"] > 0
    assert applied["patched_weights"] == applied["unet_modules"]
    # The same graph generated with it: the image differs from the base model's, same seed
    # (decoded pixels, on average more than a rounding step: the LoRA, not noise, changed it).
    assert result["image_difference"] > IMAGE_CHANGE, result["image_difference"]


def test_cancel_mid_training_stops_and_keeps_a_loadable_checkpoint(result):
    cancel = result["cancel"]
    assert cancel["interrupted"] and not cancel["ok"]
    assert cancel["steps"] == [1, 2, 3]  # stopped right after the step Cancel came in
    assert not cancel["final_exists"]
    assert {"cancelled-step000003.safetensors", "cancelled-step000003.train-state",
            "config.json", "metrics.jsonl"} <= set(cancel["files"]), cancel["files"]
    applied = cancel["applied"]
    assert applied["unmapped"] == [] and applied["patched_weights"] == applied["unet_modules"] > 0
