"""Convert original IDEA-Research GroundingDINO checkpoints to transformers' GroundingDino layout.

Other ComfyUI packs keep the original training checkpoints in ``models/grounding-dino``
(``groundingdino_swint_ogc.pth``, ``groundingdino_swinb_cogcoor.pth``). Their tensor names follow
the original code base (``backbone.0.layers.0.blocks.0.attn.qkv.weight``, ``transformer.encoder
.fusion_layers.0.gamma_v``, ``bert.encoder...``). This module renames them to the names of the
Hugging Face checkpoints (``IDEA-Research/grounding-dino-tiny``), here called the *hub format*
(the matching `GroundingDinoConfig` is inferred from the shapes by `gdino_config`).

The hub format is the right target because every transformers version reads it:
transformers 4.x uses these names in its modules, and transformers 5 renames them on load (and
back on ``save_pretrained``). So the converted dict is loaded with
``GroundingDinoForObjectDetection.from_pretrained(None, config=..., state_dict=...)`` and
transformers applies whatever renaming its own version needs.

The renaming table is our own; the correspondence of the two module trees was worked out from
the original implementation (github.com/IDEA-Research/GroundingDINO) with transformers'
``convert_grounding_dino_to_hf.py`` (github.com/huggingface/transformers, Apache-2.0) as a
guide. It was verified numerically against groundingdino-py's own model (full-size Swin-T and
Swin-B, random weights, same image and caption): logits agree to ~1e-4 and boxes to ~1e-6 once
the original's inverse-sigmoid epsilon is matched (1e-3 there, 1e-5 in transformers; it only
matters for normalised box coordinates within 0.001 of 0 or 1). tests/test_family_detector.py
checks every tensor name and shape of the real Swin-T checkpoint.

Everything here is tensor bookkeeping without file access; only `hub_state_dict` asks
transformers (imported there, not at module level).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)

# Placeholders in the templates below: ``{i}`` is a decimal index carried over unchanged;
# ``{s+1}`` is the same index plus one (Swin output norms: original ``norm1`` is transformers'
# ``stage2`` because transformers counts the patch-embedding stem as stage 0).
# A template ending in "." or "_" is a prefix: the rest of the name (``weight``/``bias``) is kept.
# Otherwise the template is a whole tensor name. ``{qkv}`` marks a fused input projection that
# the original stores as one tensor and transformers as three (query, key, value).
_HUB_SWIN = "model.backbone.conv_encoder.model."
_BLOCK = "backbone.0.layers.{i}.blocks.{j}."
_HUB_BLOCK = _HUB_SWIN + "encoder.layers.{i}.blocks.{j}."
_ENC = "transformer.encoder."
_DEC = "transformer.decoder.layers.{i}."
_HUB_DEC = "model.decoder.layers.{i}."

RENAMES: tuple[tuple[str, str], ...] = (
    # --- Swin image backbone -------------------------------------------------------------
    ("backbone.0.patch_embed.proj.", _HUB_SWIN + "embeddings.patch_embeddings.projection."),
    ("backbone.0.patch_embed.norm.", _HUB_SWIN + "embeddings.norm."),
    (_BLOCK + "norm1.", _HUB_BLOCK + "layernorm_before."),
    (_BLOCK + "norm2.", _HUB_BLOCK + "layernorm_after."),
    (_BLOCK + "attn.relative_position_bias_table",
     _HUB_BLOCK + "attention.self.relative_position_bias_table"),
    (_BLOCK + "attn.relative_position_index",
     _HUB_BLOCK + "attention.self.relative_position_index"),
    (_BLOCK + "attn.qkv.", _HUB_BLOCK + "attention.self.{qkv}."),
    (_BLOCK + "attn.proj.", _HUB_BLOCK + "attention.output.dense."),
    (_BLOCK + "mlp.fc1.", _HUB_BLOCK + "intermediate.dense."),
    (_BLOCK + "mlp.fc2.", _HUB_BLOCK + "output.dense."),
    ("backbone.0.layers.{i}.downsample.", _HUB_SWIN + "encoder.layers.{i}.downsample."),
    ("backbone.0.norm{s}.", _HUB_SWIN + "hidden_states_norms.stage{s+1}."),
    # --- text backbone (BERT) and projections -------------------------------------------
    ("bert.", "model.text_backbone."),
    ("feat_map.", "model.text_projection."),
    ("input_proj.", "model.input_proj_vision."),
    # --- encoder: deformable image layers, text enhancer layers, fusion layers -----------
    (_ENC + "layers.{i}.self_attn.", "model.encoder.layers.{i}.deformable_layer.self_attn."),
    (_ENC + "layers.{i}.norm1.", "model.encoder.layers.{i}.deformable_layer.self_attn_layer_norm."),
    (_ENC + "layers.{i}.linear1.", "model.encoder.layers.{i}.deformable_layer.fc1."),
    (_ENC + "layers.{i}.linear2.", "model.encoder.layers.{i}.deformable_layer.fc2."),
    (_ENC + "layers.{i}.norm2.", "model.encoder.layers.{i}.deformable_layer.final_layer_norm."),
    (_ENC + "text_layers.{i}.self_attn.in_proj_",
     "model.encoder.layers.{i}.text_enhancer_layer.self_attn.{qkv}."),
    (_ENC + "text_layers.{i}.self_attn.out_proj.",
     "model.encoder.layers.{i}.text_enhancer_layer.self_attn.out_proj."),
    (_ENC + "text_layers.{i}.linear1.", "model.encoder.layers.{i}.text_enhancer_layer.fc1."),
    (_ENC + "text_layers.{i}.linear2.", "model.encoder.layers.{i}.text_enhancer_layer.fc2."),
    (_ENC + "text_layers.{i}.norm1.",
     "model.encoder.layers.{i}.text_enhancer_layer.layer_norm_before."),
    (_ENC + "text_layers.{i}.norm2.",
     "model.encoder.layers.{i}.text_enhancer_layer.layer_norm_after."),
    (_ENC + "fusion_layers.{i}.gamma_v", "model.encoder.layers.{i}.fusion_layer.vision_param"),
    (_ENC + "fusion_layers.{i}.gamma_l", "model.encoder.layers.{i}.fusion_layer.text_param"),
    (_ENC + "fusion_layers.{i}.layer_norm_v.",
     "model.encoder.layers.{i}.fusion_layer.layer_norm_vision."),
    (_ENC + "fusion_layers.{i}.layer_norm_l.",
     "model.encoder.layers.{i}.fusion_layer.layer_norm_text."),
    (_ENC + "fusion_layers.{i}.attn.v_proj.",
     "model.encoder.layers.{i}.fusion_layer.attn.vision_proj."),
    (_ENC + "fusion_layers.{i}.attn.l_proj.",
     "model.encoder.layers.{i}.fusion_layer.attn.text_proj."),
    (_ENC + "fusion_layers.{i}.attn.values_v_proj.",
     "model.encoder.layers.{i}.fusion_layer.attn.values_vision_proj."),
    (_ENC + "fusion_layers.{i}.attn.values_l_proj.",
     "model.encoder.layers.{i}.fusion_layer.attn.values_text_proj."),
    (_ENC + "fusion_layers.{i}.attn.out_v_proj.",
     "model.encoder.layers.{i}.fusion_layer.attn.out_vision_proj."),
    (_ENC + "fusion_layers.{i}.attn.out_l_proj.",
     "model.encoder.layers.{i}.fusion_layer.attn.out_text_proj."),
    # --- decoder -------------------------------------------------------------------------
    (_DEC + "cross_attn.", _HUB_DEC + "encoder_attn."),
    (_DEC + "norm1.", _HUB_DEC + "encoder_attn_layer_norm."),
    (_DEC + "ca_text.in_proj_", _HUB_DEC + "encoder_attn_text.{qkv}."),
    (_DEC + "ca_text.out_proj.", _HUB_DEC + "encoder_attn_text.out_proj."),
    (_DEC + "catext_norm.", _HUB_DEC + "encoder_attn_text_layer_norm."),
    (_DEC + "self_attn.in_proj_", _HUB_DEC + "self_attn.{qkv}."),
    (_DEC + "self_attn.out_proj.", _HUB_DEC + "self_attn.out_proj."),
    (_DEC + "norm2.", _HUB_DEC + "self_attn_layer_norm."),
    (_DEC + "linear1.", _HUB_DEC + "fc1."),
    (_DEC + "linear2.", _HUB_DEC + "fc2."),
    (_DEC + "norm3.", _HUB_DEC + "final_layer_norm."),
    ("transformer.decoder.norm.", "model.decoder.layer_norm."),
    ("transformer.decoder.ref_point_head.", "model.decoder.reference_points_head."),
    ("transformer.decoder.bbox_embed.", "model.decoder.bbox_embed."),
    # --- two-stage proposal head, queries, box heads --------------------------------------
    ("transformer.level_embed", "model.level_embed"),
    ("transformer.tgt_embed.", "model.query_position_embeddings."),
    ("transformer.enc_output.", "model.enc_output."),
    ("transformer.enc_output_norm.", "model.enc_output_norm."),
    ("transformer.enc_out_bbox_embed.", "model.encoder_output_bbox_embed."),
    ("bbox_embed.", "bbox_embed."),
)

# Tensors the original checkpoints carry that inference does not use (so transformers has no
# place for them): the denoising-training label embedding, BERT's pooler (GroundingDINO only
# reads the token features) and BERT buffers that older transformers versions saved.
DROPPED = re.compile(
    r"^(label_enc\.weight|bert\.pooler\..*|bert\.embeddings\.(position_ids|token_type_ids))$"
)

# Hub-format tensors transformers itself may omit or add (``_keys_to_ignore_on_load_*`` of
# GroundingDinoForObjectDetection): Swin's index buffers are recomputed from the config, and
# transformers 5 saves the final norm of its Swin model, which the backbone never uses.
HUB_OPTIONAL = re.compile(r".*\.relative_position_index$")
HUB_UNUSED = re.compile(r"^model\.backbone\.conv_encoder\.model\.swin\.layernorm\.")

QKV = ("query", "key", "value")
# Prefixes by which checkpoints of each layout are recognised (after stripping "module.").
ORIGINAL_MARKERS = ("backbone.0.", "transformer.", "bert.")
HUB_MARKERS = ("model.backbone.conv_encoder.", "model.text_backbone.")


@dataclass(frozen=True)
class _Template:
    regex: re.Pattern
    text: str
    offsets: dict[str, int]  # placeholder name -> offset added to the canonical index


def _compile(template: str) -> _Template:
    pattern, offsets, pos = "^", {}, 0
    for m in re.finditer(r"\{(\w+)(\+1)?\}", template):
        pattern += re.escape(template[pos:m.start()])
        name = m.group(1)
        if name == "qkv":
            pattern += "(?P<qkv>query|key|value)"
        else:
            offsets[name] = 1 if m.group(2) else 0
            pattern += rf"(?P<{name}>\d+)"
        pos = m.end()
    pattern += re.escape(template[pos:])
    pattern += "(?P<rest>.+)$" if template.endswith((".", "_")) else "(?P<rest>)$"
    return _Template(re.compile(pattern), template, offsets)


def _format(template: _Template, indices: dict[str, int], rest: str) -> str:
    """Fill ``template`` with ``indices``; a ``{qkv}`` placeholder is left for the caller."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        return m.group(0) if name == "qkv" else str(indices[name] + template.offsets[name])

    return re.sub(r"\{(\w+)(\+1)?\}", sub, template.text) + rest


_RULES = tuple((_compile(src), _compile(dst)) for src, dst in RENAMES)


def _rename(name: str, forward: bool) -> tuple[str, bool] | None:
    """Map one name across; returns ``(new_name, fused)`` or None if no rule matches.

    For fused projections, forward returns the name with a ``{qkv}`` placeholder still in it;
    backward returns the original fused name (the caller concatenates the three parts).
    """
    for src, dst in _RULES:
        if not forward:
            src, dst = dst, src
        m = src.regex.match(name)
        if m is None:
            continue
        groups = m.groupdict()
        indices = {k: int(v) - src.offsets[k] for k, v in groups.items() if k in src.offsets}
        return _format(dst, indices, groups["rest"]), "{qkv}" in src.text + dst.text
    return None


def strip_module_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix DistributedDataParallel training leaves on every name."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def is_original_layout(names: Iterable[str]) -> bool:
    """True if ``names`` look like an original IDEA-Research GroundingDINO checkpoint.

    The BERT text encoder next to ``transformer.`` is what tells GroundingDINO apart from
    DINO / Deformable-DETR checkpoints, which share the other prefixes.
    """
    names = [n.removeprefix("module.") for n in names]
    return all(any(n.startswith(m) for n in names) for m in ORIGINAL_MARKERS)


def is_hub_layout(names: Iterable[str]) -> bool:
    """True if ``names`` look like a Hugging Face GroundingDino checkpoint (hub format)."""
    names = list(names)
    return all(any(n.startswith(m) for n in names) for m in HUB_MARKERS) and any(
        n.startswith("model.encoder.layers.") and ".fusion_layer." in n for n in names
    )


@dataclass
class Conversion:
    """Result of `original_to_hub`: the renamed tensors and the names no rule knew."""

    state_dict: dict[str, torch.Tensor]
    unknown: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def original_to_hub(state_dict: Mapping[str, torch.Tensor]) -> Conversion:
    """Rename an original GroundingDINO state dict to the hub format.

    Fused ``qkv``/``in_proj`` projections (rows ordered query, key, value) are split in three.
    Names no rule knows are returned in ``unknown`` (the caller decides whether that is fatal);
    unused training leftovers (see `DROPPED`) are listed in ``dropped``.
    """
    result = Conversion({})
    for name, tensor in strip_module_prefix(state_dict).items():
        if DROPPED.match(name):
            result.dropped.append(name)
            continue
        mapped = _rename(name, forward=True)
        if mapped is None:
            result.unknown.append(name)
            continue
        new_name, fused = mapped
        if not fused:
            result.state_dict[new_name] = tensor
            continue
        if tensor.shape[0] % 3:
            raise ValueError(f"fused projection {name} has {tensor.shape[0]} rows, not 3 x n")
        for part, chunk in zip(QKV, tensor.chunk(3, dim=0), strict=True):
            result.state_dict[new_name.replace("{qkv}", part)] = chunk
    return result


def hub_to_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of `original_to_hub`: hub-format tensors to original names.

    Used to write tiny original-format checkpoints and to read a bare hub-format file.
    ``save_pretrained`` omits tied copies of the box head (``bbox_embed.1..`` and
    ``model.decoder.bbox_embed.*`` share ``bbox_embed.0``); the original checkpoints store every
    copy, so they are restored here. Raises ValueError for a name no rule knows.
    """
    state_dict = _untie_box_heads(state_dict)
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in state_dict.items():
        if HUB_UNUSED.match(name):
            continue
        mapped = _rename(name, forward=False)
        if mapped is None:
            raise ValueError(f"no original GroundingDINO name for tensor '{name}'")
        new_name, is_fused = mapped
        if is_fused:
            part = re.search(r"\.(query|key|value)\.(weight|bias)$", name).group(1)
            fused.setdefault(new_name, {})[part] = tensor
        else:
            out[new_name] = tensor
    for name, parts in fused.items():
        if set(parts) != set(QKV):
            raise ValueError(f"'{name}' needs query, key and value; found {sorted(parts)}")
        out[name] = torch.cat([parts[p] for p in QKV], dim=0)
    return out


def _untie_box_heads(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = dict(state_dict)
    layers = count_indices(sd, r"model\.decoder\.layers\.(\d+)\.")
    head0 = {k[len("bbox_embed.0."):]: v for k, v in sd.items() if k.startswith("bbox_embed.0.")}
    for i in range(layers):
        for rest, tensor in head0.items():
            sd.setdefault(f"bbox_embed.{i}.{rest}", tensor)
    for i in range(layers):
        for rest in head0:
            sd.setdefault(f"model.decoder.bbox_embed.{i}.{rest}", sd[f"bbox_embed.{i}.{rest}"])
    return sd


def count_indices(names: Iterable[str], pattern: str) -> int:
    """Number of distinct indices captured by ``pattern`` (a regex with one group), e.g. the
    decoder layers of a checkpoint; ValueError when the indices are not 0..n-1."""
    rx = re.compile(pattern)
    found = {int(m.group(1)) for n in names if (m := rx.match(n))}
    if found and found != set(range(max(found) + 1)):
        raise ValueError(f"indices for '{pattern}' are not contiguous: {sorted(found)}")
    return len(found)


def hub_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` under hub-format names, whatever transformers version is installed.

    transformers 5 names its modules differently and converts on save; 4.x modules use the hub
    names directly. Tied copies are kept (they are separate entries of ``state_dict``).
    """
    state_dict = model.state_dict()
    try:  # transformers >= 5
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError:
        return dict(state_dict)
    return dict(revert_weight_conversion(model, dict(state_dict)))
