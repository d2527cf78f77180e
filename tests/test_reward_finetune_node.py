"""The Reward Fine-Tune node as ComfyUI runs it: LoRA Train's lora in, a '<old>-reward' run
beside it out with its name, report and comparison; resume continues that run on the same
weighted set; a missing or doubled LoRA choice is named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_training_nodes import graph_inputs, module, node, settings

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_schema_has_tooltips_and_the_feedback_category(pack):
    cls = node(pack, "RewardFineTune")
    for kind, section in cls.INPUT_TYPES().items():
        for name, spec in section.items():
            assert kind == "hidden" or spec[1].get("tooltip"), name
    assert cls.CATEGORY == "IntentTuner/Feedback"
    assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
    assert cls.RETURN_TYPES == ("IT_LORA", "STRING", "STRING", "IMAGE")


def test_fine_tunes_beside_the_old_lora_and_resumes(pack, tmp_path, models_root):
    lib, base_model, training_set = graph_inputs(pack, tmp_path, models_root)
    with torch.inference_mode():
        trained = node(pack, "LoRATrain")().train(
            training_set=training_set, base_model=base_model,
            **settings(pack, rank=4, alpha=2.0, resolution=64, max_train_steps=2,
                       gradient_checkpointing=False))["result"][0]
    feedback = module(lib, "reward.feedback_set")
    fs = feedback.rating_set("pia_ratings")
    pictures = [Image.fromarray(np.full((64, 64, 3), v, dtype=np.uint8)) for v in (200, 40)]
    keys = feedback.add_images(fs, pictures, ["ohwx, a photo"] * 2)
    feedback.set_mark(fs, keys[0], "good")
    feedback.set_mark(fs, keys[1], "bad")
    tune = node(pack, "RewardFineTune")()
    common = dict(training_set=training_set, base_model=base_model, feedback=fs,
                  weighting="marks", beta=1.0, learning_rate=1e-3, seed=0)
    with torch.inference_mode():
        out = tune.finetune(**common, max_train_steps=2, save_every_steps=1, lora=trained)
    lora, name, report, comparison = out["result"]
    assert name == "pia-reward.safetensors" and lora.lora_path.is_file() and lora.steps == 2
    assert "1 of weight 0 left out" in report and "before/after" in report
    assert comparison.ndim == 4 and comparison.shape[-1] == 3
    assert not any("lora_" in n for n, _ in base_model.unet.named_parameters())
    with torch.inference_mode():  # resume step 1 -> the same run, the same weighted set
        again = tune.finetune(**common, max_train_steps=3, save_every_steps=0,
                              lora_name="pia.safetensors",
                              resume_from=str(lora.checkpoints[0]))["result"][0]
    assert again.run_name == "pia-reward-2" and again.steps == 3
    config = module(lib, "training.config").load_config(again.run_dir)
    assert config.training_set == module(lib, "training.config").load_config(
        lora.run_dir).training_set
    errors = module(lib, "errors")
    with pytest.raises(errors.InputError, match="both lora and lora_name"):
        tune.finetune(**common, max_train_steps=1, save_every_steps=0, lora=trained,
                      lora_name="pia.safetensors")
    with pytest.raises(errors.InputError, match="needs the LoRA"):
        tune.finetune(**common, max_train_steps=1, save_every_steps=0)
