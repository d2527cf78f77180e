"""Before / after: both LoRAs generate the same prompts and seeds from their saved files, each
image gets its reward, the training set's reproduction (denoising loss at fixed noise) is
measured under both, the base model comes back clean, and the report and image say it."""

from __future__ import annotations

import pytest

from intenttuner.errors import InputError
from intenttuner.monitor.reproduction import denoising_losses
from intenttuner.monitor.settings import MonitorSettings
from intenttuner.reward.compare import LoraFile, compare_items, compare_loras
from intenttuner.training.trainer import train
from tests.test_reward_weighted_set import FakeEncoder, FakeReward
from tests.training_run_helpers import assert_clean, fast_config, training_set

pytestmark = pytest.mark.usefixtures("one_thread")


def test_both_loras_on_the_same_prompts_and_seeds(models_root, base, tmp_path):
    items = training_set(tmp_path)
    config = fast_config(items, max_train_steps=1, rank=4, alpha=4)
    old = train(config.model_copy(update={"run_name": "old"}), base, items)
    new = train(config.model_copy(update={"run_name": "new", "learning_rate": 0.5}), base,
                items)
    prompts = compare_items(["ohwx, red", "ohwx, red", " ", "ohwx, blue"], seed=7)
    assert [(i.prompt, i.seed) for i in prompts] == [("ohwx, red", 7), ("ohwx, blue", 8)]
    settings = MonitorSettings(sample_steps=2, guidance_scale=1.0, batch_size=2)
    reproduce = [(items.image_path(i), i.caption) for i in items.items]
    result = compare_loras(base, LoraFile(old.lora_path, config), LoraFile(new.lora_path, config),
                           prompts, settings, 64, "cpu", FakeReward(), FakeEncoder(),
                           reproduce=reproduce)
    assert len(result.images_before) == len(result.images_after) == 2
    assert all(r.reward_before is not None and r.reward_after is not None for r in result.rows)
    assert result.images_before[0].size == (64, 64)
    again = compare_loras(base, LoraFile(old.lora_path, config),
                          LoraFile(old.lora_path, config), prompts[:1], settings, 64, "cpu",
                          reproduce=reproduce)
    assert again.images_before[0].tobytes() == again.images_after[0].tobytes()  # fixed seeds
    assert again.reproduction_before == again.reproduction_after  # fixed noise and timesteps
    assert again.reproduction_ratio() == 1.0
    # A step at rate 0.5 moves the LoRA a long way: its reproduction figure moves with it.
    assert result.reproduction_after != pytest.approx(result.reproduction_before, rel=1e-3)
    assert "training-set reproduction" in result.summary()
    assert "no reward model" in again.summary()
    assert "reward (P(good))" in result.summary()
    assert result.image().width > 2 * 64
    assert_clean(base)


def test_the_denoising_loss_is_fixed_by_seed_and_order(base, tmp_path):
    """The reproduction figure: the same numbers whatever the batch size (each image's noise
    is its own), other numbers for another seed, bad settings named."""
    items = training_set(tmp_path)
    pairs = [(items.image_path(i), i.caption) for i in items.items[:3]]
    one = denoising_losses(base, pairs, 64, "cpu", draws=4, batch_size=1)
    three = denoising_losses(base, pairs, 64, "cpu", draws=4, batch_size=3)
    assert one == pytest.approx(three, rel=1e-4) and len(one) == 3
    assert denoising_losses(base, pairs, 64, "cpu", seed=1, draws=4) != pytest.approx(one)
    low = denoising_losses(base, pairs[:1], 64, "cpu", timesteps=[1, 5])
    assert low[0] != pytest.approx(one[0])
    for bad, words in [({"timesteps": [1000]}, "timesteps"), ({"draws": 0}, "draws"),
                       ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(InputError, match=words):
            denoising_losses(base, pairs, 64, "cpu", **bad)
    with pytest.raises(InputError, match="multiple of 8"):
        denoising_losses(base, pairs, 60, "cpu")
