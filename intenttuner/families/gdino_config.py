"""The `GroundingDinoConfig` of an original IDEA-Research GroundingDINO checkpoint, read from its
tensor shapes.

Original checkpoints ship without a usable config (the ``*.cfg.py`` files beside them are Python
and never executed), so every size the tensors determine is read from their shapes: Swin depths,
heads and window, BERT width and depth, encoder/decoder layers and widths, sampling points. What
shapes cannot tell comes from the bundled Swin-T config (``models/configs/grounding-dino``). The
tensor names are the original ones; `gdino_convert` renames them afterwards.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import torch

from .gdino_convert import count_indices, strip_module_prefix


def infer_config(
    shapes: Mapping[str, Sequence[int]],
    defaults: Mapping,
    *,
    decoder_bbox_embed_share: bool = True,
) -> dict:
    """A transformers GroundingDinoConfig dict for an original checkpoint with these shapes.

    ``shapes`` maps original tensor names (``module.`` already stripped) to their shapes.
    Every size that shapes determine is read from them (so tiny test checkpoints load too);
    ``defaults`` (the bundled Swin-T config) supplies what shapes cannot tell: the number of
    attention heads of the deformable layers (8 in all released checkpoints; the per-head
    sampling points are then derived), dropout rates and the like. BERT's head count follows the
    BERT convention of 64 channels per head. Raises ValueError when the shapes contradict
    each other (a truncated or foreign checkpoint).
    """
    names = list(shapes)
    config = {k: v for k, v in defaults.items() if k not in ("backbone_config", "text_config")}
    config["backbone_config"] = _swin_config(shapes, names, defaults["backbone_config"])
    config["text_config"] = _bert_config(shapes, names, defaults["text_config"])

    level_embed = shapes["transformer.level_embed"]
    d_model, levels = level_embed[1], level_embed[0]
    config.update(
        d_model=d_model,
        num_feature_levels=levels,
        num_queries=shapes["transformer.tgt_embed.weight"][0],
        encoder_layers=count_indices(names, r"transformer\.encoder\.layers\.(\d+)\."),
        decoder_layers=count_indices(names, r"transformer\.decoder\.layers\.(\d+)\."),
        encoder_ffn_dim=shapes["transformer.encoder.layers.0.linear1.weight"][0],
        decoder_ffn_dim=shapes["transformer.decoder.layers.0.linear1.weight"][0],
        decoder_bbox_embed_share=decoder_bbox_embed_share,
    )
    # Deformable attention predicts one weight per head x level x sampling point.
    for part, attn, key in (("encoder", "self_attn", "encoder_n_points"),
                            ("decoder", "cross_attn", "decoder_n_points")):
        weights = shapes[f"transformer.{part}.layers.0.{attn}.attention_weights.weight"][0]
        heads = config[f"{part}_attention_heads"]
        if weights % (heads * levels):
            raise ValueError(f"{part} attention weights ({weights}) do not split into "
                             f"{heads} heads x {levels} levels")
        config[key] = weights // (heads * levels)
    text_ffn = shapes["transformer.encoder.text_layers.0.linear1.weight"][0]
    if text_ffn != config["encoder_ffn_dim"] // 2:
        raise ValueError(f"text enhancer width {text_ffn} is not half the encoder width "
                         f"{config['encoder_ffn_dim']}; this GroundingDINO variant is unsupported")
    return config


def _swin_config(shapes: Mapping, names: list[str], defaults: Mapping) -> dict:
    stages = count_indices(names, r"backbone\.0\.layers\.(\d+)\.")
    depths = [count_indices(names, rf"backbone\.0\.layers\.{i}\.blocks\.(\d+)\.")
              for i in range(stages)]
    table = [shapes[f"backbone.0.layers.{i}.blocks.0.attn.relative_position_bias_table"]
             for i in range(stages)]
    side = math.isqrt(table[0][0])  # the table holds (2w-1)^2 relative offsets
    if side * side != table[0][0] or side % 2 == 0:
        raise ValueError(f"Swin relative position table of {table[0][0]} rows is not (2w-1)^2")
    proj = shapes["backbone.0.patch_embed.proj.weight"]  # (embed_dim, channels, patch, patch)
    embed_dim = proj[0]
    norm = re.compile(r"backbone\.0\.norm(\d+)\.weight$")  # one per stage fed to the detector
    out_indices = sorted(int(m.group(1)) + 1 for n in names if (m := norm.match(n)))
    config = dict(defaults)
    config.update(
        embed_dim=embed_dim,
        num_channels=proj[1],
        patch_size=proj[2],
        depths=depths,
        num_heads=[t[1] for t in table],
        window_size=(side + 1) // 2,
        mlp_ratio=shapes["backbone.0.layers.0.blocks.0.mlp.fc1.weight"][0] / embed_dim,
        qkv_bias="backbone.0.layers.0.blocks.0.attn.qkv.bias" in shapes,
        out_indices=out_indices,
        out_features=[f"stage{i}" for i in out_indices],
    )
    return config


def _bert_config(shapes: Mapping, names: list[str], defaults: Mapping) -> dict:
    vocab, hidden = shapes["bert.embeddings.word_embeddings.weight"]
    config = dict(defaults)
    config.update(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=count_indices(names, r"bert\.encoder\.layer\.(\d+)\."),
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=shapes["bert.encoder.layer.0.intermediate.dense.weight"][0],
        max_position_embeddings=shapes["bert.embeddings.position_embeddings.weight"][0],
        type_vocab_size=shapes["bert.embeddings.token_type_embeddings.weight"][0],
    )
    return config


def box_heads_shared(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True if all decoder layers use one box head (as in every released checkpoint)."""
    sd = strip_module_prefix(state_dict)
    first = {k[len("bbox_embed.0."):]: v for k, v in sd.items() if k.startswith("bbox_embed.0.")}
    for name, tensor in sd.items():
        m = re.match(r"bbox_embed\.(\d+)\.(.+)$", name)
        if m and m.group(1) != "0":
            ref = first.get(m.group(2))
            if ref is None or ref.shape != tensor.shape or not torch.equal(ref, tensor):
                return False
    return True
