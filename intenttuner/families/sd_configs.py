"""Offline diffusers configs and CLIP tokenizers for Stable Diffusion 1.5 / SDXL checkpoints.

A single-file checkpoint holds weights only. To build diffusers/transformers modules around
them we need each component's config and the tokenizer files, which diffusers normally fetches
from the Hugging Face Hub. Instead:

* the standard configs of SD 1.5 and SDXL base ship with the pack as JSON, in diffusers' folder
  layout, under ``models/configs/sd15`` and ``models/configs/sdxl``;
* the architecture numbers that can be read off the tensors (channels, block and layer counts,
  attention context width, text-encoder widths and depths) are read from the checkpoint's tensor
  shapes and override the bundled values, so any file with the SD 1.5 / SDXL *structure* loads,
  including the tiny test models. For real checkpoints the shape-derived values equal the bundled
  ones (tested). What shapes cannot tell (head counts, activations, norm epsilons, the scheduler)
  comes from the bundled config: SD 1.5's UNet has 8 heads per block, SDXL's 64 channels per
  head, and both CLIP text encoders 64 channels per head;
* the CLIP BPE tokenizer files (``vocab.json``/``merges.txt``) are generated from the BPE merge
  list that open_clip ships (``bpe_simple_vocab_16e6.txt.gz``), in the same order as OpenAI
  CLIP's ``SimpleTokenizer`` builds its vocabulary, so token ids equal open_clip's and those of
  the Hub's ``openai/clip-vit-large-patch14`` tokenizer.

Nothing here touches the network.
"""

from __future__ import annotations

import copy
import functools
import gzip
import importlib.util
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError, MissingDependencyError

log = logging.getLogger(__name__)

# The pack's bundled configs: <pack>/models/configs/<kind>/<component>/config.json
CONFIGS_DIR = Path(__file__).resolve().parents[2] / "models" / "configs"
KINDS = ("sd15", "sdxl")

# Component sub-folder → the JSON file diffusers/transformers read there.
_CONFIG_FILES = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "text_encoder_2": "config.json",
    "scheduler": "scheduler_config.json",
    "tokenizer": "tokenizer_config.json",
}

# LDM prefixes of the components inside an original-layout checkpoint.
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIXES = {  # kind → prefix of the OpenAI CLIP-L text encoder (transformers layout)
    "sd15": "cond_stage_model.transformer.",
    "sdxl": "conditioner.embedders.0.transformer.",
}
OPEN_CLIP_G_PREFIX = "conditioner.embedders.1.model."  # SDXL's OpenCLIP bigG (open_clip layout)

# Channels per attention head where the original code fixes a width rather than a head count.
_HEAD_WIDTH = 64
_SD15_UNET_HEADS = 8

# Size of CLIP's byte-level BPE: 256 byte symbols, 256 end-of-word byte symbols, 48894 merges,
# then the two special tokens → 49408 ids.
_BPE_MERGES = 49152 - 256 - 2


# --------------------------------------------------------------------------------------------
# Bundled configs
# --------------------------------------------------------------------------------------------
def bundled_configs(kind: str) -> dict[str, dict]:
    """A copy of the bundled configs of ``kind`` ("sd15"/"sdxl"): ``"model_index"`` plus one
    dict per sub-folder ("unet", "vae", "text_encoder", "scheduler", "tokenizer", ...; for
    tokenizers the tokenizer_config.json content)."""
    if kind not in KINDS:
        raise InputError(f"unknown Stable Diffusion kind '{kind}'; known: {', '.join(KINDS)}.")
    return copy.deepcopy(_read_bundled(kind))


@functools.cache
def _read_bundled(kind: str) -> dict[str, dict]:
    root = CONFIGS_DIR / kind
    if not root.is_dir():
        raise InputError(
            f"The bundled Stable Diffusion configs are missing ({root}). Reinstall the IntentTuner "
            "node pack: the folder models/configs ships with it."
        )
    configs = {"model_index": json.loads((root / "model_index.json").read_text("utf-8"))}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = "tokenizer" if folder.name.startswith("tokenizer") else folder.name
        configs[folder.name] = json.loads((folder / _CONFIG_FILES[name]).read_text("utf-8"))
    return configs


def write_config_dir(dest: Path, kind: str, overrides: Mapping[str, Mapping] | None = None) -> Path:
    """Write a complete diffusers-layout config folder for ``kind`` into ``dest``.

    ``overrides`` maps a component ("unet", "vae", "text_encoder", ...) to config values that
    replace the bundled ones (the values read from a checkpoint's shapes). Tokenizer folders get
    generated ``vocab.json``/``merges.txt``. Returns ``dest``.
    """
    configs = bundled_configs(kind)
    for component, values in (overrides or {}).items():
        configs[component].update(values)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "model_index.json").write_text(json.dumps(configs.pop("model_index"), indent=2))
    for component, config in configs.items():
        folder = dest / component
        folder.mkdir(exist_ok=True)
        if component.startswith("tokenizer"):
            write_clip_tokenizer(folder, config)
        else:
            (folder / _CONFIG_FILES[component]).write_text(json.dumps(config, indent=2))
    return dest


# --------------------------------------------------------------------------------------------
# CLIP tokenizer files, generated offline
# --------------------------------------------------------------------------------------------
def write_clip_tokenizer(folder: Path, tokenizer_config: Mapping) -> Path:
    """Write a Hugging Face ``CLIPTokenizer`` folder (vocab.json, merges.txt, configs).

    ``tokenizer_config`` is the tokenizer_config.json content; its ``pad_token`` matters: SD 1.5
    and SDXL's first tokenizer pad with ``<|endoftext|>`` (id 49407), SDXL's second with ``!``
    (id 0, as open_clip pads).
    """
    vocab, merges = clip_bpe_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(dict(tokenizer_config), indent=2))
    special = {k: tokenizer_config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    return folder


@functools.lru_cache(maxsize=1)
def clip_bpe_vocab() -> tuple[dict[str, int], list[str]]:
    """CLIP's BPE vocabulary ``{token: id}`` and merge list ("a b" strings, by rank).

    Built the way OpenAI CLIP's ``SimpleTokenizer`` builds it (idea and order from
    openai/CLIP ``simple_tokenizer.py``, also in open_clip ``tokenizer.py``): the 256 byte
    symbols, the same with ``</w>``, one token per merge, then ``<|startoftext|>`` and
    ``<|endoftext|>``.
    """
    lines = gzip.decompress(_bpe_file().read_bytes()).decode("utf-8").split("\n")
    merges = [" ".join(line.split()) for line in lines[1 : _BPE_MERGES + 1]]
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + [m.replace(" ", "") for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def _bpe_file() -> Path:
    # Located without importing open_clip (slow to import, and only its data file is needed).
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            "open_clip", "Loading single-file Stable Diffusion checkpoints (CLIP tokenizer)",
            "open_clip_torch",
        )
    path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise MissingDependencyError(
            "open_clip", f"The CLIP tokenizer vocabulary ({path} is missing)", "open_clip_torch"
        )
    return path


def _byte_symbols() -> list[str]:
    """The 256 printable characters byte-level BPE uses for bytes, in CLIP's vocabulary order.

    GPT-2's trick (reused by CLIP): bytes that are printable characters stand for themselves,
    the others are given the code points 256, 257, ... in byte order. The printable ones come
    first in the vocabulary.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in set(printable)]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


# --------------------------------------------------------------------------------------------
# Configs read from tensor shapes
# --------------------------------------------------------------------------------------------
Shapes = Mapping[str, tuple[int, ...]]


def infer_overrides(kind: str, shapes: Shapes) -> dict[str, dict]:
    """Config values of every component of a ``kind`` checkpoint, read from its tensor shapes.

    ``shapes`` maps original-layout tensor names to shapes. The result is meant for
    `write_config_dir` / `bundled_configs(...)[component].update(...)`.
    """
    clip = _text_encoder_config(shapes, CLIP_PREFIXES[kind] + "text_model.")
    overrides = {"vae": _vae_config(shapes), "text_encoder": clip}
    context_dim = clip["hidden_size"]
    pooled_dim = None
    if kind == "sdxl":
        big_g = _open_clip_config(shapes, OPEN_CLIP_G_PREFIX)
        overrides["text_encoder_2"] = big_g
        context_dim += big_g["hidden_size"]
        pooled_dim = big_g["projection_dim"]
    overrides["unet"] = _unet_config(kind, shapes, context_dim, pooled_dim)
    return overrides


def _unet_config(kind: str, shapes: Shapes, context_dim: int, pooled_dim: int | None) -> dict:
    """UNet2DConditionModel config values from the LDM UNet (``model.diffusion_model.*``)."""
    s = {k[len(UNET_PREFIX):]: v for k, v in shapes.items() if k.startswith(UNET_PREFIX)}
    n_inputs = _count(s, r"input_blocks\.(\d+)\.")
    n_levels = _count(s, r"input_blocks\.(\d+)\.0\.op\.weight", distinct_only=True) + 1
    layers, rest = divmod(n_inputs - 1 - (n_levels - 1), n_levels)
    if rest or layers < 1:
        raise InputError(f"its UNet has {n_inputs} input blocks over {n_levels} resolutions")
    channels, depths = [], []
    for level in range(n_levels):
        block = f"input_blocks.{1 + level * (layers + 1)}"
        channels.append(s[f"{block}.0.out_layers.3.weight"][0])
        depths.append(_count(s, rf"{block}\.1\.transformer_blocks\.(\d+)\."))
    attn = next((f"input_blocks.{1 + i * (layers + 1)}.1" for i, d in enumerate(depths) if d),
                "middle_block.1")
    mid_depth = _count(s, r"middle_block\.1\.transformer_blocks\.(\d+)\.")
    if mid_depth != max(depths):
        raise InputError(f"its UNet middle block has {mid_depth} transformer layers, the "
                         f"deepest down block {max(depths)}")
    if s["time_embed.0.weight"][0] != 4 * channels[0]:
        raise InputError("its UNet time embedding is not 4x as wide as the first block")
    if s[f"{attn}.transformer_blocks.0.attn2.to_k.weight"][1] != context_dim:
        raise InputError("its UNet cross-attention width differs from the text encoders'")
    config = {
        "in_channels": s["input_blocks.0.0.weight"][1],
        "out_channels": s["out.2.weight"][0],
        "block_out_channels": channels,
        "layers_per_block": layers,
        "down_block_types": ["CrossAttnDownBlock2D" if d else "DownBlock2D" for d in depths],
        "up_block_types": ["CrossAttnUpBlock2D" if d else "UpBlock2D" for d in depths[::-1]],
        "cross_attention_dim": context_dim,
        "use_linear_projection": len(s[f"{attn}.proj_in.weight"]) == 2,
        # diffusers' historical name: for SD these are head *counts* per block.
        "attention_head_dim": (_SD15_UNET_HEADS if kind == "sd15"
                               else [max(1, c // _HEAD_WIDTH) for c in channels]),
        "transformer_layers_per_block": [max(d, 1) for d in depths],
    }
    if set(config["transformer_layers_per_block"]) == {1}:
        config["transformer_layers_per_block"] = 1
    if kind == "sdxl":
        adm_in = s["label_emb.0.0.weight"][1]
        time_dim, rest = divmod(adm_in - pooled_dim, 6)  # 6 size/crop numbers, each embedded
        if rest:
            raise InputError(f"its UNet extra-conditioning width {adm_in} does not fit a "
                             f"{pooled_dim}-wide pooled text embedding plus 6 time embeddings")
        config["projection_class_embeddings_input_dim"] = adm_in
        config["addition_time_embed_dim"] = time_dim
    return config


def _vae_config(shapes: Shapes) -> dict:
    """AutoencoderKL config values from the LDM VAE (``first_stage_model.*``)."""
    s = {k[len(VAE_PREFIX):]: v for k, v in shapes.items() if k.startswith(VAE_PREFIX)}
    n_levels = _count(s, r"encoder\.down\.(\d+)\.")
    return {
        "in_channels": s["encoder.conv_in.weight"][1],
        "out_channels": s["decoder.conv_out.weight"][0],
        "latent_channels": s["post_quant_conv.weight"][0],
        "block_out_channels": [s[f"encoder.down.{i}.block.0.conv2.weight"][0]
                               for i in range(n_levels)],
        "layers_per_block": _count(s, r"encoder\.down\.0\.block\.(\d+)\."),
        "down_block_types": ["DownEncoderBlock2D"] * n_levels,
        "up_block_types": ["UpDecoderBlock2D"] * n_levels,
    }


def _text_encoder_config(shapes: Shapes, prefix: str) -> dict:
    """CLIPTextModel config values from a transformers-layout CLIP text model at ``prefix``."""
    s = {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}
    vocab, width = s["embeddings.token_embedding.weight"]
    return {
        "vocab_size": vocab,
        "hidden_size": width,
        "max_position_embeddings": s["embeddings.position_embedding.weight"][0],
        "num_hidden_layers": _count(s, r"encoder\.layers\.(\d+)\."),
        "intermediate_size": s["encoder.layers.0.mlp.fc1.weight"][0],
        "num_attention_heads": max(1, width // _HEAD_WIDTH),
    }


def _open_clip_config(shapes: Shapes, prefix: str) -> dict:
    """CLIPTextModelWithProjection config values from an open_clip-layout text tower."""
    s = {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}
    vocab, width = s["token_embedding.weight"]
    return {
        "vocab_size": vocab,
        "hidden_size": width,
        "max_position_embeddings": s["positional_embedding"][0],
        "num_hidden_layers": _count(s, r"transformer\.resblocks\.(\d+)\."),
        "intermediate_size": s["transformer.resblocks.0.mlp.c_fc.weight"][0],
        "num_attention_heads": max(1, width // _HEAD_WIDTH),
        "projection_dim": s["text_projection"][1],  # open_clip applies x @ text_projection
    }


def _count(names: Mapping[str, object], pattern: str, distinct_only: bool = False) -> int:
    """How many distinct values the first group of ``pattern`` takes over ``names``, or — for
    index patterns like ``blocks\\.(\\d+)\\.`` — one more than the largest index."""
    found = {int(m.group(1)) for n in names if (m := re.match(pattern, n))}
    if distinct_only or not found:
        return len(found)
    return max(found) + 1
