"""`lora_applied`: a saved LoRA file on the loaded base model, as diffusers' own kohya loader
applies it, and the model given back untouched afterwards (the headless run generates with the
base model and then with its LoRA from one loaded model)."""

from __future__ import annotations

import pytest
import torch

from intenttuner.errors import InputError
from intenttuner.training.lora_apply import lora_applied
from intenttuner.training.trainer import train
from tests.training_run_helpers import assert_clean, fast_config, training_set

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    """A LoRA trained far enough (lr 1e-2) that it changes the UNet's output clearly."""
    items = training_set(tmp_path_factory.mktemp("set"))
    config = fast_config(items, max_train_steps=4, learning_rate=1e-2, rank=4, alpha=4,
                         output_dir=str(tmp_path_factory.mktemp("loras")))
    return config, train(config, base, items).lora_path


def noise_prediction(model) -> torch.Tensor:
    """The UNet's output for fixed latents, timestep and text: what every sampler step uses."""
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, generator=generator)
    tokens = model.tokenizer(["ohwx, a photo"], padding="max_length", return_tensors="pt",
                             max_length=model.tokenizer.model_max_length).input_ids
    with torch.no_grad():
        text = model.text_encoder(tokens)[0]
        return model.unet(latents, 500, encoder_hidden_states=text).sample


def test_the_lora_acts_as_diffusers_loads_it_and_the_model_comes_back(base, trained):
    config, path = trained
    before = noise_prediction(base)
    with lora_applied(base, config, path):
        ours = noise_prediction(base)
    assert torch.equal(noise_prediction(base), before)  # given back exactly
    assert_clean(base)
    assert (ours - before).abs().max() > 1e-3  # the LoRA does something
    # The reference: diffusers' own reader of kohya LoRA files, on the same modules.
    pipe = base.pipeline()
    pipe.load_lora_weights(str(path))
    try:
        reference = noise_prediction(base)
    finally:
        pipe.unload_lora_weights()
    assert torch.allclose(ours, reference, atol=1e-5), (ours - reference).abs().max()
    assert torch.equal(noise_prediction(base), before)


def test_a_lora_of_other_settings_is_refused_and_the_model_is_untouched(base, trained):
    config, path = trained
    other = config.model_copy(update={"rank": 8})
    with pytest.raises(InputError, match="do not match"), lora_applied(base, other, path):
        pass
    assert_clean(base)
