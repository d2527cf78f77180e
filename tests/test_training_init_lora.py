"""Per-item loss weights and starting a run from a LoRA file (``init_lora``): the adapters
begin as the file's, what cannot continue it (another network, another base model) is refused
by name, a resume ignores it, and the new file says where it started."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from intenttuner.dataset.training_set import TrainingItem, TrainingSet
from intenttuner.errors import InputError
from intenttuner.training import checkpoints as ckpt
from intenttuner.training.lora_file import read_lora_file
from intenttuner.training.lora_metadata import INIT_KEY, PROBE_KEY
from intenttuner.training.trainer import train
from tests.training_run_helpers import (
    another_checkpoint,
    assert_clean,
    fast_config,
    folders_at,
    training_set,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def first(base, tmp_path_factory):
    """A 2-step LoRA (LoCon) of the 4-image set, in its own models folder."""
    with folders_at(tmp_path_factory.mktemp("first")) as root:
        items = training_set(root)
        config = fast_config(items, max_train_steps=2, rank=4, alpha=4, conv_rank=4,
                             conv_alpha=2, run_name="first")
        result = train(config, base, items)
    return config, result


def test_a_weight_scales_the_loss_and_zero_trains_nothing(models_root, base, tmp_path):
    items = training_set(tmp_path)
    config = fast_config(items, max_train_steps=1, batch_size=4, rank=4, alpha=4)
    plain = train(config, base, items)
    for item in items.items:
        item.loss_weight = 2.0
    doubled = train(config, base, items)
    assert doubled.losses[0] == pytest.approx(2 * plain.losses[0], rel=1e-5)
    for item in items.items:
        item.loss_weight = 0.0
    nothing = train(config.model_copy(update={"max_train_steps": 2}), base, items)
    tensors, _ = read_lora_file(nothing.lora_path)
    ups = [v for k, v in tensors.items() if k.endswith(".lora_up.weight")]
    assert ups and all(not v.any() for v in ups)  # lora_B starts at 0 and got no gradient
    assert_clean(base)


def test_old_manifests_read_with_weight_one_and_negative_weights_are_refused():
    item = {"image": "1_a/x.png", "caption_file": "1_a/x.txt", "group": "a", "repeats": 1}
    assert TrainingSet.model_validate({"items": [item]}).items[0].loss_weight == 1.0
    with pytest.raises(ValueError, match="loss_weight"):
        TrainingItem(**item, loss_weight=-1)


def test_a_run_starts_from_the_init_lora(models_root, base, tmp_path, first):
    old_config, old = first
    items = training_set(tmp_path)
    config = old_config.model_copy(update={
        "training_set": items.root, "init_lora": str(old.lora_path), "max_train_steps": 1,
        "learning_rate": 1e-6, "run_name": "second"})
    result = train(config, base, items)
    before, _ = read_lora_file(old.lora_path)
    after, metadata = read_lora_file(result.lora_path)
    assert set(before) == set(after)
    ups = [k for k in before if k.endswith(".lora_up.weight")]
    assert any(before[k].abs().max() > 1e-3 for k in ups)  # the old LoRA is not zero
    for key in before:  # one step at lr 1e-6 moves every weight by ~1e-6 at most
        assert torch.allclose(before[key].float(), after[key].float(), atol=1e-3), key
    assert metadata[INIT_KEY] == "first.safetensors"
    assert len(json.loads(metadata[PROBE_KEY])) > 0
    assert json.loads(metadata["intenttuner.config"])["init_lora"] == "first.safetensors"
    assert_clean(base)


@pytest.mark.parametrize("change, words", [
    ({"rank": 8, "alpha": 8}, "rank=4"),
    ({"alpha": 2}, "alpha=4"),
    ({"conv_rank": 0}, "conv_rank"),
    ({"train_text_encoder": True}, "train_text_encoder"),
])
def test_another_network_is_refused_by_name(models_root, base, tmp_path, first, change, words):
    old_config, old = first
    items = training_set(tmp_path)
    config = old_config.model_copy(update={"training_set": items.root, "run_name": "x",
                                           "init_lora": str(old.lora_path), **change})
    with pytest.raises(InputError, match=words):
        train(config, base, items)
    assert_clean(base)
    assert not (models_root / "loras" / "x.safetensors").exists()


def test_a_lora_of_another_base_model_is_refused(models_root, base, tmp_path, first):
    old_config, old = first
    items = training_set(tmp_path)
    config = old_config.model_copy(update={"training_set": items.root,
                                           "init_lora": str(old.lora_path)})
    with another_checkpoint(base), pytest.raises(InputError, match="another base model"):
        train(config, base, items)
    tensors, metadata = read_lora_file(old.lora_path)
    sdxl = tmp_path / "sdxl.safetensors"
    save_file(tensors, str(sdxl), {**metadata, "ss_base_model_version": "sdxl_base_v1-0"})
    with pytest.raises(InputError, match="sdxl model"):
        train(config.model_copy(update={"init_lora": str(sdxl)}), base, items)
    with pytest.raises(InputError, match="no LoRA file"):
        train(config.model_copy(update={"init_lora": "missing.safetensors"}), base, items)
    assert_clean(base)


def test_a_resume_ignores_init_lora(models_root, base, tmp_path):
    items = training_set(tmp_path)
    config = fast_config(items, max_train_steps=2, save_every_steps=1, run_name="resumed")
    first_run = train(config, base, items)
    again = train(config.model_copy(update={"resume_from": str(first_run.checkpoints[0]),
                                            "init_lora": "not-there.safetensors"}), base, items)
    assert again.steps == 2 and [ckpt.checkpoint_step(p) for p in first_run.checkpoints] == [1]
