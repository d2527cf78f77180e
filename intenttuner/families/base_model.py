"""Stable Diffusion 1.5 / SDXL base models, the text-to-image models LoRAs are trained on.

Two on-disk forms load into the same `BaseModel` (diffusers/transformers modules, on the CPU):

* single-file checkpoints in ``models/checkpoints`` in the original (CompVis LDM / Stability
  SGM) layout, e.g. ``v1-5-pruned-emaonly.safetensors`` or ``sd_xl_base_1.0.safetensors``
  (``.safetensors``/``.sft``; ``.ckpt`` only through ``torch.load(weights_only=True)``);
* diffusers folders in ``models/diffusers/<name>/`` (``model_index.json`` + sub-folders).

Single files are loaded fully offline: the kind (SD 1.x or SDXL) and the architecture numbers
are read from the tensor names and shapes, the configs and CLIP tokenizers come from
`sd_configs` (bundled JSON + the BPE vocabulary open_clip ships), and the tensors are renamed by
diffusers' own original→diffusers converters, then loaded strictly: a tensor the model needs but
the file lacks is an error, never a silently random weight.

    model = FAMILY.load(Path("models/checkpoints/v1-5-pruned-emaonly.safetensors"))
    image = model.pipeline()("a photo of a cat", num_inference_steps=20).images[0]

This module is the family's entry (`FAMILY`, `sniff`) and reads single files up to the point
where their kind is known; the module builders are in `sd_single_file`, diffusers folders in
`sd_folder`, the loaded model (`BaseModel`) in `sd_model`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..errors import InputError, WeightsCorruptError
from ..runtime import get_runtime
from ..weights.folders import SAFE_FILE_EXTENSIONS
from ..weights.safe_load import load_state_dict, read_safetensors_header
from . import sd_configs
from .base import Family, Package, check_family, resolve_dtype
from .sd_configs import CLIP_PREFIXES, OPEN_CLIP_G_PREFIX, UNET_PREFIX, VAE_PREFIX
from .sd_folder import load_diffusers_folder, load_scheduler, load_tokenizer
from .sd_model import INPAINTING_CHANNELS, UNSUPPORTED, BaseModel, Kind, inpainting_problem
from .sd_single_file import clip_from_ldm, open_clip_from_ldm, unet_from_ldm, vae_from_ldm

log = logging.getLogger(__name__)


def load_base_model(path: Path, precision: str = "auto", allow_inpainting: bool = False
                    ) -> BaseModel:
    """Load an SD 1.5 / SDXL single-file checkpoint or diffusers folder (see module docstring).

    ``precision``: "auto" (fp16 on CUDA, else fp32), "fp32", "fp16" or "bf16" — the dtype of
    every loaded module. Raises WeightsNotFoundError, WeightsCorruptError,
    WrongModelFamilyError (not a diffusion checkpoint) or InputError (another architecture,
    e.g. SD 2.x, SD3, Flux, inpainting or v-prediction models).

    ``allow_inpainting`` accepts inpainting checkpoints (a 9-channel UNet input: latents, mask,
    masked image) for IntentInpaint's diffusion backend. Off by default, because a LoRA is
    trained on a 4-channel base and a 9-channel model cannot be trained on like one.
    """
    FAMILY.require()
    path = Path(path)
    dtype = resolve_dtype(precision, get_runtime().torch_device())
    if path.is_dir():
        return load_diffusers_folder(path, dtype, allow_inpainting)
    return _load_single_file(path, dtype, allow_inpainting)


def sniff(names: Iterable[str]) -> bool:
    """True for original-layout diffusion checkpoints (tensors under ``model.diffusion_model.``);
    false for LoRAs, lone VAEs or text encoders, bare UNets and other families' files."""
    return any(n.startswith(UNET_PREFIX) for n in names)


def _load_single_file(path: Path, dtype: torch.dtype, allow_inpainting: bool) -> BaseModel:
    state = None
    if path.suffix.lower() in SAFE_FILE_EXTENSIONS:
        # The header alone tells what the file is, before gigabytes are read.
        header, _ = read_safetensors_header(path)
        shapes = {k: tuple(v["shape"]) for k, v in header.items()}
    else:
        state = load_state_dict(path)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
    check_family(FAMILY, path, shapes)
    kind = detect_kind(shapes, path, allow_inpainting)
    try:
        overrides = sd_configs.infer_overrides(kind, shapes)
    except KeyError as exc:
        raise WeightsCorruptError(f"{path} lacks the tensor {exc} that every {kind} checkpoint "
                                  "has; the file is damaged or incomplete.") from None
    except InputError as exc:  # e.g. distilled variants with uneven transformer depths
        raise InputError(f"{path} is a modified {kind} architecture ({exc}), which is "
                         f"{UNSUPPORTED} (standard layouts).") from None
    if state is None:
        state = load_state_dict(path)
    log.info("loading %s checkpoint %s as %s", kind, path.name, dtype)
    with tempfile.TemporaryDirectory(prefix="intenttuner-sd-config-") as tmp:
        # Configs and tokenizer files exist only while the modules are built from them.
        config_dir = sd_configs.write_config_dir(Path(tmp), kind, overrides)
        return BaseModel(
            kind=kind, source=path,
            unet=unet_from_ldm(state, config_dir, dtype, path),
            vae=vae_from_ldm(state, config_dir, dtype, path),
            text_encoder=clip_from_ldm(state, config_dir / "text_encoder", dtype, path),
            text_encoder_2=(open_clip_from_ldm(state, config_dir / "text_encoder_2", dtype, path)
                            if kind == "sdxl" else None),
            tokenizer=load_tokenizer(config_dir / "tokenizer"),
            tokenizer_2=load_tokenizer(config_dir / "tokenizer_2") if kind == "sdxl" else None,
            scheduler=load_scheduler(config_dir),
        )


def detect_kind(shapes: Mapping[str, tuple[int, ...]], path: Path,
                allow_inpainting: bool = False) -> Kind:
    """"sd15" or "sdxl" from an original-layout checkpoint's tensor names/shapes; InputError
    naming the architecture for anything else (inpainting checkpoints only when allowed)."""

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in shapes)

    other = None
    if has(UNET_PREFIX + "joint_blocks."):
        other = "a Stable Diffusion 3 checkpoint"
    elif has(UNET_PREFIX + "double_blocks."):
        other = "a Flux checkpoint"
    elif UNET_PREFIX + "input_blocks.0.0.weight" not in shapes:
        other = "a diffusion checkpoint of an architecture other than the SD UNet"
    elif has("cond_stage_model.model."):
        other = "a Stable Diffusion 2.x checkpoint (OpenCLIP-H text encoder)"
    elif has("conditioner.embedders.0.model.") and not has(OPEN_CLIP_G_PREFIX):
        other = "an SDXL refiner checkpoint"
    elif "v_pred" in shapes or "edm_vpred.sigma_max" in shapes:
        other = "a v-prediction checkpoint"
    elif "edm_mean" in shapes:
        other = "a Playground v2.5 (EDM) checkpoint"
    elif (channels := shapes[UNET_PREFIX + "input_blocks.0.0.weight"][1]) not in (
            (4, INPAINTING_CHANNELS) if allow_inpainting else (4,)):
        other = inpainting_problem(channels)
    if other:
        raise InputError(f"{path} is {other}, which is {UNSUPPORTED}. Use an SD 1.5 or SDXL base "
                         "checkpoint (or a fine-tune of one).")
    kind: Kind = "sdxl" if has(OPEN_CLIP_G_PREFIX) else "sd15"
    needed = {"UNet": UNET_PREFIX, "VAE": VAE_PREFIX, "CLIP text encoder": CLIP_PREFIXES[kind]}
    for component, prefix in needed.items():
        if not has(prefix):
            raise InputError(
                f"{path} has no {component} weights ({prefix}*), so it is not a complete "
                f"{'SDXL' if kind == 'sdxl' else 'SD 1.5'} checkpoint. Use a full checkpoint "
                "(UNet, VAE and text encoders in one file) or a diffusers folder."
            )
    return kind


def exercise(model: BaseModel) -> str:
    """Generate one 64x64 image in 2 denoising steps on the runtime's device; describe it."""
    for name in model.modules():
        model.managed(name).load()
    pipe = model.pipeline()
    pipe.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        image = pipe("a photo of a cat", num_inference_steps=2, height=64, width=64,
                     output_type="np", generator=torch.Generator().manual_seed(0)).images[0]
    return f"{model.kind} image {image.shape[1]}x{image.shape[0]} (2 steps, {model.dtype})"


FAMILY = Family(
    name="base_model",
    title="Stable Diffusion base model",
    folder="checkpoints",
    # open_clip: its bundled BPE vocabulary becomes the CLIP tokenizer files.
    packages=(Package("diffusers", "diffusers"), Package("transformers", "transformers"),
              Package("open_clip", "open_clip_torch")),
    load=load_base_model,
    sniff=sniff,
    exercise=exercise,
    extra_folders=("diffusers",),
)
