"""Sampling a run as it stands (intenttuner.monitor.sampling): reproducible images for the same
seed and weights, and every component on the sampling device even when the host's manager
moves one away while loading another."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intenttuner.evaluation.prompts import PlanSettings, build_plan
from intenttuner.monitor import sampling
from intenttuner.monitor.settings import MonitorSettings
from tests.evaluation_helpers import intent
from tests.monitor_run_helpers import SIZE, VINCENT
from tests.training_run_helpers import load_tiny

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_sample_is_the_same_for_the_same_seed_and_weights(tmp_path, models_root):
    """Two calls give the same images and leave the model (train mode) and torch's random state
    as they were; another seed gives another image; and in float64, where rounding cannot
    blur it, an item's image does not depend on the batch it was sampled in."""
    model = load_tiny(tmp_path / "base")
    the_intent = intent(VINCENT, [("red", (10, 10, 50, 50))])
    items = build_plan(the_intent, PlanSettings(prompts_per_test=1, images_per_prompt=1)).items
    settings = MonitorSettings(sample_steps=2, batch_size=4)
    model.unet.train()
    rng = torch.get_rng_state()
    first = pixels(sampling.generate(model, items, settings, SIZE, "cpu"))
    again = pixels(sampling.generate(model, items, settings, SIZE, "cpu"))
    assert first.shape == (4, SIZE, SIZE, 3) and np.array_equal(first, again)
    assert model.unet.training and not model.vae.training
    assert torch.equal(rng, torch.get_rng_state())
    other = items[0].model_copy(update={"seed": items[0].seed + 1})
    assert not np.array_equal(pixels(sampling.generate(model, [other], settings, SIZE, "cpu")),
                              first[:1])
    for module in model.modules().values():
        module.double()
    batched = pixels(sampling.generate(model, items, settings, SIZE, "cpu"))
    alone = pixels(sampling.generate(model, items, MonitorSettings(sample_steps=2, batch_size=1),
                                     SIZE, "cpu"))
    assert np.abs(batched - alone).max() <= 1


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(image) for image in images]).astype(int)


CPU, GPU = torch.device("cpu"), torch.device("meta")  # "meta": a second device without data


class Component:
    """A component that only knows where it is (no tensors, so it can 'move' to meta)."""

    def __init__(self):
        self.device, self.training = CPU, True

    def parameters(self):
        yield torch.empty(0, device=self.device)

    def to(self, device):
        self.device = torch.device(device)
        return self

    def eval(self):
        self.training = False
        return self

    def train(self, mode=True):
        self.training = mode
        return self


class Managed:
    """The host's manager of one component: load() puts it on the GPU, and loading the VAE
    evicts the UNet to make room (ComfyUI on tight VRAM)."""

    offload_device = CPU

    def __init__(self, model, name):
        self.model, self.name = model, name

    def load(self):
        if self.name == "vae":
            self.model.parts["unet"].to(CPU)
        return self.model.parts[self.name].to(GPU)

    def offload(self):
        self.model.parts[self.name].to(CPU)


class TightModel:
    def __init__(self):
        self.parts = {name: Component() for name in ("unet", "text_encoder", "vae")}

    def modules(self):
        return dict(self.parts)

    def managed(self, name):
        return Managed(self, name)


def test_a_component_the_host_evicted_while_loading_another_is_placed_again():
    model = TightModel()
    with sampling.sampling_mode(model, GPU):
        assert {name: part.device for name, part in model.parts.items()} == {
            "unet": GPU, "text_encoder": GPU, "vae": GPU}
        assert not any(part.training for part in model.parts.values())
    # afterwards each back where it was (the offload device) and in train mode
    assert all(part.device == CPU and part.training for part in model.parts.values())
