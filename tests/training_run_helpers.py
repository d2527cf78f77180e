"""Helpers of the trainer tests (tests/test_training_loop.py, tests/test_training_run.py): the
tiny models loaded once per module, a small set, fast settings, and the check that the shared
base model came back from training untouched."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from peft.tuners.lora import LoraLayer

from intenttuner.dataset.kohya_read import read_training_set
from intenttuner.families.base_model import load_base_model
from intenttuner.tiny.base_model import make_tiny_sd15_checkpoint, make_tiny_sdxl_checkpoint
from intenttuner.training.config import make_config
from tests.training_helpers import make_kohya_set


def load_tiny(folder: Path, kind: str = "sd15"):
    make = make_tiny_sdxl_checkpoint if kind == "sdxl" else make_tiny_sd15_checkpoint
    return load_base_model(make(folder), precision="fp32")


def training_set(root: Path, **values):
    """The 4-image trigger set ("ohwx, pattern <i>", 64 px) as read by the trainer."""
    return read_training_set(make_kohya_set(root / "set", **values))


def fast_config(items, **values):
    """Settings for CPU tests: 64 px, no checkpointing (no memory to save), no disk cache."""
    settings = dict(base_model="tiny", training_set=items.root, resolution=64,
                    gradient_checkpointing=False, cache_latents_to_disk=False,
                    learning_rate=1e-3, max_train_steps=4)
    return make_config(**{**settings, **values})


def assert_clean(model, dtype=torch.float32) -> None:
    """No adapter, peft config, checkpointing or dtype change left on the base model."""
    for name, module in model.modules().items():
        assert not any(isinstance(m, LoraLayer) for m in module.modules()), name
        assert not hasattr(module, "peft_config"), name
        assert all(p.dtype == dtype for p in module.parameters()), name
    assert not model.unet.is_gradient_checkpointing


def single_thread():
    """Run torch on one thread for a test module (a generator for a fixture): the test
    machines' 2 cores are shared by several processes, where torch's spinning intra-op
    threads make every step several times slower than one thread does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def folders_at(root: Path):
    """The runtime's models and output folders under ``root`` for a module-scoped fixture
    (``models_root`` is per test), restored afterwards."""
    from intenttuner import runtime

    saved = runtime.get_runtime()
    runtime.set_runtime(runtime.TorchRuntime(models_dir=root / "models",
                                             output_dir=root / "output"))
    try:
        yield root
    finally:
        runtime.set_runtime(saved)


@contextlib.contextmanager
def another_checkpoint(base):
    """``base`` changed into another checkpoint of the same architecture (one weight scaled),
    restored afterwards: what a LoRA trained on ``base`` must be refused on."""
    import torch

    weight = base.unet.conv_in.weight
    kept = weight.data.clone()
    try:
        with torch.no_grad():
            weight.mul_(1.5)
        yield base
    finally:
        with torch.no_grad():
            weight.copy_(kept)
