"""The default detector, SAM and image encoder with their REAL weights, on a synthetic scene;
the default prompt adapter (Promptist) rewriting a plain prompt.

Runs only when the weights are on disk: set INTENTTUNER_MODELS_DIR to a models folder (a
ComfyUI ``models/`` works) holding grounding-dino/grounding-dino-tiny/,
sams/sam_vit_b_01ec64.pth and image_encoders/ViT-B-32.laion2b_s34b_b79k.safetensors (and
prompt_adapters/Promptist/ for the adapter's test). Skips cleanly otherwise (never downloads).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from intenttuner.detection.detect import detect_concepts
from intenttuner.detection.ref_filter import FilterSettings, filter_by_references
from intenttuner.intent.parse import parse_intent
from tests.real_weights_helpers import real_models

pytestmark = pytest.mark.real_weights
CIRCLE = (150, 120, 330, 300)  # XYXY of the red disc in the scene
SQUARE = (420, 160, 560, 300)  # and of the blue square


@pytest.fixture(scope="module")
def models():
    yield from real_models({"detector": "grounding-dino-tiny", "segmenter": "sam-vit-b",
                            "image_encoder": "clip-vit-b-32-laion2b"})


def scene() -> Image.Image:
    image = Image.new("RGB", (640, 420), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse(CIRCLE, fill=(220, 30, 30))
    draw.rectangle(SQUARE, fill=(30, 60, 220))
    return image


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_real_models_find_mask_and_recognise_the_concepts(models):
    reference = Image.new("RGB", (200, 200), (250, 250, 250))
    ImageDraw.Draw(reference).ellipse((20, 20, 180, 180), fill=(210, 40, 35))
    intent = parse_intent("trigger: x. Keep the red circle [1]. Remove the blue square.",
                          [reference], "[[10, 10, 190, 190]]")
    image = scene()

    detections = detect_concepts([image], intent, models["detector"], models["segmenter"])
    best = {c: max((d for d in detections.kept(0) if d.concept == c), key=lambda d: d.score)
            for c in ("red circle", "blue square")}
    assert iou(best["red circle"].box, CIRCLE) > 0.7
    assert iou(best["blue square"].box, SQUARE) > 0.7
    disc = np.zeros((420, 640), dtype=bool)
    yy, xx = np.mgrid[:420, :640]
    disc[((xx - 240) / 90) ** 2 + ((yy - 210) / 90) ** 2 <= 1] = True
    mask = best["red circle"].mask.decode(image.size)
    assert (mask & disc).sum() / (mask | disc).sum() > 0.8

    filtered = filter_by_references([image], detections, intent, models["image_encoder"],
                                    FilterSettings(threshold=0.8))
    circle = max((d for d in filtered.images[0].detections if d.concept == "red circle"),
                 key=lambda d: d.similarity or 0)
    assert circle.kept and circle.similarity > 0.8


@pytest.fixture(scope="module")
def promptist():
    yield from real_models({"prompt_adapter": "promptist"})


def test_promptist_rewrites_a_plain_prompt_keeping_its_subject(promptist):
    plain = "a cat sitting on a windowsill"
    (rewrite,) = promptist["prompt_adapter"].rephrase([plain])
    assert rewrite and rewrite != plain
    assert "cat" in rewrite.lower()
