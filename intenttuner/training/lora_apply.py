"""A saved LoRA file applied to a loaded base model, for generating with it in-process (the
headless pipeline's evaluation of the trained LoRA; ComfyUI applies LoRAs its own way).

The file is read back through the same set-up training uses: `lora_setup.add_lora` with the
run's network settings, then the file's tensors loaded into those adapters (shapes checked), so
the model generates exactly what the saved file holds (its fp16 weights), and `remove_lora`
gives the model back untouched afterwards.

    with lora_applied(model, config, result.lora_path):
        images = sampling.generate(model, items, settings, size, device)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from ..families.sd_model import BaseModel
from .config import TrainConfig
from .kohya_keys import adapters_from_kohya
from .lora_file import read_lora_file
from .lora_setup import add_lora, load_adapter_state, remove_lora


@contextlib.contextmanager
def lora_applied(model: BaseModel, config: TrainConfig, path: str | os.PathLike
                 ) -> Iterator[BaseModel]:
    """``model`` with the LoRA file ``path`` (trained with ``config``'s rank, alpha, conv_rank
    and train_text_encoder) applied at strength 1 inside the block; restored after it, also on
    failure. `InputError` when the file is not a kohya LoRA or does not fit ``config``."""
    tensors, _ = read_lora_file(path)
    adapters, _ = adapters_from_kohya(tensors, model.kind, modules=model.modules())
    setup = add_lora(model, config, model.dtype)
    try:
        # The adapters' own parameters are fp32 (as in training); the file stores fp16.
        load_adapter_state(setup, {component: {k: v.to(torch.float32) for k, v in state.items()}
                                   for component, state in adapters.items()})
        yield model
    finally:
        remove_lora(setup)
