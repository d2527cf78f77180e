"""peft LoRA adapters <-> kohya-format LoRA tensors, the format ComfyUI's LoraLoader maps.

A trained adapter is a peft state dict per component (``"unet"``, ``"text_encoder"``,
``"text_encoder_2"``): ``<module path>.lora_A.weight`` / ``.lora_B.weight``, module paths as
diffusers / transformers name them. Saved as such, ComfyUI silently patches nothing (its key
map has no ``unet.<path>.lora_A`` entries), so files are written the way kohya's
``networks/lora.py`` writes them:

* ``lora_unet_<path>``: SD 1.5 with the diffusers path (kohya trains SD 1.x on a diffusers-named
  UNet), SDXL with the SGM/LDM path (``input_blocks_4_1_transformer_blocks_0_attn1_to_q``:
  kohya trains SDXL on the original SGM UNet); ``.`` becomes ``_``;
* ``lora_te_`` (SD 1.5) / ``lora_te1_``, ``lora_te2_`` (SDXL) +
  ``text_model_encoder_layers_<i>_self_attn_q_proj`` ...;
* per module ``.lora_down.weight`` (= peft lora_A), ``.lora_up.weight`` (= lora_B) and
  ``.alpha`` (a 0-dim tensor, always written: without it ComfyUI scales by 1 instead of
  alpha / rank). Convolutions keep peft's shapes, which are kohya's: down ``[r, in, k, k]``, up
  ``[out, r, 1, 1]``; ComfyUI flattens both and multiplies them.

The diffusers -> SGM names come from `ldm_layout.unet_to_ldm` (the layout the checkpoint
builders write), applied to every Linear/Conv2d of the UNet architecture, built on the meta
device (no memory). Going back, the same table is inverted, so both directions agree by
construction.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping

import torch

from ..errors import InputError
from ..families import ldm_layout, sd_configs

Adapters = dict[str, dict[str, torch.Tensor]]

PREFIXES = {  # kind -> component -> kohya prefix
    "sd15": {"unet": "lora_unet", "text_encoder": "lora_te"},
    "sdxl": {"unet": "lora_unet", "text_encoder": "lora_te1", "text_encoder_2": "lora_te2"},
}
DOWN, UP, ALPHA = ".lora_down.weight", ".lora_up.weight", ".alpha"

_PEFT_KEY = re.compile(r"(.+)\.lora_([AB])\.weight")
# The text-encoder modules LoRA can target (kohya's CLIPAttention / CLIPMLP children), by their
# underscored kohya spelling; the only text-encoder names ComfyUI maps.
_TEXT_LEAVES = {n.replace(".", "_"): n for n in (
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
    "mlp.fc1", "mlp.fc2")}
_TEXT_MODULE = re.compile(r"(?:text_model\.)?encoder\.layers\.(\d+)\.("
                          + "|".join(map(re.escape, _TEXT_LEAVES.values())) + ")")
_TEXT_KOHYA = re.compile(r"text_model_encoder_layers_(\d+)_(" + "|".join(_TEXT_LEAVES) + ")")


def alpha_key(component: str, module_path: str) -> str:
    """The key of one module in an ``alphas`` mapping: ``"<component>:<module path>"``."""
    return f"{component}:{module_path}"


def kohya_module_name(kind: str, component: str, module_path: str,
                      unet_config: Mapping | None = None) -> str:
    """The kohya name of one module, e.g. ``("sdxl", "unet",
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q")`` ->
    ``"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"``.

    ``unet_config``: the config of the UNet the module belongs to (its structure decides the
    SGM block numbers); None: the bundled SD 1.5 / SDXL base config, whose module names include
    those of every smaller model of the same structure (the tiny test models).
    """
    prefix = _prefix(kind, component)
    if component == "unet":
        table = _table(kind, _config_json(kind, unet_config))
        if module_path not in table:
            raise ValueError(f"'{module_path}' is not a Linear/Conv2d module of the {kind} UNet, "
                             "so no LoRA loader would find it")
        return f"{prefix}_{table[module_path].replace('.', '_')}"
    m = _TEXT_MODULE.fullmatch(module_path)
    if m is None:
        raise ValueError(f"'{module_path}' is not a text-encoder attention or MLP projection "
                         "(encoder.layers.<i>.self_attn.q_proj/k_proj/v_proj/out_proj, "
                         "mlp.fc1/fc2): ComfyUI maps no other text-encoder LoRA keys")
    return f"{prefix}_text_model_encoder_layers_{m[1]}_{m[2].replace('.', '_')}"


def kohya_state_dict(adapters: Adapters, kind: str, alphas: Mapping[str, float],
                     dtype: torch.dtype = torch.float16, *,
                     unet_config: Mapping | None = None) -> dict[str, torch.Tensor]:
    """The kohya tensors of ``adapters`` (see the module docstring), weights in ``dtype``.

    ``alphas`` maps `alpha_key` (component, module path) to that module's alpha (see
    `module_alphas`); every module needs one. ``.alpha`` is stored in float32 so the configured
    value survives exactly (kohya casts it to the save dtype; readers call ``.item()``).
    """
    out: dict[str, torch.Tensor] = {}
    for component, state in adapters.items():
        for path, (down, up) in _modules(component, state).items():
            name = kohya_module_name(kind, component, path, unet_config)
            key = alpha_key(component, path)
            if key not in alphas:
                raise ValueError(f"no alpha given for LoRA module {key}")
            out[name + DOWN] = down.detach().to("cpu", dtype).contiguous()
            out[name + UP] = up.detach().to("cpu", dtype).contiguous()
            out[name + ALPHA] = torch.tensor(float(alphas[key]), dtype=torch.float32)
    return out


def adapters_from_kohya(tensors: Mapping[str, torch.Tensor], kind: str, *,
                        unet_config: Mapping | None = None,
                        modules: Mapping[str, torch.nn.Module] | None = None,
                        ) -> tuple[Adapters, dict[str, float]]:
    """Invert `kohya_state_dict`: (adapters, alphas), tensors as stored.

    A module without ``.alpha`` gets alpha = rank (scale 1, what ComfyUI assumes). Text-encoder
    paths are written ``text_model.encoder.layers...``; pass ``modules`` (component -> the
    module the adapter is for) to get them exactly as that module names them (transformers 5's
    CLIPTextModel has no ``text_model`` level). Keys of any other format -> ValueError; a
    module stored incompletely (see `unpaired_keys`) -> `InputError` naming the key.
    """
    by_prefix = {prefix: component for component, prefix in PREFIXES[_check_kind(kind)].items()}
    unpaired = unpaired_keys(tensors)
    if unpaired:
        key, partner = unpaired[0]
        raise InputError(f"the LoRA is damaged: '{key}' has no matching '{partner}' (every "
                         "kohya module needs .lora_down.weight and .lora_up.weight); save or "
                         "download the LoRA again.")
    adapters: Adapters = {}
    alphas: dict[str, float] = {}
    for key in tensors:
        if not key.endswith(DOWN):
            if not key.endswith((UP, ALPHA)):
                raise ValueError(f"'{key}' is not a kohya LoRA tensor name (.lora_down.weight, "
                                 ".lora_up.weight or .alpha)")
            continue
        name = key[: -len(DOWN)]
        prefix = next((p for p in by_prefix if name.startswith(p + "_")), None)
        if prefix is None:
            raise ValueError(f"'{key}' has a prefix other than {', '.join(by_prefix)} "
                             f"(a {kind} LoRA)")
        component, rest = by_prefix[prefix], name[len(prefix) + 1:]
        path = _module_path(kind, component, rest, unet_config, modules)
        down, up = tensors[key], tensors[name + UP]
        adapters.setdefault(component, {})[f"{path}.lora_A.weight"] = down
        adapters[component][f"{path}.lora_B.weight"] = up
        alpha = tensors.get(name + ALPHA)
        alphas[alpha_key(component, path)] = float(alpha.item()) if alpha is not None \
            else float(down.shape[0])
    return adapters, alphas


def unpaired_keys(names: Iterable[str]) -> list[tuple[str, str]]:
    """(key, the key it lacks) for every part of an incomplete kohya module: a
    ``.lora_down.weight`` without its ``.lora_up.weight``, or a ``.lora_up.weight`` or ``.alpha``
    without its ``.lora_down.weight``. Readers refuse these rather than drop them silently."""
    present = set(names)
    found = []
    for key in sorted(present):
        for suffix, partner in ((DOWN, UP), (UP, DOWN), (ALPHA, DOWN)):
            if key.endswith(suffix) and key[: -len(suffix)] + partner not in present:
                found.append((key, key[: -len(suffix)] + partner))
    return found


def module_alphas(adapters: Adapters, alpha: float, conv_alpha: float) -> dict[str, float]:
    """kohya's rule for the ``alphas`` of `kohya_state_dict`: ``conv_alpha`` for convolutions
    with a kernel larger than 1x1 (LoCon's conv_dim / conv_alpha), ``alpha`` for everything
    else (linear layers and 1x1 convolutions, as kohya's network_alpha)."""
    found = {}
    for component, state in adapters.items():
        for path, (down, _) in _modules(component, state).items():
            is_3x3 = down.ndim == 4 and tuple(down.shape[2:]) != (1, 1)
            found[alpha_key(component, path)] = conv_alpha if is_3x3 else alpha
    return found


@functools.cache
def _table(kind: str, config_json: str) -> dict[str, str]:
    """`unet_name_table`, built once per UNet structure (shared: never mutate it)."""
    from diffusers import UNet2DConditionModel

    config = json.loads(config_json)
    with torch.device("meta"):  # module names only: nothing is allocated
        unet = UNet2DConditionModel.from_config(config)
    names = [n for n, m in unet.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    if kind == "sd15":  # kohya's SD 1.x names are diffusers names
        return {n: n for n in names}
    ldm = ldm_layout.unet_to_ldm({f"{n}.weight": torch.empty(0) for n in names},
                                 config["layers_per_block"])
    return {n: k.removeprefix(sd_configs.UNET_PREFIX).removesuffix(".weight")
            for n, k in zip(names, ldm, strict=True)}


def unet_name_table(kind: str, unet_config: Mapping | None = None) -> dict[str, str]:
    """diffusers module path -> the path kohya names it by (SD 1.5: the same; SDXL: the SGM
    path), for every Linear/Conv2d of a UNet with ``unet_config`` (None: the bundled one)."""
    return dict(_table(_check_kind(kind), _config_json(kind, unet_config)))


@functools.cache
def _underscored(kind: str, config_json: str) -> dict[str, str]:
    """The inverse of `_table` for kohya names: underscored kohya path -> diffusers path."""
    return {v.replace(".", "_"): k for k, v in _table(kind, config_json).items()}


def _config_json(kind: str, unet_config: Mapping | None) -> str:
    """The structural config values as a cache key (diffusers' "_name_or_path" etc. dropped)."""
    config = dict(unet_config) if unet_config is not None else \
        sd_configs.bundled_configs(_check_kind(kind))["unet"]
    clean = {k: v for k, v in config.items() if not k.startswith("_")}
    return json.dumps(clean, sort_keys=True, default=list)


def _modules(component: str, state: Mapping[str, torch.Tensor]) -> dict[str, tuple]:
    """module path -> (lora_A, lora_B) of one peft state dict; anything else refused."""
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        m = _PEFT_KEY.fullmatch(key)
        if m is None:
            raise ValueError(f"{component}: '{key}' is not a plain LoRA weight "
                             "(<module>.lora_A.weight / .lora_B.weight); DoRA, biases and "
                             "embedding LoRA cannot be saved in the kohya format")
        parts.setdefault(m[1], {})[m[2]] = value
    missing = [p for p, ab in parts.items() if len(ab) != 2]
    if missing:
        raise ValueError(f"{component}: LoRA modules without both lora_A and lora_B: {missing}")
    return {path: (ab["A"], ab["B"]) for path, ab in parts.items()}


def _module_path(kind: str, component: str, rest: str, unet_config: Mapping | None,
                 modules: Mapping[str, torch.nn.Module] | None) -> str:
    if component == "unet":
        back = _underscored(kind, _config_json(kind, unet_config))
        if rest not in back:
            raise ValueError(f"lora_unet_{rest} names no Linear/Conv2d module of the {kind} UNet")
        return back[rest]
    m = _TEXT_KOHYA.fullmatch(rest)
    if m is None:
        raise ValueError(f"{component} LoRA module '{rest}' is not a text-encoder attention or "
                         "MLP projection")
    path = f"text_model.encoder.layers.{m[1]}.{_TEXT_LEAVES[m[2]]}"
    if modules is not None and component in modules:
        names = {n for n, _ in modules[component].named_modules()}
        short = path.removeprefix("text_model.")
        path = path if path in names else short
        if path not in names:
            raise ValueError(f"{component} has no module {short} (a LoRA for another model?)")
    return path


def _prefix(kind: str, component: str) -> str:
    prefixes = PREFIXES[_check_kind(kind)]
    if component not in prefixes:
        raise ValueError(f"a {kind} model has no component '{component}' "
                         f"(known: {', '.join(prefixes)})")
    return prefixes[component]


def _check_kind(kind: str) -> str:
    if kind not in PREFIXES:
        raise ValueError(f"unknown model kind '{kind}' (known: {', '.join(PREFIXES)})")
    return kind
