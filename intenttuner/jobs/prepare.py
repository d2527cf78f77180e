"""The stages that turn training images into a captioned training set, each the library call
its ComfyUI node makes (Intent Parse, Load Training Images, Concept Detect, Reference Filter,
Intent Crop, Intent Inpaint, Save Training Set, Caption Refine), with the run's settings and
models in place of the widgets and loader nodes."""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from ..augment.inpaint import AUTO
from ..augment.plan import plan_crops
from ..augment.removal import Removal, remove_deleted
from ..augment.types import Augmented
from ..captions.caption_set import CaptionReport, caption_training_set
from ..dataset.image_folder import LoadedImages, load_image_folder
from ..dataset.kohya import write_training_set
from ..dataset.training_set import TrainingSet
from ..detection.detect import DETECTION_PACKAGES, detect_concepts
from ..detection.ref_filter import filter_by_references
from ..detection.types import Detections
from ..families.base import require_packages
from ..intent.parse import parse_intent
from ..intent.schema import Intent, Operation
from .models import RunModels
from .settings import RunSettings

log = logging.getLogger(__name__)



def parse(text: str, references: list[Image.Image], boxes: str, models: RunModels,
          settings: RunSettings) -> Intent:
    """Intent Parse: the offline parser, or the run's LLM when one is set."""
    return parse_intent(text, references, boxes, models.llm(settings),
                        on_unplaced=settings.intent.on_unplaced,
                        on_llm_failure=settings.intent.on_llm_failure)


def load_images(folder: Path, settings: RunSettings) -> LoadedImages:
    """Load Training Images: every usable image (the others skipped, with the reason)."""
    loaded = load_image_folder(folder, recursive=settings.images.recursive,
                               max_side=settings.images.max_side)
    if loaded.skipped:
        log.warning("%s", loaded.report())
    return loaded


def detect(loaded: LoadedImages, intent: Intent, models: RunModels,
           settings: RunSettings) -> Detections:
    """Concept Detect with SAM masks (unless the segmenter is "none"); SAM is let go after."""
    require_packages(DETECTION_PACKAGES, "Concept Detect")
    detections = detect_concepts(loaded.images, intent, models.get("detector"),
                                 models.optional("segmenter"), settings.detect)
    models.release("segmenter")
    return detections


def filter_references(loaded: LoadedImages, detections: Detections, intent: Intent,
                      models: RunModels, settings: RunSettings) -> Detections:
    """Reference Filter: the detections that look like the reference crops."""
    return filter_by_references(loaded.images, detections, intent, models.get("image_encoder"),
                                settings.ref_filter)


def crops(loaded: LoadedImages, detections: Detections, intent: Intent,
          settings: RunSettings) -> Augmented:
    """Intent Crop: the originals plus the close-ups the intent asks for."""
    plan = plan_crops(intent, detections, [image.size for image in loaded.images],
                      loaded.names, settings.crop)
    return Augmented(plan=plan, sources=loaded.images)


def inpaint(augmented: Augmented, detections: Detections, intent: Intent, models: RunModels,
            settings: RunSettings) -> Removal:
    """Intent Inpaint: the deleted concepts painted out. LaMa is loaded only when there is
    something to delete and the backend may use it (auto, lama); the base model only for
    the diffusion backend."""
    backend = settings.inpaint_backend
    deletes = bool(intent.by_operation(Operation.DELETE))
    inpainter = models.optional("inpainter") if deletes and backend in (AUTO, "lama") else None
    base_model = models.base_model() if deletes and backend == "diffusion" else None
    removal = remove_deleted(augmented, detections, intent, backend,
                             mask_settings=settings.masks, settings=settings.inpaint,
                             inpainter=inpainter, base_model=base_model)
    models.release("inpainter")
    return removal


def save_set(augmented: Augmented, intent: Intent, parent: Path, name: str,
             settings: RunSettings) -> TrainingSet:
    """Save Training Set: the kohya folder ``parent/name`` (never over an existing one)."""
    return write_training_set(augmented, intent, parent, name, if_exists="error",
                              max_repeats=settings.dataset.max_repeats,
                              repeat_multiplier=settings.dataset.repeat_multiplier)


def caption(training_set: TrainingSet, intent: Intent, models: RunModels,
            settings: RunSettings) -> tuple[TrainingSet, CaptionReport]:
    """Caption Refine: captions that follow the intent, beside the images; the captioner is
    let go after."""
    result = caption_training_set(training_set, models.get("captioner"), intent=intent,
                                  llm=models.llm(settings), settings=settings.captions)
    models.release("captioner")
    return result
