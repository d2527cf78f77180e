"""Full-size, randomly initialised SD 1.5 / SDXL single-file checkpoints.

What the real-ComfyUI tests and the GPU benchmark need is the real architecture (every tensor
name and shape of ``v1-5-pruned-emaonly.safetensors`` / ``sd_xl_base_1.0.safetensors``), not
trained weights, and nothing may be downloaded. The modules are built from the bundled configs
(``models/configs/<kind>``) on the meta device, so building allocates nothing, then each tensor
is materialised directly in the target precision and filled with small noise: default
initialisers (kaiming on ~1 B parameters, in fp32) would take far longer and need twice the
memory; so would fresh normal draws for every tensor (see `_Noise`). The scales keep
activations finite (weights ~ 1/sqrt(fan-in), norms around 1), which is all a forward /
backward pass of a test needs.

``unet_overrides`` changes the UNet's config (e.g. fewer levels) while the text encoder and VAE
stay full size: the smallest checkpoint ComfyUI still recognises as SD 1.5, for tests that
train on it (tests/training_comfy_model.py).

The file is written through `base_model.ldm_checkpoint`, the layout the tiny builders use, so
our loader and ComfyUI's CheckpointLoaderSimple read it as they read the real files. SD 1.5 in
fp16 is ~2.1 GB, SDXL ~6.9 GB.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..families import sd_configs
from .base_model import ldm_checkpoint

log = logging.getLogger(__name__)

_POOL = 1 << 21  # noise window, see _Noise
_DTYPES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def full_size_file(kind: str, seed: int = 0, dtype: torch.dtype = torch.float16, *,
                   unet_overrides: Mapping | None = None) -> str:
    """The file name `make_full_size_checkpoint` writes: ``sd15-random.safetensors`` for the
    defaults, with the seed and precision in it otherwise, and a hash of ``unet_overrides``
    when given (another architecture never reuses the file)."""
    if kind not in sd_configs.KINDS:
        raise ValueError(f"unknown kind '{kind}' (known: {', '.join(sd_configs.KINDS)})")
    suffix = "" if (seed, dtype) == (0, torch.float16) else f"-seed{seed}-{_DTYPES[dtype]}"
    if unet_overrides:
        digest = hashlib.sha256(json.dumps(dict(unet_overrides), sort_keys=True).encode())
        suffix = f"-unet{digest.hexdigest()[:8]}{suffix}"
    return f"{kind}-random{suffix}.safetensors"


def meta_components(kind: str = "sd15", *,
                    unet_overrides: Mapping | None = None) -> dict[str, nn.Module]:
    """The real ``kind`` modules ``{"unet", "vae", "text_encoder"[, "text_encoder_2"]}`` on the
    meta device: every name and shape, no memory (for key-name checks against the full
    architecture). ``unet_overrides``: UNet config values replacing the bundled ones."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    configs = sd_configs.bundled_configs(kind)
    with torch.device("meta"):
        modules = {
            "unet": UNet2DConditionModel.from_config({**configs["unet"],
                                                      **(unet_overrides or {})}),
            "vae": AutoencoderKL.from_config(configs["vae"]),
            "text_encoder": CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])),
        }
        if kind == "sdxl":
            modules["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig(**configs["text_encoder_2"]))
    return modules


def full_size_components(kind: str = "sd15", seed: int = 0,
                         dtype: torch.dtype = torch.float16, *,
                         unet_overrides: Mapping | None = None) -> dict[str, nn.Module]:
    """Random ``{"unet", "vae", "text_encoder"[, "text_encoder_2"]}`` of the real ``kind``
    architecture (UNet config changed by ``unet_overrides``) in ``dtype`` on the CPU,
    deterministic for ``seed``."""
    modules = meta_components(kind, unet_overrides=unet_overrides)
    noise = _Noise(torch.Generator().manual_seed(seed), dtype)
    for module in modules.values():
        with _quiet("diffusers"):  # its warning about fp32-only modules: SD has none
            module.to(dtype)
        module.to_empty(device="cpu")
        fill_random(module, noise)
    return {name: m.eval().requires_grad_(False) for name, m in modules.items()}


@torch.no_grad()
def fill_random(module: nn.Module, noise: _Noise) -> None:
    """Small noise for every parameter, buffers set to what the module's own init sets
    (meta-built modules have no values at all)."""
    for name, param in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if param.ndim >= 2:  # linear / conv weights, embedding tables
            scale = 0.02 if "embedding" in name else 1 / math.sqrt(param[0].numel())
            noise.fill(param, 0.0, scale)
        elif leaf == "weight":  # norm scales
            noise.fill(param, 1.0, 0.02)
        else:  # biases
            noise.fill(param, 0.0, 0.02)
    for name, buffer in module.named_buffers():
        if name.endswith("position_ids"):
            buffer.copy_(torch.arange(buffer.shape[-1]).expand_as(buffer))
        else:
            raise ValueError(f"no initial value known for buffer '{name}'")


class _Noise:
    """Normal noise cut from pools. Drawing ~1 B fresh normals (or scaling them in fp16) takes
    most of a minute on a small CPU; copying windows of one pool per (mean, std), each at a
    random offset, takes seconds. The noise repeats only inside tensors larger than a window,
    which no test can tell."""

    def __init__(self, generator: torch.Generator, dtype: torch.dtype):
        self.generator, self.dtype = generator, dtype
        self.base = torch.randn(2 * _POOL, generator=generator)
        self.pools: dict[tuple[float, float], torch.Tensor] = {}

    def fill(self, tensor: torch.Tensor, mean: float, std: float) -> None:
        key = (mean, std)
        if key not in self.pools:
            self.pools[key] = (self.base * std + mean).to(self.dtype)
        pool, flat = self.pools[key], tensor.view(-1)
        for start in range(0, flat.numel(), _POOL):
            part = flat[start:start + _POOL]
            offset = int(torch.randint(_POOL, (1,), generator=self.generator))
            part.copy_(pool[offset:offset + part.numel()])


@contextlib.contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def make_full_size_checkpoint(folder: Path, kind: str = "sd15", seed: int = 0,
                              dtype: torch.dtype = torch.float16, *,
                              unet_overrides: Mapping | None = None) -> Path:
    """Write ``folder/<kind>-random.safetensors``, a full-size random single-file checkpoint in
    the original layout (see the module docstring). Returns its path; an existing file of that
    name is kept as it is (the name holds the seed, precision and UNet overrides; the content
    is deterministic for them). Written through a temporary file, so a crash or a concurrent
    writer never leaves a partial file under the name."""
    from safetensors.torch import save_file

    path = Path(folder) / full_size_file(kind, seed, dtype, unet_overrides=unet_overrides)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    state = ldm_checkpoint(kind, full_size_components(kind, seed, dtype,
                                                      unet_overrides=unet_overrides))
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        save_file(state, str(temp), metadata={"format": "pt"})
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    log.info("wrote full-size random %s checkpoint %s", kind, path)
    return path
