"""Tiny random Stable Diffusion 1.5 / SDXL models, written in the real on-disk formats.

Tests and the smoke run load these through the same code as real checkpoints:

* `make_tiny_sd15_checkpoint` / `make_tiny_sdxl_checkpoint` write one ``.safetensors`` file in
  the original single-file layout (``model.diffusion_model.*``, ``first_stage_model.*``, the
  text encoders under their LDM/SGM prefixes), the layout of ``v1-5-pruned-emaonly`` and
  ``sd_xl_base_1.0``;
* `make_tiny_diffusers_folder` writes a diffusers folder (``model_index.json``, ``unet/``,
  ``vae/``, ``text_encoder/`` ... with weights named as on the Hub).

The architectures are the real ones scaled down (20-36 MB in fp32, mostly the 49408-token
embedding tables: the tokenizer is the real CLIP one). Nothing in the files says "tiny": the loader reads
the sizes from the tensor shapes, as it does for full-size files. Heads follow the real models'
rules (SD 1.5 UNet: 8 heads; SDXL UNet and all text encoders: 64 channels per head), which is
what the loader assumes. `tiny_components` rebuilds the exact modules a file was written from.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from pathlib import Path

import torch
from torch import nn

from ..families import ldm_layout, sd_configs

log = logging.getLogger(__name__)

TINY_SD15_FILE = "tiny-sd15-random.safetensors"
TINY_SDXL_FILE = "tiny-sdxl-random.safetensors"
TINY_DIFFUSERS_DIRS = {"sd15": "tiny-sd15-diffusers", "sdxl": "tiny-sdxl-diffusers"}

_TINY_VAE = {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "sample_size": 64}
_TINY_CLIP_L = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                "num_attention_heads": 1, "projection_dim": 32}
# Scaled-down configs over the bundled full-size ones. Three UNet levels with two layers each
# keep every naming case of the original layout (attention or not per level, upsamplers after a
# resnet or after a transformer, downsampler blocks).
_TINY = {
    "sd15": {
        "unet": {"block_out_channels": [32, 64, 64], "cross_attention_dim": 32,
                 "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                      "DownBlock2D"],
                 "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                 "sample_size": 8},
        "vae": _TINY_VAE,
        "text_encoder": _TINY_CLIP_L,
    },
    "sdxl": {
        # cross-attention width = CLIP-L width + bigG width (their hidden states are concatenated);
        # the extra conditioning = pooled bigG embedding + 6 size/crop numbers x 8 channels.
        "unet": {"block_out_channels": [32, 64, 64], "attention_head_dim": [1, 1, 1],
                 "transformer_layers_per_block": [1, 1, 2], "cross_attention_dim": 32 + 64,
                 "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 32 + 48,
                 "sample_size": 8},
        "vae": _TINY_VAE,
        "text_encoder": _TINY_CLIP_L,
        # A different width from CLIP-L, so the two encoders are never confused by shape.
        "text_encoder_2": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                           "num_attention_heads": 1, "projection_dim": 32},
    },
}


def tiny_configs(kind: str) -> dict[str, dict]:
    """The bundled ``kind`` configs with the tiny sizes applied (same keys as
    `sd_configs.bundled_configs`)."""
    configs = sd_configs.bundled_configs(kind)
    for component, values in _TINY[kind].items():
        configs[component].update(values)
    return configs


def tiny_components(kind: str, seed: int = 0) -> dict[str, nn.Module]:
    """Fresh tiny modules ``{"unet", "vae", "text_encoder"[, "text_encoder_2"]}`` in fp32.

    Deterministic for a given seed (the global RNG is left untouched). Every tensor, norms
    included, gets its own noise, so a writer or reader that swapped two same-shaped tensors
    would change the model's outputs. Built once per process, then copied.
    """
    return copy.deepcopy(_build_components(kind, seed))


@functools.lru_cache(maxsize=4)
def _build_components(kind: str, seed: int) -> dict[str, nn.Module]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    configs = tiny_configs(kind)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        modules = {
            "unet": UNet2DConditionModel.from_config(configs["unet"]),
            "vae": AutoencoderKL.from_config(configs["vae"]),
            "text_encoder": CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])),
        }
        if kind == "sdxl":
            modules["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig(**configs["text_encoder_2"]))
        with torch.no_grad():
            for module in modules.values():
                for p in module.parameters():
                    p.add_(0.05 * torch.randn_like(p))
    return {name: m.eval() for name, m in modules.items()}


def ldm_checkpoint(kind: str, modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """The single-file (original layout) tensors of ``modules`` (as from `tiny_components`, or
    full-size modules built from the bundled configs)."""
    layers = modules["unet"].config.layers_per_block
    state = {
        **ldm_layout.unet_to_ldm(modules["unet"].state_dict(), layers),
        **ldm_layout.vae_to_ldm(modules["vae"].state_dict()),
        **ldm_layout.clip_to_ldm(modules["text_encoder"].state_dict(), kind),
    }
    if kind == "sdxl":
        state.update(ldm_layout.open_clip_to_ldm(modules["text_encoder_2"].state_dict()))
    return {k: v.detach().contiguous() for k, v in state.items()}


def make_tiny_sd15_checkpoint(folder: Path) -> Path:
    """Write ``folder/tiny-sd15-random.safetensors``, an SD 1.5-architecture single-file
    checkpoint (fp32, ~19 MB) in the original layout. Returns its path."""
    return _write_checkpoint(Path(folder) / TINY_SD15_FILE, "sd15")


def make_tiny_sdxl_checkpoint(folder: Path) -> Path:
    """Write ``folder/tiny-sdxl-random.safetensors``, an SDXL-base-architecture single-file
    checkpoint (fp32, ~36 MB) in the original (SGM) layout. Returns its path."""
    return _write_checkpoint(Path(folder) / TINY_SDXL_FILE, "sdxl")


def _write_checkpoint(path: Path, kind: str) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(ldm_checkpoint(kind, tiny_components(kind)), str(path), metadata={"format": "pt"})
    log.debug("wrote tiny %s checkpoint %s", kind, path)
    return path


def make_tiny_diffusers_folder(folder: Path, kind: str = "sd15") -> Path:
    """Write ``folder/tiny-<kind>-diffusers/``, a diffusers-layout model folder of the same
    tiny modules as the single-file builders (same seed), with tokenizer files and
    ``model_index.json`` as on the Hub. Returns the model folder."""
    from safetensors.torch import save_file

    root = Path(folder) / TINY_DIFFUSERS_DIRS[kind]
    configs = tiny_configs(kind)
    modules = tiny_components(kind)
    root.mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(json.dumps(configs["model_index"], indent=2))
    modules["unet"].save_pretrained(root / "unet")
    modules["vae"].save_pretrained(root / "vae")
    for name in ("text_encoder", "text_encoder_2"):
        if name not in modules:
            continue
        (root / name).mkdir(exist_ok=True)
        config = modules[name].config.to_dict()
        config["architectures"] = [type(modules[name]).__name__]
        (root / name / "config.json").write_text(json.dumps(config, indent=2))
        # Hub text encoders name their tensors "text_model.*" (newer transformers would drop
        # that level when saving a CLIPTextModel); write them as found on the Hub.
        state = {("" if k.startswith(("text_model.", "text_projection")) else "text_model.") + k:
                 v.contiguous() for k, v in modules[name].state_dict().items()}
        save_file(state, str(root / name / "model.safetensors"), metadata={"format": "pt"})
    for name in ("tokenizer", "tokenizer_2"):
        if name in configs:
            sd_configs.write_clip_tokenizer(root / name, configs[name])
    (root / "scheduler").mkdir(exist_ok=True)
    (root / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(configs["scheduler"], indent=2))
    return root
