"""BLIP image captioning (transformers), for dataset captions.

A captioner is a Hugging Face model folder in ``models/captioners``; the default is
``models/captioners/blip-image-captioning-large/`` (Salesforce/blip-image-captioning-large:
``config.json``, ``model.safetensors``, ``preprocessor_config.json``, ``vocab.txt``,
``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``). It is opened with
``from_pretrained(folder, local_files_only=True)``: nothing is downloaded, and transformers
reads ``model.safetensors`` (or a ``.bin`` with ``weights_only=True``).

    captioner = FAMILY.load(models_dir / "captioners" / "blip-image-captioning-large")
    captioner.caption(images)                               # ["a dog running on a beach", ...]
    captioner.caption(images, prompt="a photography of")    # prompt steers, is not returned
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from PIL import Image

from ..errors import InputError, WeightsCorruptError, WrongModelFamilyError
from ..imageio import to_rgb_pil
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from ..weights.folders import MODEL_FOLDERS
from .base import Family, Package, resolve_dtype, synthetic_image

log = logging.getLogger(__name__)

MODEL_TYPE = "blip"
ARCHITECTURE = "BlipForConditionalGeneration"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def sniff(tensor_names: Iterable[str]) -> bool:
    """True for BLIP captioning weights: a ``vision_model`` plus a ``text_decoder`` (BLIP
    retrieval/VQA checkpoints have no decoder; BLIP-2 has a Q-Former and a language model)."""
    names = list(tensor_names)
    return any(n.startswith("vision_model.") for n in names) and any(
        n.startswith("text_decoder.") for n in names
    )


def load(path: str | Path, precision: str = "auto") -> BlipCaptioner:
    """Load the BLIP captioning folder ``path`` (a file inside it is accepted too).

    ``precision``: ``"auto"`` (fp16 on CUDA, fp32 elsewhere), ``"fp32"``, ``"fp16"``, ``"bf16"``.
    Raises WrongModelFamilyError when the folder holds another kind of model and
    WeightsCorruptError when files are missing or truncated.
    """
    FAMILY.require()
    from transformers import BlipForConditionalGeneration, BlipProcessor

    folder = _model_folder(Path(path))
    check_folder(folder)
    runtime = get_runtime()
    dtype = resolve_dtype(precision, runtime.torch_device())
    try:
        processor = BlipProcessor.from_pretrained(str(folder), local_files_only=True)
        model = BlipForConditionalGeneration.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise WeightsCorruptError(
            f"{folder} could not be loaded as a BLIP captioner ({str(exc).splitlines()[0]}). "
            f"It needs config.json, model.safetensors, preprocessor_config.json and the "
            "tokenizer files (vocab.txt, tokenizer.json, tokenizer_config.json, "
            "special_tokens_map.json); download the folder again."
        ) from None
    # Loaded in the file's dtype then cast: the from_pretrained dtype keyword was renamed
    # between transformers 4 and 5.
    model.to(dtype).eval()
    log.info("loaded BLIP captioner (%s) from %s", dtype, folder)
    return BlipCaptioner(runtime.manage(model), processor, dtype)


def _model_folder(path: Path) -> Path:
    if path.is_dir():
        return path
    if path.is_file() and (path.parent / "config.json").is_file():
        return path.parent
    if path.is_file():
        raise WrongModelFamilyError(
            f"{path} is a single file, but BLIP captioners are Hugging Face model folders: put "
            "the whole folder (config.json, model.safetensors, preprocessor and tokenizer "
            f"files) in models/{FAMILY.folder}/<name>/."
        )
    from ..errors import WeightsNotFoundError

    raise WeightsNotFoundError(f"Captioner folder not found: {path}")


def check_folder(folder: Path) -> None:
    """Raise unless ``folder`` holds a BLIP captioning model (config and weight names)."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise WeightsCorruptError(
            f"{folder} has no config.json, so it is not a complete Hugging Face model folder. "
            "Download the captioner folder again."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsCorruptError(f"{config_path} is not valid JSON ({exc}).") from None
    names = _tensor_names(folder)
    # model_type "blip" also covers the retrieval and VQA heads, which have no caption decoder.
    if config.get("model_type") != MODEL_TYPE or (names is not None and not sniff(names)):
        _raise_wrong_family(folder, config, names)
    # transformers falls back to defaults (an empty vocabulary!) when these are missing
    missing = [name for name in ("preprocessor_config.json", "tokenizer_config.json")
               if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        missing.append("tokenizer.json or vocab.txt")
    if missing:
        raise WeightsCorruptError(
            f"{folder} is incomplete: {', '.join(missing)} missing. Download the captioner "
            "folder again."
        )


def _tensor_names(folder: Path) -> list[str] | None:
    """Tensor names from the weights' headers, or None when only a pickle file exists (it is
    read by transformers with weights_only=True; listing it would mean loading it twice)."""
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return list(safe_load.read_safetensors_header(single)[0])
    if index.is_file():
        try:
            return list(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
        except (ValueError, KeyError) as exc:
            raise WeightsCorruptError(f"{index} is not a valid weight index ({exc}).") from None
    if (folder / "pytorch_model.bin").is_file():
        return None
    raise WeightsCorruptError(
        f"{folder} has a config.json but no weights ({', '.join(_WEIGHT_FILES)}). The "
        "download is incomplete: download the captioner folder again."
    )


def _raise_wrong_family(folder: Path, config: dict, names: list[str] | None) -> None:
    from . import guess_family

    kind = config.get("model_type") or "unknown"
    archs = ", ".join(config.get("architectures") or []) or "no architectures listed"
    other = guess_family(names) if names else None
    if other is not None and other.name != FAMILY.name:
        where = (f"It looks like a {other.title} model: move it to models/{other.folder} "
                 f"({MODEL_FOLDERS[other.folder].purpose}).")
    else:
        where = (f"Captioners here must be BLIP ({ARCHITECTURE}, e.g. "
                 "Salesforce/blip-image-captioning-large).")
    raise WrongModelFamilyError(
        f"{folder} holds a '{kind}' model ({archs}), not a BLIP image captioner. {where}"
    )


class BlipCaptioner:
    """A loaded BLIP captioning model: batched beam-search captions for PIL images."""

    def __init__(self, managed: ManagedModel, processor, dtype: torch.dtype):
        self._managed = managed
        self._processor = processor
        self.dtype = dtype

    def caption(self, images: Sequence[Image.Image], *, prompt: str | None = None,
                max_new_tokens: int = 40, num_beams: int = 3, batch_size: int = 8) -> list[str]:
        """One caption per image, in order.

        Images of any PIL mode and size are converted to RGB (alpha composited on white) and
        resized by the BLIP processor. ``prompt`` (e.g. ``"a photography of"``) makes the
        caption a continuation of it; the returned text omits the prompt. ``max_new_tokens``
        bounds the caption length in word pieces, ``num_beams`` is the beam-search width.
        """
        if batch_size < 1 or max_new_tokens < 1 or num_beams < 1:
            raise InputError(
                f"batch_size, max_new_tokens and num_beams must be at least 1, got "
                f"{batch_size}, {max_new_tokens}, {num_beams}."
            )
        images = list(images)
        prompt = prompt.strip() if prompt else None
        runtime = get_runtime()
        captions: list[str] = []
        with runtime.progress(total=len(images), desc="Captioning") as bar:
            for start in range(0, len(images), batch_size):
                runtime.check_interrupted()
                chunk = [to_rgb_pil(image) for image in images[start:start + batch_size]]
                captions.extend(self._caption_batch(chunk, prompt, max_new_tokens, num_beams))
                bar.update(len(chunk))
        return captions

    def _caption_batch(self, images: list[Image.Image], prompt: str | None,
                       max_new_tokens: int, num_beams: int) -> list[str]:
        model = self._managed.load()
        device = model.device  # transformers models expose the device they are on
        text = [prompt] * len(images) if prompt else None
        inputs = self._processor(images=images, text=text, return_tensors="pt")
        kwargs = {"pixel_values": inputs["pixel_values"].to(device, self.dtype)}
        # BLIP's generate() swaps [CLS] for its [DEC] start token and drops the final [SEP], so
        # every output row starts with the prompt's len(input_ids) - 1 tokens (just [DEC]
        # without a prompt); cutting them off strips the prompt exactly, casing included.
        prompt_tokens = 1
        if prompt:
            kwargs["input_ids"] = inputs["input_ids"].to(device)
            kwargs["attention_mask"] = inputs["attention_mask"].to(device)
            prompt_tokens = inputs["input_ids"].shape[1] - 1
        with torch.inference_mode():
            output = model.generate(**kwargs, max_new_tokens=max_new_tokens, num_beams=num_beams)
        texts = self._processor.batch_decode(output[:, prompt_tokens:], skip_special_tokens=True)
        return [t.strip() for t in texts]


def exercise(captioner: BlipCaptioner) -> str:
    """Caption a synthetic image; quote the caption."""
    caption = captioner.caption([synthetic_image()], max_new_tokens=8, num_beams=1)[0]
    return f"caption {caption[:40]!r}"


FAMILY = Family(
    name="captioner",
    title="BLIP image captioner",
    folder="captioners",
    packages=(Package("transformers", "transformers"),),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
