"""BLIP image captioning (transformers ``BlipForConditionalGeneration``).

The folder is a Hugging Face BLIP captioning model, e.g.
``models/captioners/blip-image-captioning-large/`` (Salesforce/blip-image-captioning-large:
``config.json``, ``model.safetensors``, ``preprocessor_config.json``, ``vocab.txt``,
``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``). BLIP works on every
transformers version the pack supports, including those older than Florence-2 needs.

    captioner = FAMILY.load(models_dir / "captioners" / "blip-image-captioning-large")
    captioner.caption(images)                               # ["a dog running on a beach", ...]
    captioner.caption(images, prompt="a photography of")    # prompt steers, is not returned
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from ..errors import WeightsCorruptError
from ..runtime import get_runtime
from .base import resolve_dtype
from .captioner import Captioner, Settings

log = logging.getLogger(__name__)

ARCHITECTURE = "BlipForConditionalGeneration"


def load_blip(folder: Path, precision: str) -> BlipCaptioner:
    """Load a BLIP captioning folder that ``captioner.check_folder`` accepted."""
    from transformers import BlipForConditionalGeneration, BlipProcessor

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
    return BlipCaptioner(runtime.manage(model), processor, dtype, folder)


class BlipCaptioner(Captioner):
    """A loaded BLIP captioning model: batched beam-search captions for PIL images.

    BLIP has one caption style (a short sentence), so ``detail`` is checked but otherwise
    ignored; ``max_new_tokens`` defaults to 40 for every detail.
    """

    kind = "blip"
    max_tokens = {"short": 40, "detailed": 40, "more_detailed": 40}

    def task_name(self, detail: str) -> str:
        return "caption"  # one caption style whatever the detail

    def caption(self, images: Sequence[Image.Image], *, detail: str = "detailed",
                batch_size: int = 8, max_new_tokens: int | None = None, num_beams: int = 3,
                prompt: str | None = None) -> list[str]:
        """One caption per image, in order ("" where the model wrote nothing).

        As `Captioner.caption`, plus ``prompt`` (e.g. ``"a photography of"``), which makes
        the caption a continuation of it; the returned text omits the prompt. ``detail`` is
        ignored: BLIP writes one caption style.
        """
        settings = self._settings(detail, batch_size, max_new_tokens, num_beams, prompt)
        return self._run(images, batch_size, settings)

    def _caption_batch(self, images: list[Image.Image], settings: Settings) -> list[str]:
        prompt = settings.prompt
        text = [prompt] * len(images) if prompt else None
        encoded = self._processor(images=images, text=text, return_tensors="pt")
        inputs = {"pixel_values": encoded["pixel_values"]}
        # BLIP's generate() swaps [CLS] for its [DEC] start token and drops the final [SEP], so
        # every output row starts with the prompt's len(input_ids) - 1 tokens (just [DEC]
        # without a prompt); cutting them off strips the prompt exactly, casing included.
        prompt_tokens = 1
        if prompt:
            inputs["input_ids"] = encoded["input_ids"]
            inputs["attention_mask"] = encoded["attention_mask"]
            prompt_tokens = encoded["input_ids"].shape[1] - 1
        output: torch.Tensor = self._generate(inputs, settings)
        texts = self._processor.batch_decode(output[:, prompt_tokens:], skip_special_tokens=True)
        return [t.strip() for t in texts]
