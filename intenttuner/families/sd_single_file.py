"""Building the diffusers/transformers modules of a single-file SD 1.5 / SDXL checkpoint.

The file's tensors are in the original (CompVis LDM / Stability SGM) layout; diffusers' own
original→diffusers converters rename them, the modules are built empty (meta device) from the
configs `sd_configs` wrote, and the converted tensors are loaded strictly: a tensor the module
needs but the file lacks is an error, never a silently random weight.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsCorruptError
from .sd_configs import OPEN_CLIP_G_PREFIX, VAE_PREFIX

log = logging.getLogger(__name__)


def unet_from_ldm(state: dict, config_dir: Path, dtype: torch.dtype, path: Path) -> Any:
    """The UNet2DConditionModel of original-layout ``state``, config from ``config_dir``."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    config = UNet2DConditionModel.load_config(config_dir, subfolder="unet")
    converted = _convert(convert_ldm_unet_checkpoint, path, "UNet", state, config=config)
    return _assign(UNet2DConditionModel, config, converted, dtype, path, "UNet")


def vae_from_ldm(state: dict, config_dir: Path, dtype: torch.dtype, path: Path) -> Any:
    """The AutoencoderKL of original-layout ``state``, config from ``config_dir``."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    config = AutoencoderKL.load_config(config_dir, subfolder="vae")
    vae_state = {k: v for k, v in state.items() if k.startswith(VAE_PREFIX)}
    converted = _convert(convert_ldm_vae_checkpoint, path, "VAE", vae_state, config=config)
    return _assign(AutoencoderKL, config, converted, dtype, path, "VAE")


def clip_from_ldm(state: dict, config_dir: Path, dtype: torch.dtype, path: Path) -> Any:
    """The CLIP ViT-L/14 text encoder (CLIPTextModel) of original-layout ``state``."""
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel

    converted = _convert(convert_ldm_clip_checkpoint, path, "CLIP text encoder", state)
    return _text_model(CLIPTextModel, CLIPTextConfig.from_pretrained(config_dir), converted,
                       dtype, path, "CLIP text encoder")


def open_clip_from_ldm(state: dict, config_dir: Path, dtype: torch.dtype, path: Path) -> Any:
    """SDXL's OpenCLIP bigG text encoder (CLIPTextModelWithProjection) of ``state``."""
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    config = CLIPTextConfig.from_pretrained(config_dir)
    with torch.device("meta"):  # the converter only reads the model's config
        shell = CLIPTextModelWithProjection(config)
    converted = _convert(convert_open_clip_checkpoint, path, "OpenCLIP text encoder", shell,
                         state, prefix=OPEN_CLIP_G_PREFIX)
    return _text_model(CLIPTextModelWithProjection, config, converted, dtype, path,
                       "OpenCLIP text encoder")


def _convert(fn: Any, path: Path, component: str, *args: Any, **kwargs: Any) -> dict:
    """Run one of diffusers' original→diffusers key converters, naming the file on failure."""
    try:
        return fn(*args, **kwargs)
    except (KeyError, IndexError, ValueError) as exc:
        raise WeightsCorruptError(f"{path}: the {component} tensors do not have the layout of an "
                                  f"SD checkpoint ({type(exc).__name__}: {exc}).") from None


def _assign(cls: Any, config: dict, converted: dict, dtype: torch.dtype, path: Path,
            component: str) -> Any:
    """Build a diffusers model without random init and load ``converted`` strictly."""
    with torch.device("meta"):
        model = cls.from_config(config)
    # Cast the tensors, not the module: diffusers' Module.to(dtype) logs a spurious warning.
    converted = {k: v.to(dtype) if v.is_floating_point() else v for k, v in converted.items()}
    try:
        missing, unexpected = model.load_state_dict(converted, strict=False, assign=True)
    except RuntimeError as exc:  # shape mismatches
        raise WeightsCorruptError(f"{path}: {component} tensors do not fit the architecture "
                                  f"read from the file: {str(exc)[:500]}") from None
    _check_complete(path, component, missing, unexpected)
    return model.eval()


def _text_model(cls: Any, config: Any, converted: dict, dtype: torch.dtype, path: Path,
                component: str) -> Any:
    try:
        model, info = cls.from_pretrained(None, config=config, state_dict=converted,
                                          output_loading_info=True)
    except (RuntimeError, ValueError) as exc:
        raise WeightsCorruptError(f"{path}: {component} tensors do not fit the architecture "
                                  f"read from the file: {str(exc)[:500]}") from None
    # Entries of mismatched_keys are (name, file shape, model shape) tuples.
    mismatched = {m[0] if isinstance(m, tuple) else m for m in info["mismatched_keys"]}
    _check_complete(path, component, set(info["missing_keys"]) | mismatched,
                    info["unexpected_keys"])
    return model.to(dtype).eval()


def _check_complete(path: Path, component: str, missing: Iterable[str],
                    unexpected: Iterable[str]) -> None:
    missing = sorted(missing)
    if missing:
        raise WeightsCorruptError(
            f"{path} lacks {len(missing)} {component} tensors (e.g. {', '.join(missing[:3])}); "
            "the file is damaged or not a standard SD 1.5/SDXL checkpoint."
        )
    unexpected = sorted(k for k in unexpected if not k.endswith("position_ids"))
    if unexpected:
        log.warning("%s: ignored %d unused %s tensors (e.g. %s)", path.name, len(unexpected),
                    component, ", ".join(unexpected[:3]))
