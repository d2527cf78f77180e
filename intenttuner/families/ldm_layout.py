"""Tensor names of the original (CompVis LDM / Stability SGM) single-file checkpoint layout.

Loading uses diffusers' own original→diffusers converters; this module goes the other way,
diffusers/transformers state dicts → original names, which the tiny-model builders need to write
test checkpoints in exactly the layout real ``v1-5-pruned-emaonly.safetensors`` and
``sd_xl_base_1.0.safetensors`` files use:

* ``model.diffusion_model.`` — UNet (``input_blocks`` / ``middle_block`` / ``output_blocks``)
* ``first_stage_model.`` — VAE (``encoder.down.N.block.M`` ..., attention as 1x1 convolutions)
* ``cond_stage_model.transformer.text_model.`` — SD 1.x CLIP-L (transformers names)
* ``conditioner.embedders.0.transformer.text_model.`` — SDXL CLIP-L (transformers names)
* ``conditioner.embedders.1.model.`` — SDXL OpenCLIP bigG (open_clip names)

The correspondences follow the ones in diffusers' ``scripts/convert_diffusers_to_original_
stable_diffusion.py`` / ``convert_diffusers_to_original_sdxl.py`` and ComfyUI's
``comfy/utils.py:unet_to_diffusers`` and ``comfy/diffusers_convert.py``; the code here is our
own (a per-key translation that refuses any name it does not know, so a builder can never write
a silently incomplete file).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch

from .sd_configs import CLIP_PREFIXES, OPEN_CLIP_G_PREFIX, UNET_PREFIX, VAE_PREFIX

Tensors = Mapping[str, torch.Tensor]

_RESNET = {  # diffusers ResnetBlock2D → LDM ResBlock
    "norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection",
}
_UNET_TOP = {
    "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
    "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def unet_to_ldm(state: Tensors, layers_per_block: int) -> dict[str, torch.Tensor]:
    """``UNet2DConditionModel.state_dict()`` → ``model.diffusion_model.*`` tensors.

    LDM numbers the UNet's blocks flat: ``input_blocks.0`` is conv_in, then per resolution
    ``layers_per_block`` (resnet [+ transformer]) blocks and one downsampler block;
    ``output_blocks`` hold ``layers_per_block + 1`` blocks per resolution, the upsampler sitting
    in the last one after the resnet (and the transformer, if the level has attention).
    """
    per_level = layers_per_block + 1
    up_has_attention = {int(m.group(1)) for k in state
                        if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}

    def rename(key: str) -> str:
        if m := re.fullmatch(r"(.+)\.(weight|bias)", key):
            module, param = m.groups()
            if module in _UNET_TOP:
                return f"{_UNET_TOP[module]}.{param}"
        if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            level, kind, i, rest = int(m[1]), m[2], int(m[3]), m[4]
            block = 1 + level * per_level + i
            return _block(f"input_blocks.{block}", kind, rest)
        if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            return f"input_blocks.{(int(m[1]) + 1) * per_level}.0.op.{m[2]}"
        if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
            return f"middle_block.1.{m[1]}"  # the middle block is one flat sequence
        if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
            return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
        if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            level, kind, i, rest = int(m[1]), m[2], int(m[3]), m[4]
            return _block(f"output_blocks.{level * per_level + i}", kind, rest)
        if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            level = int(m[1])
            slot = 2 if level in up_has_attention else 1
            return f"output_blocks.{level * per_level + layers_per_block}.{slot}.conv.{m[2]}"
        raise KeyError(f"no original-layout name known for UNet tensor '{key}'")

    return {UNET_PREFIX + rename(k): v for k, v in state.items()}


def _block(block: str, kind: str, rest: str) -> str:
    """Name inside one input/output block: slot 0 is the resnet, slot 1 the spatial
    transformer (whose inner names are the same in both layouts)."""
    return f"{block}.1.{rest}" if kind == "attentions" else f"{block}.0.{_resnet(rest)}"


def _resnet(rest: str) -> str:
    module, param = rest.rsplit(".", 1)
    if module not in _RESNET:
        raise KeyError(f"no original-layout name known for resnet tensor '{rest}'")
    return f"{_RESNET[module]}.{param}"


def vae_to_ldm(state: Tensors) -> dict[str, torch.Tensor]:
    """``AutoencoderKL.state_dict()`` → ``first_stage_model.*`` tensors.

    Decoder levels are numbered from the lowest resolution in diffusers and from the highest in
    LDM; the mid-block attention projections are 1x1 convolutions ``[C, C, 1, 1]`` in LDM files.
    """
    n_up = len({m.group(1) for k in state if (m := re.match(r"decoder\.up_blocks\.(\d+)\.", k))})
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            name = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
        elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)", key):
            name = f"encoder.down.{m[1]}.downsample.{m[2]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            name = f"decoder.up.{n_up - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)", key):
            name = f"decoder.up.{n_up - 1 - int(m[1])}.upsample.{m[2]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
            name = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(\w+)", key):
            name = f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
            if value.ndim == 2:
                value = value[:, :, None, None]
        name = name.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        out[VAE_PREFIX + name] = value
    return out


def clip_to_ldm(state: Tensors, kind: str) -> dict[str, torch.Tensor]:
    """``CLIPTextModel.state_dict()`` → the checkpoint's CLIP-L tensors (transformers names under
    ``<prefix>text_model.``; newer transformers drop the ``text_model.`` level in memory).

    Real files also carry ``embeddings.position_ids`` (a buffer older transformers saved), so
    the written file does too; loaders ignore it.
    """
    prefix = CLIP_PREFIXES[kind] + "text_model."
    out = {prefix + k.removeprefix("text_model."): v for k, v in state.items()}
    positions = out[prefix + "embeddings.position_embedding.weight"].shape[0]
    out[prefix + "embeddings.position_ids"] = torch.arange(positions)[None]
    return out


def open_clip_to_ldm(state: Tensors) -> dict[str, torch.Tensor]:
    """``CLIPTextModelWithProjection.state_dict()`` → SDXL's OpenCLIP bigG tensors.

    open_clip keeps q/k/v as one ``in_proj`` tensor (rows q, k, v), names the MLP ``c_fc``/
    ``c_proj`` and stores ``text_projection`` as a ``[width, dim]`` matrix used as
    ``x @ text_projection`` (the transpose of the linear layer's weight).
    """
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        key = key.removeprefix("text_model.")
        if m := re.fullmatch(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            qkv.setdefault(f"transformer.resblocks.{m[1]}.attn.in_proj_{m[3]}", {})[m[2]] = value
            continue
        out[_open_clip_name(key)] = value.T.contiguous() if key == "text_projection.weight" else value
    for name, parts in qkv.items():
        out[name] = torch.cat([parts["q"], parts["k"], parts["v"]])
    # CLIP's contrastive temperature, stored in real SDXL files (ln 100 once trained); unused
    # for text encoding.
    out["logit_scale"] = torch.tensor(math.log(100.0))
    return {OPEN_CLIP_G_PREFIX + k: v for k, v in out.items()}


def _open_clip_name(key: str) -> str:
    fixed = {
        "embeddings.token_embedding.weight": "token_embedding.weight",
        "embeddings.position_embedding.weight": "positional_embedding",
        "final_layer_norm.weight": "ln_final.weight",
        "final_layer_norm.bias": "ln_final.bias",
        "text_projection.weight": "text_projection",
    }
    if key in fixed:
        return fixed[key]
    m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)", key)
    if m is None:
        raise KeyError(f"no open_clip name known for text-encoder tensor '{key}'")
    rest = (m[2].replace("layer_norm1", "ln_1").replace("layer_norm2", "ln_2")
            .replace("self_attn.out_proj", "attn.out_proj")
            .replace("mlp.fc1", "mlp.c_fc").replace("mlp.fc2", "mlp.c_proj"))
    return f"transformer.resblocks.{m[1]}.{rest}"
