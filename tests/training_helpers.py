"""Small training sets and LoRA adapters shared by the training tests.

`make_kohya_set` writes a plain kohya folder (``<repeats>_<name>/`` with images and ``.txt``
captions) of simple, distinct images a tiny model can memorise: each is a smooth colour pattern
with its own hue, so "reproduces the training images" is measurable. `peft_adapters` puts LoRA
on every module type the trainer may target, for the kohya-format tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Every module type LoRA / LoCon may target: attention, projections, feed-forward, resnet and
# sampler convolutions, the time embedding; CLIP's attention and MLP projections.
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
                "ff.net.2", "conv1", "conv2", "conv_shortcut", "conv", "time_emb_proj"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def pattern(width: int, height: int, seed: int) -> Image.Image:
    """A smooth two-colour gradient with a bright square: simple, and different per seed."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 255, size=(2, 3))
    t = np.linspace(0, 1, width)[None, :, None]
    array = np.broadcast_to(a * (1 - t) + b * t, (height, width, 3)).copy()
    x, y = rng.integers(0, max(1, width // 2)), rng.integers(0, max(1, height // 2))
    array[y:y + height // 3, x:x + width // 3] = rng.uniform(128, 255, size=3)
    return Image.fromarray(array.astype(np.uint8))


def make_kohya_set(root: Path, count: int = 4, size: tuple[int, int] = (64, 64),
                   trigger: str = "ohwx", repeats: int = 1, sizes: list | None = None,
                   group: str = "subject", tint: tuple[int, int, int] | None = None,
                   tint_share: float = 0.6) -> Path:
    """Write ``root/<repeats>_<group>/img_<i>.png`` + captions ``"<trigger>, pattern <i>"``.

    ``sizes`` (one (w, h) per image) overrides ``size``, for bucket tests. ``tint``: an RGB
    colour blended into every pattern at ``tint_share``, for a set of one overall colour
    (the patterns still differ). Returns ``root``.
    """
    folder = Path(root) / f"{repeats}_{group}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width, height = sizes[i] if sizes else size
        image = pattern(width, height, seed=i)
        if tint is not None:
            image = Image.blend(image, Image.new("RGB", image.size, tint), tint_share)
        image.save(folder / f"img_{i}.png")
        (folder / f"img_{i}.txt").write_text(f"{trigger}, pattern {i}", encoding="utf-8")
    return Path(root)


def peft_adapters(modules: dict, rank: int = 4, random_b: bool = True) -> dict[str, dict]:
    """LoRA (alpha = rank) injected with peft (the call diffusers' ``add_adapter`` makes) into
    every `UNET_TARGETS` / `TEXT_TARGETS` module of ``modules`` (the VAE is skipped), in place;
    returns each component's peft state dict. ``random_b``: lora_B random instead of zero, so
    the adapters change the output. Meta modules (full architectures) get zero tensors of the
    adapters' shapes: only names and shapes matter there."""
    import torch
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

    adapters = {}
    for name, module in modules.items():
        if name == "vae":
            continue
        targets = UNET_TARGETS if name == "unet" else TEXT_TARGETS
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets,
                                           init_lora_weights=not random_b), module)
        adapters[name] = {k: torch.zeros(v.shape) if v.is_meta else v
                          for k, v in get_peft_model_state_dict(module).items()}
    return adapters
