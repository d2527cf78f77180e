"""Florence-2 image captioning through transformers' native implementation.

``Florence2ForConditionalGeneration`` and ``Florence2Processor`` came with transformers 4.56.0
(2025-08, huggingface/transformers#38188) and read the *converted* checkpoints
florence-community/Florence-2-base (0.23 B parameters, the pack's default captioner) and
florence-community/Florence-2-large (0.77 B). Microsoft's original ``microsoft/Florence-2-*``
repositories ship their own modelling code (``trust_remote_code``), which broke with
transformers 4.50 and which this pack never runs: those folders are refused with a message
naming the conversion to download instead.

Captions come from Florence's caption tasks, one per ``detail``: ``<CAPTION>`` (one sentence),
``<DETAILED_CAPTION>`` (a few sentences), ``<MORE_DETAILED_CAPTION>`` (a paragraph). The
processor turns the task into its prompt; the generated text is parsed with
``processor.post_process_generation``.

    captioner = FAMILY.load(models_dir / "captioners" / "Florence-2-base")
    captioner.caption(images, detail="short")   # ["A dog running on a beach.", ...]
"""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from ..errors import MissingDependencyError, WeightsCorruptError, WrongModelFamilyError
from ..runtime import get_runtime
from .base import resolve_dtype
from .captioner import Captioner, Settings

log = logging.getLogger(__name__)

ARCHITECTURE = "Florence2ForConditionalGeneration"
MIN_TRANSFORMERS = "4.56.0"  # the release that added Florence2ForConditionalGeneration
TASKS = {"short": "<CAPTION>", "detailed": "<DETAILED_CAPTION>",
         "more_detailed": "<MORE_DETAILED_CAPTION>"}
CONVERSIONS = "florence-community/Florence-2-base (or florence-community/Florence-2-large)"
# Files only Microsoft's remote-code repositories have.
_REMOTE_CODE_FILES = ("configuration_florence2.py", "modeling_florence2.py",
                      "processing_florence2.py")


class TransformersTooOldError(MissingDependencyError):
    """transformers is installed but predates a model class the loader needs."""

    def __init__(self, feature: str, minimum: str, installed: str):
        self.package = "transformers"
        self.feature = feature
        Exception.__init__(
            self,
            f"{feature} needs transformers {minimum} or newer; the Python that runs ComfyUI "
            f"has transformers {installed}. Upgrade it with: python -m pip install -U "
            f"\"transformers>={minimum}\" (use ComfyUI's own python, e.g. "
            "python_embeded\\python.exe on the portable build), then restart ComfyUI. BLIP "
            "captioners (blip-image-captioning-large) work with older transformers.",
        )


def refuse_remote_code(folder: Path, config: dict) -> None:
    """Raise WrongModelFamilyError for Microsoft's remote-code Florence-2 layout."""
    vision = config.get("vision_config") or {}
    markers = [f"auto_map {sorted(config['auto_map'])}"] if config.get("auto_map") else []
    markers += [name for name in _REMOTE_CODE_FILES if (folder / name).is_file()]
    if vision.get("model_type") == "davit" or "dim_embed" in vision:
        markers.append("a DaViT vision_config")
    if markers:
        raise WrongModelFamilyError(
            f"{folder} is Microsoft's original Florence-2 release ({', '.join(markers)}), "
            "which only runs with its own downloaded code (trust_remote_code, broken since "
            "transformers 4.50); this pack never runs code from a model folder. Use the "
            f"florence-community conversion instead: download {CONVERSIONS} into "
            "models/captioners/Florence-2-base (pick Florence-2-base in Load Captioner and it "
            "is downloaded on first use)."
        )


def florence_classes():
    """``(Florence2ForConditionalGeneration, Florence2Processor)``, or TransformersTooOldError."""
    try:
        from transformers import Florence2ForConditionalGeneration, Florence2Processor
    except ImportError:
        import transformers

        raise TransformersTooOldError("Florence-2 captioning", MIN_TRANSFORMERS,
                                      transformers.__version__) from None
    return Florence2ForConditionalGeneration, Florence2Processor


def load_florence(folder: Path, precision: str) -> FlorenceCaptioner:
    """Load a Florence-2 folder that ``captioner.check_folder`` accepted."""
    model_class, processor_class = florence_classes()
    runtime = get_runtime()
    dtype = resolve_dtype(precision, runtime.torch_device())
    try:
        processor = processor_class.from_pretrained(str(folder), local_files_only=True)
        model = model_class.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, AttributeError) as exc:
        raise WeightsCorruptError(
            f"{folder} could not be loaded as a Florence-2 captioner "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). It needs "
            "config.json, model.safetensors, preprocessor_config.json and the tokenizer files "
            "(tokenizer.json, tokenizer_config.json, vocab.json, merges.txt); download "
            f"{CONVERSIONS} again."
        ) from None
    # Loaded in the file's dtype (fp16 for the converted checkpoints) then cast: the
    # from_pretrained dtype keyword was renamed between transformers 4 and 5.
    model.to(dtype).eval()
    log.info("loaded Florence-2 captioner (%s) from %s", dtype, folder)
    return FlorenceCaptioner(runtime.manage(model), processor, dtype, folder)


class FlorenceCaptioner(Captioner):
    """A loaded Florence-2 model: batched captions at three levels of detail."""

    kind = "florence2"
    # Room for a sentence, a few sentences, a paragraph (generation stops at its end).
    max_tokens = {"short": 40, "detailed": 128, "more_detailed": 256}

    def _caption_batch(self, images: list[Image.Image], settings: Settings) -> list[str]:
        task = TASKS[settings.detail]
        # One task for the whole batch: every row has the same prompt, so none is padded.
        encoded = self._processor(text=[task] * len(images), images=images, return_tensors="pt")
        inputs = {name: encoded[name] for name in ("input_ids", "attention_mask", "pixel_values")
                  if name in encoded}
        output = self._generate(inputs, settings)
        # skip_special_tokens drops <s>, </s> and the <pad> of rows that ended early.
        texts = self._processor.batch_decode(output, skip_special_tokens=True)
        return [self._processor.post_process_generation(text, task=task,
                                                        image_size=image.size)[task].strip()
                for text, image in zip(texts, images, strict=True)]
