"""Starting a run's adapters from a LoRA file (``TrainConfig.init_lora``) instead of zero, and
the base-model probe that tells whether that file was trained on this very base model.

Continuing a trained LoRA on new data (reward fine-tuning: Lee et al. 2023, stage 3) needs the
old adapters exactly, in the very set-up training uses: the file is read through
`lora_file.read_lora_file` (kohya keys checked), mapped back with
`kohya_keys.adapters_from_kohya` and put into the seeded adapters with
`lora_setup.load_adapter_state`, as `lora_apply` does for sampling. What cannot continue is
refused before a step runs, each saying what to set:

* another network: rank, alpha, conv_rank / conv_alpha or train_text_encoder differ;
* another base model: the kind (SD 1.5 / SDXL) in the file's metadata differs, or its base
  probe does. The probe is a few of the base UNet's frozen weights (`base_probe`), written into
  every file the trainer saves: a renamed checkpoint still matches, a different one of the
  same architecture does not. A file made elsewhere has no probe; then only a differing base
  model name is reported, as a warning (names are often changed by hand).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import InputError
from ..families.sd_model import BaseModel
from ..weights.locate import check_relative_name
from .config import TrainConfig
from .kohya_keys import adapters_from_kohya
from .lora_file import read_lora_file
from .lora_metadata import BASE_MODEL_VERSION, PROBE_KEY
from .lora_setup import LoraSetup, adapter_state_of, load_adapter_state
from .run_folder import loras_dir

# Frozen UNet weights the probe samples (every SD 1.5 / SDXL UNet, tiny ones too, has them).
PROBE_TENSORS = ("conv_in.weight", "time_embedding.linear_1.weight", "conv_out.weight")
PROBE_VALUES = 16  # per tensor
# Relative to the probe's largest value: bf16 rounding moves a weight by < 0.4 %, so the same
# base loaded in another precision matches; another checkpoint differs by far more.
PROBE_TOLERANCE = 0.02


def base_probe(model: BaseModel) -> list[float]:
    """The first `PROBE_VALUES` values of each `PROBE_TENSORS` weight of ``model``'s UNet,
    rounded to 6 digits. Read before LoRA is added (peft renames wrapped layers)."""
    params = dict(model.unet.named_parameters())
    values: list[float] = []
    for name in PROBE_TENSORS:
        tensor = params.get(name)
        if tensor is not None:
            values += [round(float(v), 6) for v in
                       tensor.detach().flatten()[:PROBE_VALUES].float().cpu()]
    return values


def probes_match(a: list[float], b: list[float]) -> bool:
    if len(a) != len(b) or not a:
        return False
    scale = max(max(abs(v) for v in a), 1e-8)
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) <= PROBE_TOLERANCE * scale


def init_lora_path(config: TrainConfig) -> Path:
    """``config.init_lora`` as a file: absolute, or a name in the LoRA folder."""
    raw = config.init_lora.strip()
    path = Path(raw).expanduser()
    if not path.is_absolute():
        check_relative_name(raw, "init_lora")
        path = loras_dir(config) / raw
    if not path.is_file():
        raise InputError(f"init_lora {config.init_lora!r}: no LoRA file at {path}. Choose a "
                         ".safetensors LoRA in models/loras (or give its full path).")
    return path


def load_init_lora(model: BaseModel, config: TrainConfig, setup: LoraSetup,
                   probe: list[float]) -> list[str]:
    """Put the adapters of ``config.init_lora`` into ``setup`` (see the module docstring);
    ``probe``: `base_probe` of ``model`` before LoRA was added. Returns warnings."""
    path = init_lora_path(config)
    tensors, metadata = read_lora_file(path)
    warnings = check_base(path, metadata, model, probe)
    try:
        adapters, alphas = adapters_from_kohya(tensors, model.kind,
                                               unet_config=dict(model.unet.config),
                                               modules=model.modules())
    except ValueError as exc:
        raise InputError(f"init_lora {path.name} does not fit this {model.kind} base model "
                         f"({exc}); start from a LoRA trained on it.") from None
    check_network(path, adapters, alphas, config, setup)
    load_adapter_state(setup, {component: {k: v.to(torch.float32) for k, v in state.items()}
                               for component, state in adapters.items()})
    return warnings


def check_base(path: Path, metadata: dict[str, str], model: BaseModel,
               probe: list[float]) -> list[str]:
    """Refuse a file trained on another kind of model or (by its probe) another checkpoint."""
    version = metadata.get("ss_base_model_version")
    kinds = {v: k for k, v in BASE_MODEL_VERSION.items()}
    if version in kinds and kinds[version] != model.kind:
        raise InputError(f"init_lora {path.name} was trained on an {kinds[version]} model, the "
                         f"base model {model.source.name} is {model.kind}; choose a LoRA trained "
                         "on this base model (or load the base model it was trained on).")
    trained_on = metadata.get("ss_sd_model_name", "")
    stored = metadata.get(PROBE_KEY)
    if stored:
        try:
            theirs = [float(v) for v in json.loads(stored)]
        except (ValueError, TypeError):
            theirs = []
        if not probes_match(theirs, probe):
            raise InputError(
                f"init_lora {path.name} was trained on another base model "
                f"({trained_on or 'unnamed'}) than {model.source.name}: their weights differ. "
                "Load the base model the LoRA was trained on, or train a new LoRA on this one.")
        return []
    if trained_on and trained_on != Path(str(model.source)).name:
        return [f"init_lora {path.name} names {trained_on} as its base model, this run trains "
                f"on {model.source.name}; continuing anyway (the file has no weight probe to "
                "tell whether they are the same model)"]
    return []


def network_of(adapters, alphas) -> dict:
    """rank/alpha (linear and 1x1) and conv rank/alpha (3x3) of a set of adapters."""
    found: dict[str, set] = {"rank": set(), "alpha": set(), "conv_rank": set(),
                             "conv_alpha": set()}
    for component, state in adapters.items():
        for key, tensor in state.items():
            if not key.endswith(".lora_A.weight"):
                continue
            path = key[: -len(".lora_A.weight")]
            conv = tensor.ndim == 4 and tuple(tensor.shape[2:]) != (1, 1)
            found["conv_rank" if conv else "rank"].add(int(tensor.shape[0]))
            found["conv_alpha" if conv else "alpha"].add(float(alphas[f"{component}:{path}"]))
    return found


def check_network(path: Path, adapters, alphas, config: TrainConfig, setup: LoraSetup) -> None:
    """The file's adapters must be this run's: the same components, ranks, alphas, targets."""
    components = sorted(adapters)
    if components != sorted(setup.components):
        wants = "on" if "text_encoder" in adapters else "off"
        raise InputError(f"init_lora {path.name} trains {', '.join(components)}; this run "
                         f"{', '.join(sorted(setup.components))}. Set train_text_encoder {wants} "
                         "to continue it.")
    found = network_of(adapters, alphas)
    wanted = {"rank": {config.rank}, "alpha": {float(config.alpha)},
              "conv_rank": {config.conv_rank} if config.conv_rank else set(),
              "conv_alpha": {float(config.conv_alpha)} if config.conv_rank else set()}
    differ = [name for name in wanted if found[name] != wanted[name]]
    if differ:
        theirs = ", ".join(f"{n}={_values(found[n])}" for n in differ)
        ours = ", ".join(f"{n}={_values(wanted[n])}" for n in differ)
        raise InputError(f"init_lora {path.name} has {theirs}, this run {ours}; set the "
                         "LoRA's own rank / alpha / conv_rank / conv_alpha to continue it.")
    for name, module in setup.components.items():
        expected = {k: tuple(v.shape) for k, v in adapter_state_of(module).items()}
        given = {k: tuple(v.shape) for k, v in adapters[name].items()}
        if expected != given:
            raise InputError(f"init_lora {path.name}: its {name} adapters sit on other layers "
                             "than this run's (a LoRA made by another trainer or for another "
                             "model); start from a LoRA this pack trained on this base model.")


def _values(values: set) -> str:
    return "/".join(f"{v:g}" for v in sorted(values)) if values else "none"

