"""Our LoRA files in a real ComfyUI: every key mapped, every patch fitting, stock LoraLoader.

Skips without COMFYUI_PATH (tests/comfyui_harness.py). The ComfyUI side is
tests/comfyui_lora_keys.py, run with ComfyUI's Python:

* tiny SD 1.5 / SDXL LoRAs (every module type: attention, projections, feed-forward, LoCon
  convolutions, time embedding, text encoders) against the key map ComfyUI builds for the
  checkpoint they were made on;
* LoRAs over the full SD 1.5 and SDXL architectures against the key map ComfyUI builds for the
  real architectures, which its own model detection recognises from the full-size tensor names
  and shapes (meta tensors: nothing of the ~10 GB is allocated);
* a full-size random SD 1.5 checkpoint from scripts/make_random_checkpoint.py with a LoRA
  trained on it by `trainer.train` (1 step, 64 px, rank 4, text encoder and LoCon on), loaded
  by CheckpointLoaderSimple + LoraLoader: no missing or left-over checkpoint keys, no "lora
  key not loaded", and the output changes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from intenttuner.tiny.base_model import (
    ldm_checkpoint,
    make_tiny_sd15_checkpoint,
    make_tiny_sdxl_checkpoint,
    tiny_components,
)
from intenttuner.tiny.full_size import meta_components
from intenttuner.training import kohya_keys
from intenttuner.training.config import make_config
from intenttuner.training.lora_file import read_lora_file, save_lora_file
from intenttuner.training.trainer import train
from tests.comfyui_harness import comfyui_location, make_base_dir, run_in_comfyui
from tests.training_helpers import TEXT_TARGETS, make_kohya_set, peft_adapters

pytestmark = pytest.mark.comfyui
log = logging.getLogger(__name__)

SCRIPT = Path(__file__).with_name("comfyui_lora_keys.py")


def lora_file_for(modules: dict, kind: str, path: Path) -> Path:
    """A kohya LoRA file (rank 4, every module type) for ``modules``; meta modules (the full
    architectures) get zero weights: only names and shapes are checked."""
    adapters = peft_adapters(modules)
    alphas = kohya_keys.module_alphas(adapters, 4.0, 2.0)
    tensors = kohya_keys.kohya_state_dict(adapters, kind, alphas,
                                          unet_config=dict(modules["unet"].config))
    return save_lora_file(path, tensors, {"ss_network_module": "networks.lora"})


@pytest.fixture(scope="module")
def keymaps(tmp_path_factory):
    comfyui_location()  # skip early without ComfyUI
    work = tmp_path_factory.mktemp("lora-keys")
    cases = []
    for kind, make in (("sd15", make_tiny_sd15_checkpoint), ("sdxl", make_tiny_sdxl_checkpoint)):
        cases.append({"name": f"tiny-{kind}", "kind": kind, "checkpoint": str(make(work)),
                      "lora": str(lora_file_for(tiny_components(kind), kind,
                                                work / f"tiny-{kind}-lora.safetensors"))})
        modules = meta_components(kind)
        shapes = {k: list(v.shape) for k, v in ldm_checkpoint(kind, modules).items()}
        (work / f"{kind}-shapes.json").write_text(json.dumps(shapes))
        cases.append({"name": f"full-{kind}", "kind": kind,
                      "shapes": str(work / f"{kind}-shapes.json"),
                      "lora": str(lora_file_for(modules, kind,
                                                work / f"full-{kind}-lora.safetensors"))})
    job = work / "job.json"
    job.write_text(json.dumps({"keymaps": cases}))
    return run_in_comfyui(SCRIPT, make_base_dir(work / "base"), str(job))["keymaps"]


@pytest.mark.parametrize("name", ["tiny-sd15", "tiny-sdxl", "full-sd15", "full-sdxl"])
def test_every_key_is_in_comfyuis_key_map_and_fits_its_weight(keymaps, name):
    result = keymaps[name]
    assert result["not_loaded"] == []
    assert result["unet_shape_mismatch"] == []
    if name.startswith("full-"):  # ComfyUI builds full-size text encoders only
        assert result["clip_shape_mismatch"] == []
    assert result["patched"] == result["modules"] > 0
    assert result["unet_patched"] > 0 and result["clip_patched"] > 0


def test_full_architectures_are_the_ones_comfyui_detects(keymaps):
    """The key maps of the full-size cases are those of ComfyUI's own SD 1.5 / SDXL configs,
    detected from the names and shapes alone (the tiny ones match no config by size)."""
    assert keymaps["full-sd15"]["detected"] == "SD15"
    assert keymaps["full-sdxl"]["detected"] == "SDXL"
    # SDXL: all three conditioning towers' worth of modules (UNet, CLIP-L, bigG) are patched.
    assert keymaps["full-sdxl"]["clip_patched"] == (12 + 32) * len(TEXT_TARGETS)


def trained_lora(checkpoint: Path, work: Path) -> Path:
    """A LoRA trained on ``checkpoint`` by our trainer (1 step, 64 px, rank 4, text encoder and
    LoCon on)."""
    root = make_kohya_set(work / "set", count=2, size=(64, 64), trigger="ohwx")
    config = make_config(base_model=str(checkpoint), training_set=str(root), run_name="fullsize",
                         output_dir=str(work / "loras"), rank=4, alpha=4.0, conv_rank=4,
                         conv_alpha=2.0, train_text_encoder=True, max_train_steps=1,
                         resolution=64, learning_rate=1e-3, cache_latents_to_disk=False,
                         gradient_checkpointing=False)  # one step: recomputing is pure cost
    return train(config).lora_path


@pytest.mark.slow
def test_stock_lora_loader_loads_every_key_and_changes_the_output(full_size_sd15, tmp_path,
                                                                   models_root):
    lora = trained_lora(full_size_sd15, tmp_path)
    tensors, _ = read_lora_file(lora)
    base = make_base_dir(tmp_path / "base")
    for folder, source in (("checkpoints", full_size_sd15), ("loras", lora)):
        (base / "models" / folder).mkdir(parents=True, exist_ok=True)
        target = base / "models" / folder / source.name
        try:
            os.link(source, target)  # same file system: no 2 GB copy
        except OSError:
            shutil.copyfile(source, target)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"loader": {"checkpoint": full_size_sd15.name, "lora": lora.name}}))
    result = run_in_comfyui(SCRIPT, base, str(job), timeout=900)["loader"]
    log.info("stock loaders on the trained LoRA: %s", result)
    modules = [k.removesuffix(".lora_down.weight") for k in tensors
               if k.endswith(".lora_down.weight")]
    assert result["checkpoint_detected"] == "SD15"
    # The random checkpoint has exactly SD 1.5's tensors: nothing missing, nothing left over.
    assert result["checkpoint_messages"] == []
    assert result["lora_problems"] == []
    assert result["unet_patched"] == sum(m.startswith("lora_unet_") for m in modules)
    assert result["clip_patched"] == sum(m.startswith("lora_te_") for m in modules) > 0
    assert any("_resnets_" in m and m.endswith("_conv1") for m in modules)  # LoCon keys too
    assert result["unet_finite"]
    assert result["unet_change"] > 0 and result["clip_change"] > 0
