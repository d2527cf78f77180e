"""Reading diffusers-layout folders: a whole SD 1.5 / SDXL model folder
(``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``...) and its tokenizer and
scheduler sub-folders, which single-file loading also writes and reads (see `base_model`)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, WeightsCorruptError, WeightsNotFoundError
from . import sd_configs
from .sd_model import INPAINTING_CHANNELS, UNSUPPORTED, BaseModel, Kind, inpainting_problem

_PIPELINE_KINDS = {"StableDiffusionPipeline": "sd15", "StableDiffusionXLPipeline": "sdxl"}
_EOS = "<|endoftext|>"


def load_diffusers_folder(folder: Path, dtype: torch.dtype, allow_inpainting: bool = False
                          ) -> BaseModel:
    """An SD 1.5 / SDXL `BaseModel` from a diffusers folder, every module in ``dtype``;
    InputError for other pipelines and architectures."""
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
        raise InputError(f"{folder} holds a {index.get('_class_name')}, which is {UNSUPPORTED}.")

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = _from_pretrained(UNet2DConditionModel, folder, "unet", dtype)
    scheduler = load_scheduler(folder)
    _check_folder_architecture(folder, kind, unet, scheduler, allow_inpainting)
    return BaseModel(
        kind=kind, source=folder, unet=unet, scheduler=scheduler,
        vae=_from_pretrained(AutoencoderKL, folder, "vae", dtype),
        text_encoder=_from_pretrained(CLIPTextModel, folder, "text_encoder", dtype),
        tokenizer=load_tokenizer(folder / "tokenizer"),
        text_encoder_2=(_from_pretrained(CLIPTextModelWithProjection, folder, "text_encoder_2",
                                         dtype) if kind == "sdxl" else None),
        tokenizer_2=load_tokenizer(folder / "tokenizer_2") if kind == "sdxl" else None,
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


def _check_folder_architecture(folder: Path, kind: Kind, unet: Any, scheduler: Any,
                               allow_inpainting: bool) -> None:
    allowed = (4, INPAINTING_CHANNELS) if allow_inpainting else (4,)
    if kind == "sd15" and unet.config.cross_attention_dim == 1024:
        problem = "a Stable Diffusion 2.x model (OpenCLIP-H text encoder)"
    elif unet.config.in_channels not in allowed:
        problem = inpainting_problem(unet.config.in_channels)
    elif scheduler.config.get("prediction_type") == "v_prediction":
        problem = "a v-prediction model"
    else:
        return
    raise InputError(f"{folder} is {problem}, which is {UNSUPPORTED}.")


def load_tokenizer(folder: Path) -> Any:
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


def load_scheduler(folder: Path) -> Any:
    """The diffusers scheduler declared in ``folder/scheduler/scheduler_config.json``."""
    import diffusers

    config_file = folder / "scheduler" / "scheduler_config.json"
    if not config_file.is_file():
        raise WeightsNotFoundError(f"{config_file} is missing; the model folder is incomplete.")
    config = json.loads(config_file.read_text("utf-8"))
    cls = getattr(diffusers, str(config.get("_class_name")), None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise InputError(f"{folder / 'scheduler'}: unknown scheduler {config.get('_class_name')}.")
    return cls.from_config(config)
