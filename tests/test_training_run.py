"""Whole training runs on the tiny models (CPU): a LoRA that learns its training images, files
that are never replaced, a full disk, bad inputs, the base model given back untouched, SDXL."""

from __future__ import annotations

import dataclasses
import errno
import os
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from intenttuner.dataset.training_set import TrainingSet
from intenttuner.errors import DiskFullError, InputError, TrainingError
from intenttuner.training import checkpoints as ckpt
from intenttuner.training import lora_file
from intenttuner.training.config import load_config, make_config
from intenttuner.training.latent_cache import cache_latents
from intenttuner.training.lora_apply import lora_applied
from intenttuner.training.lora_file import read_lora_file
from intenttuner.training.text_cache import encode_text
from intenttuner.training.trainer import train
from tests.training_run_helpers import (
    assert_clean,
    fast_config,
    load_tiny,
    training_set,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# "Learns": the error of latents sampled for the training captions, with the LoRA / without.
# Measured with these settings (LoCon rank 16, lr 1e-2, batch 4, 10 DDIM steps from fixed
# noise, the saved fp16 file applied) over training seeds 0, 1, 2 after 60 steps: 0.057 /
# 0.061 / 0.052 (in-training fp32 weights: 0.12 after 25 steps, 0.04 after 100; without LoCon
# 0.20 after 100). The threshold leaves a margin of 4x over the measured ratios.
LEARNED_RATIO = 0.25
LEARN_STEPS = 60
SAMPLE_STEPS = 10


def sample_latents(model, captions: list[str], shape, seed: int) -> torch.Tensor:
    """DDIM sampling (no guidance) of ``captions`` from the same start noise: what a user's
    first generation with the trigger word does, in latent space."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(SAMPLE_STEPS)
    latents = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    model.unet.eval()
    with torch.no_grad():
        hidden = encode_text(model, captions, "cpu").hidden
        for t in scheduler.timesteps:
            noise = model.unet(latents, t, encoder_hidden_states=hidden).sample
            latents = scheduler.step(noise, t, latents).prev_sample
    return latents


def test_a_tiny_model_learns_its_training_images(models_root, base, tmp_path):
    """After training on 4 images captioned "ohwx, pattern <i>", sampling each caption from
    fixed noise lands much closer to that image's latents with the LoRA than without (see
    LEARNED_RATIO). The random tiny base model's samples are far off the data (its error is
    ~1000x the latents' variance); the LoRA pulls them most of the way back, loaded from the
    saved fp16 file exactly as a user would load it."""
    items = training_set(tmp_path)
    config = fast_config(items, max_train_steps=LEARN_STEPS, learning_rate=1e-2, batch_size=4,
                         rank=16, alpha=16, conv_rank=16, conv_alpha=16, seed=0)
    result = train(config, base, items)
    assert result.steps == LEARN_STEPS and all(map(torch.isfinite, torch.tensor(result.losses)))
    cache = cache_latents(base, items, config, None)
    targets = torch.stack([image.latents for image in cache.images])
    captions = [image.caption for image in cache.images]
    assert all(c.startswith("ohwx, ") for c in captions)
    base_error = ((sample_latents(base, captions, targets.shape, 1234) - targets) ** 2).mean()
    with lora_applied(base, config, result.lora_path):  # as the headless pipeline applies it
        trained = sample_latents(base, captions, targets.shape, 1234)
    trained_error = ((trained - targets) ** 2).mean()
    assert trained_error < LEARNED_RATIO * base_error, (float(trained_error), float(base_error))
    assert_clean(base)


def test_runs_never_replace_a_lora_and_write_their_config(models_root, base, tmp_path):
    items = training_set(tmp_path)
    config = fast_config(items, max_train_steps=2, run_name="my lora", cache_latents_to_disk=True)
    first = train(config, base, items)
    second = train(config, base, items)
    assert any((tmp_path / "output" / "intenttuner" / "cache" / "latents").rglob("*.safetensors"))
    assert (first.run_name, second.run_name) == ("my_lora", "my_lora-2")
    assert first.lora_path == models_root / "loras" / "my_lora.safetensors"
    assert first.lora_path.is_file() and second.lora_path.is_file()
    assert load_config(second.run_dir / "config.json") == config
    metrics = (second.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 2 and '"images_per_s"' in metrics[0] and '"lr"' in metrics[0]
    (models_root / "loras" / "taken.safetensors").write_bytes(b"someone else's")
    third = train(fast_config(items, epochs=1, batch_size=2, run_name="taken"), base, items)
    assert third.run_name == "taken-2" and third.steps == 2   # one epoch: 4 images, 2 a step
    assert (models_root / "loras" / "taken.safetensors").read_bytes() == b"someone else's"
    # The default name is the training set's folder name.
    assert train(fast_config(items, max_train_steps=1), base, items).run_name == "set"


def test_resuming_a_finished_run_becomes_a_new_run(models_root, base, tmp_path):
    items = training_set(tmp_path)
    config = fast_config(items, max_train_steps=3, save_every_steps=1, run_name="done")
    first = train(config, base, items)
    assert [ckpt.checkpoint_step(p) for p in first.checkpoints] == [1, 2]
    before = {p.name: p.read_bytes() for p in first.run_dir.iterdir()}
    again = train(config.model_copy(update={"resume_from": str(first.checkpoints[0])}),
                  base, items)
    assert again.run_name == "done-2" and again.steps == 3
    assert again.losses[0] == first.losses[0] and len(again.losses) == 3
    assert len((again.run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    assert {p.name: p.read_bytes() for p in first.run_dir.iterdir()} == before   # untouched


def test_disk_full_on_the_second_checkpoint_keeps_the_first(models_root, base, tmp_path,
                                                            monkeypatch):
    items = training_set(tmp_path)
    real_write = os.write

    def write(fd, data):
        # The disk fills up while the step-4 LoRA file is written (its state is already out).
        if "disk-step000004.safetensors" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(lora_file.os, "write", write)
    with pytest.raises(TrainingError) as error:
        train(fast_config(items, run_name="disk", max_train_steps=6, save_every_steps=2),
              base, items)
    monkeypatch.undo()
    assert isinstance(error.value, DiskFullError)
    run_dir = models_root / "loras" / "disk"
    first = ckpt.checkpoint_path(run_dir, "disk", 2)
    message = str(error.value)
    assert str(ckpt.checkpoint_path(run_dir, "disk", 4)) in message and str(first) in message
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "disk-step000002.safetensors", "disk-step000002.train-state",
        "metrics.jsonl"]   # no partial or temporary file, no state without its LoRA
    read_lora_file(first)
    assert ckpt.read_state(first)["step"] == 2
    assert not (models_root / "loras" / "disk.safetensors").exists()
    assert_clean(base)


@pytest.mark.parametrize(("values", "words"), [
    ({"rank": 0}, ["rank", "greater than or equal to 1"]),
    ({"rank": 4096}, ["rank", "less than or equal to 1024"]),
    ({"resolution": 500}, ["resolution", "multiple of 64", "512"]),
    ({"resolution": 8192}, ["resolution", "4096"]),
    ({"lr_warmup_steps": 10, "max_train_steps": 10}, ["lr_warmup_steps", "fewer than"]),
])
def test_settings_that_cannot_work_are_refused_by_name(values, words):
    with pytest.raises(InputError) as error:
        make_config(base_model="tiny", training_set="set", **values)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_bad_inputs_are_refused_before_training(models_root, base, tmp_path):
    items = training_set(tmp_path)
    with pytest.raises(InputError, match="no images"):
        train(fast_config(items), base, TrainingSet())
    with pytest.raises(InputError, match="lower resolution to 64"):
        train(fast_config(items, resolution=128), base, items)
    flux = tmp_path / "checkpoints" / "flux-dev.safetensors"
    flux.parent.mkdir()
    save_file({"model.diffusion_model.double_blocks.0.img_attn.qkv.weight": torch.zeros(2, 2)},
              str(flux))
    with pytest.raises(InputError) as error:
        train(fast_config(items, base_model=str(flux)), None, items)
    assert "Flux" in str(error.value) and "flux-dev.safetensors" in str(error.value)
    # An inpainting UNet that the graph's loader accepted (allow_inpainting) is refused too.
    inpainting = dataclasses.replace(base, unet=SimpleNamespace(
        config=SimpleNamespace(in_channels=9)))
    with pytest.raises(InputError, match="inpainting checkpoint"):
        train(fast_config(items), inpainting, items)
    assert not (models_root / "loras").exists() or not any((models_root / "loras").iterdir())
    assert_clean(base)


def test_half_precision_training_gives_the_base_model_back_exactly(models_root, base, tmp_path):
    items = training_set(tmp_path)
    before = {n: {k: v.clone() for k, v in m.state_dict().items()}
              for n, m in base.modules().items()}
    result = train(fast_config(items, max_train_steps=2, mixed_precision="bf16",
                               train_text_encoder=True, conv_rank=2), base, items)
    assert result.steps == 2
    assert_clean(base)
    for name, module in base.modules().items():
        after = module.state_dict()
        assert all(torch.equal(after[k], v) for k, v in before[name].items()), name
    tensors, metadata = read_lora_file(result.lora_path)
    assert any(k.startswith("lora_te_text_model_encoder_layers_0_") for k in tensors)
    assert metadata["ss_mixed_precision"] == "bf16" and metadata["ss_network_dim"] == "16"


def test_sdxl_trains_end_to_end(models_root, tmp_path):
    model = load_tiny(tmp_path / "sdxl", "sdxl")
    items = training_set(tmp_path)
    result = train(fast_config(items, max_train_steps=2, train_text_encoder=True, rank=4,
                               alpha=2, gradient_checkpointing=True), model, items)
    assert len(result.losses) == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    tensors, metadata = read_lora_file(result.lora_path)
    prefixes = {k.split("_")[0] + "_" + k.split("_")[1] for k in tensors}
    assert prefixes == {"lora_unet", "lora_te1", "lora_te2"}
    assert any(k.startswith("lora_unet_input_blocks_") for k in tensors)   # SGM names
    for prefix in prefixes:  # every part learned, through gradient checkpointing too
        assert any(v.abs().sum() > 0 for k, v in tensors.items()
                   if k.startswith(prefix) and k.endswith(".lora_up.weight")), prefix
    assert all(float(v) == 2 for k, v in tensors.items() if k.endswith(".alpha"))
    assert metadata["ss_base_model_version"] == "sdxl_base_v1-0"
    assert_clean(model)
