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
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from ..errors import InputError, WeightsCorruptError, WeightsNotFoundError
from ..runtime import ManagedModel, get_runtime
from ..weights.folders import SAFE_FILE_EXTENSIONS
from ..weights.safe_load import load_state_dict, read_safetensors_header
from . import sd_configs
from .base import Family, Package, check_family, resolve_dtype
from .sd_configs import CLIP_PREFIXES, OPEN_CLIP_G_PREFIX, UNET_PREFIX, VAE_PREFIX

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

log = logging.getLogger(__name__)

Kind = Literal["sd15", "sdxl"]
_SUPPORTED = "not supported yet: SD1.5/SDXL only"
_PIPELINE_KINDS = {"StableDiffusionPipeline": "sd15", "StableDiffusionXLPipeline": "sdxl"}
_EOS = "<|endoftext|>"


@dataclass
class BaseModel:
    """The components of a Stable Diffusion 1.5 or SDXL model, as loaded (on the CPU).

    ``unet`` (UNet2DConditionModel) predicts noise (epsilon) for latents ``[B, 4, H/8, W/8]``;
    ``vae`` (AutoencoderKL) maps images in [-1, 1] ``[B, 3, H, W]`` to latents (multiply by
    ``vae.config.scaling_factor``); ``text_encoder`` is CLIP ViT-L/14's text tower,
    ``text_encoder_2`` (SDXL only) OpenCLIP bigG's, with its ``tokenizer``/``tokenizer_2``
    (77 tokens; the second pads with id 0 like open_clip). SDXL's VAE overflows in fp16
    (``vae.config.force_upcast`` is true): run it in fp32 when encoding training images. Moving
    modules to a device is the caller's job, through `managed` (``model.managed("unet").load()``).
    """

    kind: Kind
    source: Path
    unet: Any = field(repr=False)
    vae: Any = field(repr=False)
    text_encoder: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    scheduler: Any = field(repr=False)
    text_encoder_2: Any = field(default=None, repr=False)
    tokenizer_2: Any = field(default=None, repr=False)
    _managed: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    def modules(self) -> dict[str, torch.nn.Module]:
        """The torch modules by component name (``text_encoder_2`` only for SDXL)."""
        names = ("unet", "vae", "text_encoder", "text_encoder_2")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def managed(self, name: str) -> ManagedModel:
        """The runtime handle of component ``name`` ("unet", "vae"...), created once, so the
        host's memory manager tracks one entry per module however often it is loaded."""
        if name not in self._managed:
            self._managed[name] = get_runtime().manage(self.modules()[name])
        return self._managed[name]

    def pipeline(self) -> DiffusionPipeline:
        """A StableDiffusion(XL)Pipeline over these very modules (nothing is copied or reloaded;
        it gets its own scheduler instance, so sampling cannot disturb ``self.scheduler``)."""
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        scheduler = type(self.scheduler).from_config(self.scheduler.config)
        common = dict(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
                      unet=self.unet, scheduler=scheduler)
        if self.kind == "sd15":
            return StableDiffusionPipeline(**common, safety_checker=None, feature_extractor=None,
                                           requires_safety_checker=False)
        return StableDiffusionXLPipeline(**common, text_encoder_2=self.text_encoder_2,
                                         tokenizer_2=self.tokenizer_2, add_watermarker=False)


def load_base_model(path: Path, precision: str = "auto") -> BaseModel:
    """Load an SD 1.5 / SDXL single-file checkpoint or diffusers folder (see module docstring).

    ``precision``: "auto" (fp16 on CUDA, else fp32), "fp32", "fp16" or "bf16" — the dtype of
    every loaded module. Raises WeightsNotFoundError, WeightsCorruptError,
    WrongModelFamilyError (not a diffusion checkpoint) or InputError (another architecture,
    e.g. SD 2.x, SD3, Flux, inpainting or v-prediction models).
    """
    FAMILY.require()
    path = Path(path)
    dtype = resolve_dtype(precision, get_runtime().torch_device())
    if path.is_dir():
        return _load_diffusers_folder(path, dtype)
    return _load_single_file(path, dtype)


def sniff(names: Iterable[str]) -> bool:
    """True for original-layout diffusion checkpoints (tensors under ``model.diffusion_model.``);
    false for LoRAs, lone VAEs or text encoders, bare UNets and other families' files."""
    return any(n.startswith(UNET_PREFIX) for n in names)


# --------------------------------------------------------------------------------------------
# Single-file checkpoints
# --------------------------------------------------------------------------------------------
def _load_single_file(path: Path, dtype: torch.dtype) -> BaseModel:
    state = None
    if path.suffix.lower() in SAFE_FILE_EXTENSIONS:
        # The header alone tells what the file is, before gigabytes are read.
        header, _ = read_safetensors_header(path)
        shapes = {k: tuple(v["shape"]) for k, v in header.items()}
    else:
        state = load_state_dict(path)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
    check_family(FAMILY, path, shapes)
    kind = detect_kind(shapes, path)
    try:
        overrides = sd_configs.infer_overrides(kind, shapes)
    except KeyError as exc:
        raise WeightsCorruptError(f"{path} lacks the tensor {exc} that every {kind} checkpoint "
                                  "has; the file is damaged or incomplete.") from None
    except InputError as exc:  # e.g. distilled variants with uneven transformer depths
        raise InputError(f"{path} is a modified {kind} architecture ({exc}), which is "
                         f"{_SUPPORTED} (standard layouts).") from None
    if state is None:
        state = load_state_dict(path)
    log.info("loading %s checkpoint %s as %s", kind, path.name, dtype)
    with tempfile.TemporaryDirectory(prefix="intenttuner-sd-config-") as tmp:
        # Configs and tokenizer files exist only while the modules are built from them.
        config_dir = sd_configs.write_config_dir(Path(tmp), kind, overrides)
        return BaseModel(
            kind=kind, source=path,
            unet=_unet_from_ldm(state, config_dir, dtype, path),
            vae=_vae_from_ldm(state, config_dir, dtype, path),
            text_encoder=_clip_from_ldm(state, config_dir / "text_encoder", dtype, path),
            text_encoder_2=(_open_clip_from_ldm(state, config_dir / "text_encoder_2", dtype, path)
                            if kind == "sdxl" else None),
            tokenizer=_load_tokenizer(config_dir / "tokenizer"),
            tokenizer_2=_load_tokenizer(config_dir / "tokenizer_2") if kind == "sdxl" else None,
            scheduler=_load_scheduler(config_dir),
        )


def detect_kind(shapes: Mapping[str, tuple[int, ...]], path: Path) -> Kind:
    """"sd15" or "sdxl" from an original-layout checkpoint's tensor names/shapes; InputError
    naming the architecture for anything else."""

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
    elif shapes[UNET_PREFIX + "input_blocks.0.0.weight"][1] != 4:
        other = "an inpainting / instruct-pix2pix checkpoint (UNet input has "
        other += f"{shapes[UNET_PREFIX + 'input_blocks.0.0.weight'][1]} channels, not 4)"
    if other:
        raise InputError(f"{path} is {other}, which is {_SUPPORTED}. Use an SD 1.5 or SDXL base "
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


def _unet_from_ldm(state: dict, config_dir: Path, dtype: torch.dtype, path: Path) -> Any:
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    config = UNet2DConditionModel.load_config(config_dir, subfolder="unet")
    converted = _convert(convert_ldm_unet_checkpoint, path, "UNet", state, config=config)
    return _assign(UNet2DConditionModel, config, converted, dtype, path, "UNet")


def _vae_from_ldm(state: dict, config_dir: Path, dtype: torch.dtype, path: Path) -> Any:
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    config = AutoencoderKL.load_config(config_dir, subfolder="vae")
    vae_state = {k: v for k, v in state.items() if k.startswith(VAE_PREFIX)}
    converted = _convert(convert_ldm_vae_checkpoint, path, "VAE", vae_state, config=config)
    return _assign(AutoencoderKL, config, converted, dtype, path, "VAE")


def _clip_from_ldm(state: dict, config_dir: Path, dtype: torch.dtype, path: Path) -> Any:
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel

    converted = _convert(convert_ldm_clip_checkpoint, path, "CLIP text encoder", state)
    return _text_model(CLIPTextModel, CLIPTextConfig.from_pretrained(config_dir), converted,
                       dtype, path, "CLIP text encoder")


def _open_clip_from_ldm(state: dict, config_dir: Path, dtype: torch.dtype, path: Path) -> Any:
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


# --------------------------------------------------------------------------------------------
# Diffusers folders
# --------------------------------------------------------------------------------------------
def _load_diffusers_folder(folder: Path, dtype: torch.dtype) -> BaseModel:
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise WeightsNotFoundError(
            f"{folder} is not a diffusers model folder (no model_index.json). Put single-file "
            "checkpoints in models/checkpoints and diffusers folders in models/diffusers/<name>/."
        )
    try:
        index = json.loads(index_file.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsCorruptError(f"{index_file} is not valid JSON ({exc}).") from None
    kind = _PIPELINE_KINDS.get(index.get("_class_name"))
    if kind is None:
        raise InputError(f"{folder} holds a {index.get('_class_name')}, which is {_SUPPORTED}.")

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = _from_pretrained(UNet2DConditionModel, folder, "unet", dtype)
    scheduler = _load_scheduler(folder)
    _check_folder_architecture(folder, kind, unet, scheduler)
    return BaseModel(
        kind=kind, source=folder, unet=unet, scheduler=scheduler,
        vae=_from_pretrained(AutoencoderKL, folder, "vae", dtype),
        text_encoder=_from_pretrained(CLIPTextModel, folder, "text_encoder", dtype),
        tokenizer=_load_tokenizer(folder / "tokenizer"),
        text_encoder_2=(_from_pretrained(CLIPTextModelWithProjection, folder, "text_encoder_2",
                                         dtype) if kind == "sdxl" else None),
        tokenizer_2=_load_tokenizer(folder / "tokenizer_2") if kind == "sdxl" else None,
    )


def _from_pretrained(cls: Any, folder: Path, subfolder: str, dtype: torch.dtype) -> Any:
    from diffusers import ModelMixin
    from safetensors import SafetensorError

    sub = folder / subfolder
    if not sub.is_dir():
        raise WeightsNotFoundError(f"{folder} has no '{subfolder}' folder; the diffusers model "
                                   "is incomplete. Copy the whole model folder again.")
    # diffusers models take the dtype at load; transformers' keyword for it changed across
    # versions (torch_dtype → dtype), so text encoders are cast afterwards.
    dtype_arg = {"torch_dtype": dtype} if issubclass(cls, ModelMixin) else {}
    try:
        model = cls.from_pretrained(folder, subfolder=subfolder, local_files_only=True,
                                    variant=_weights_variant(sub), **dtype_arg)
    except OSError as exc:
        raise WeightsNotFoundError(f"{sub}: {str(exc).splitlines()[0]}") from None
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise WeightsCorruptError(f"{sub} could not be read ({str(exc)[:300]}). Copy the model "
                                  "folder again.") from None
    return (model if dtype_arg else model.to(dtype)).eval()


def _weights_variant(sub: Path) -> str | None:
    """"fp16" when a component folder ships only half-precision weights
    (``diffusion_pytorch_model.fp16.safetensors``), as some Hub repos do; else None."""
    names = [p.name for p in sub.iterdir()]
    stems = ("diffusion_pytorch_model.", "model.", "pytorch_model.")
    plain = [n for n in names if n.startswith(stems) and ".fp16." not in n]
    return "fp16" if not plain and any(".fp16." in n for n in names) else None


def _check_folder_architecture(folder: Path, kind: Kind, unet: Any, scheduler: Any) -> None:
    if kind == "sd15" and unet.config.cross_attention_dim == 1024:
        problem = "a Stable Diffusion 2.x model (OpenCLIP-H text encoder)"
    elif unet.config.in_channels != 4:
        problem = f"an inpainting-type model (UNet input has {unet.config.in_channels} channels)"
    elif scheduler.config.get("prediction_type") == "v_prediction":
        problem = "a v-prediction model"
    else:
        return
    raise InputError(f"{folder} is {problem}, which is {_SUPPORTED}.")


# --------------------------------------------------------------------------------------------
# Shared: tokenizers and schedulers
# --------------------------------------------------------------------------------------------
def _load_tokenizer(folder: Path) -> Any:
    """A CLIPTokenizer from ``folder``; SDXL's second tokenizer pads with ``!`` (id 0).

    The pad token is set after loading: when ``!`` is declared as a special token in the files
    (as the Hub's SDXL ``tokenizer_2`` does), transformers also splits every ``!`` out of
    prompts as the pad id, whereas open_clip (which SDXL was trained with), ComfyUI and kohya's
    trainer tokenize ``!`` as ordinary text. Ids then equal open_clip's, padding included.
    """
    from transformers import CLIPTokenizer

    config_file = folder / "tokenizer_config.json"
    if not config_file.is_file():
        raise WeightsNotFoundError(f"{config_file} is missing; the model folder is incomplete.")
    pad = json.loads(config_file.read_text("utf-8")).get("pad_token")
    pad = pad.get("content") if isinstance(pad, dict) else pad
    tokenizer = CLIPTokenizer.from_pretrained(folder, pad_token=_EOS, local_files_only=True)
    if pad and pad != _EOS:
        tokenizer.pad_token = pad
        if tokenizer.pad_token_id in tokenizer("a" + pad).input_ids:
            # The folder's saved added-token list still declares the pad token special.
            tokenizer = _plain_tokenizer(folder, pad)
    return tokenizer


def _plain_tokenizer(folder: Path, pad: str) -> Any:
    """The BPE tokenizer of ``folder`` (vocab.json + merges.txt) without its added-token list."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory(prefix="intenttuner-tokenizer-") as tmp:
        for name in ("vocab.json", "merges.txt"):
            shutil.copyfile(folder / name, Path(tmp) / name)
        config = sd_configs.bundled_configs("sd15")["tokenizer"]  # pads with <|endoftext|>
        (Path(tmp) / "tokenizer_config.json").write_text(json.dumps(config))
        tokenizer = CLIPTokenizer.from_pretrained(tmp, local_files_only=True)
    tokenizer.pad_token = pad
    return tokenizer


def _load_scheduler(folder: Path) -> Any:
    import diffusers

    config_file = folder / "scheduler" / "scheduler_config.json"
    if not config_file.is_file():
        raise WeightsNotFoundError(f"{config_file} is missing; the model folder is incomplete.")
    config = json.loads(config_file.read_text("utf-8"))
    cls = getattr(diffusers, str(config.get("_class_name")), None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise InputError(f"{folder / 'scheduler'}: unknown scheduler {config.get('_class_name')}.")
    return cls.from_config(config)


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


def _make_tiny(folder: Path) -> Path:
    from ..tiny.base_model import make_tiny_sd15_checkpoint

    return make_tiny_sd15_checkpoint(folder)


FAMILY = Family(
    name="base_model",
    title="Stable Diffusion base model",
    folder="checkpoints",
    # open_clip: its bundled BPE vocabulary becomes the CLIP tokenizer files.
    packages=(Package("diffusers", "diffusers"), Package("transformers", "transformers"),
              Package("open_clip", "open_clip_torch")),
    load=load_base_model,
    sniff=sniff,
    make_tiny=_make_tiny,
    exercise=exercise,
    extra_folders=("diffusers",),
)
