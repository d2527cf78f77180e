"""The evaluation metrics with their REAL default weights, on hand-made images whose answer is
known (issue 11's "done when"):

- stability (GroundingDINO tiny finds the kept object, DINO ViT-S/16 compares it with the
  reference crop): scenes with the reference object pasted in score above scenes without it,
  image by image;
- controllability (open_clip ViT-B-32's two-way choice): heads whose hair is coloured red or
  blue are classified as "red hair" / "blue hair" without a mistake.

Runs only when the weights are on disk: INTENTTUNER_MODELS_DIR holding
grounding-dino/grounding-dino-tiny/, identity_encoders/dino-vits16/ and
image_encoders/ViT-B-32.laion2b_s34b_b79k.safetensors. Skips cleanly otherwise (never
downloads). The same ranking logic is tested with known-output encoders in
tests/test_evaluation_stability.py and tests/test_evaluation_controllability.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from intenttuner.evaluation.controllability import controllability_score
from intenttuner.evaluation.pairing import pair_images
from intenttuner.evaluation.prompts import PlanSettings, build_plan
from intenttuner.evaluation.stability import stability_score
from intenttuner.evaluation.types import Test as EvalTest  # "Test*" would be collected
from intenttuner.intent.parse import parse_intent
from tests.evaluation_helpers import stability_set
from tests.real_weights_helpers import real_models

pytestmark = pytest.mark.real_weights
SCENE = (640, 420)
BACKGROUNDS = ((245, 245, 240), (225, 235, 250), (240, 230, 210), (215, 240, 220))
HAIR = {"red hair": (190, 35, 30), "blue hair": (35, 70, 200)}


@pytest.fixture(scope="module")
def models():
    yield from real_models({"detector": "grounding-dino-tiny", "identity_encoder": "dino-vits16",
                            "image_encoder": "clip-vit-b-32-laion2b"})


def red_object() -> Image.Image:
    """The kept object: a red disc with its own markings (a dark ring, a yellow dot), so an
    identity encoder has more to match than "red and round"."""
    image = Image.new("RGB", (200, 200), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 190, 190), fill=(215, 35, 30))
    draw.ellipse((55, 55, 145, 145), outline=(120, 10, 10), width=9)
    draw.ellipse((120, 40, 150, 70), fill=(250, 210, 40))
    return image


def scene(n: int, with_object: bool) -> Image.Image:
    """Scene ``n``: a plain background with a blue square and a green triangle placed per
    scene and, ``with_object``, the reference object pasted at a size and place of its own."""
    rng = np.random.default_rng(n)
    image = Image.new("RGB", SCENE, BACKGROUNDS[n % len(BACKGROUNDS)])
    draw = ImageDraw.Draw(image)
    x = int(rng.integers(380, 480))
    draw.rectangle((x, 60, x + 120, 180), fill=(30, 60, 220))
    draw.polygon([(x, 380), (x + 140, 380), (x + 70, 260)], fill=(40, 170, 60))
    if with_object:
        side = int(rng.integers(150, 220))
        image.paste(red_object().resize((side, side), Image.BICUBIC),
                    (int(rng.integers(20, 360 - side)), int(rng.integers(20, 400 - side))))
    return image


def head(hair: tuple[int, int, int], n: int) -> Image.Image:
    """A cartoon head whose hair (most of the picture's colour) is ``hair``, with strands."""
    image = Image.new("RGB", (384, 384), BACKGROUNDS[n % len(BACKGROUNDS)])
    draw = ImageDraw.Draw(image)
    draw.ellipse((62, 30, 322, 330), fill=hair)  # the hair, behind the face
    draw.rectangle((62, 180, 322, 370), fill=hair)  # long hair down to the shoulders
    darker = tuple(c * 2 // 3 for c in hair)
    for x in range(80, 310, 18 + 3 * n):
        draw.line([(x, 120), (x + 10, 360)], fill=darker, width=3)
    draw.ellipse((117, 100, 267, 290), fill=(240, 200, 170))  # the face
    draw.ellipse((150, 170, 170, 185), fill=(40, 30, 30))
    draw.ellipse((214, 170, 234, 185), fill=(40, 30, 30))
    draw.arc((160, 220, 224, 260), 20, 160, fill=(150, 60, 60), width=4)
    return image


def test_stability_ranks_the_pasted_object_above_unrelated_scenes(models):
    reference = red_object()
    intent = parse_intent("trigger: x. Keep the red circle [1].", [reference],
                          "[[10, 10, 190, 190]]")
    pasted = stability_score(stability_set([scene(n, True) for n in range(4)]), intent,
                             models["detector"], models["identity_encoder"])
    unrelated = stability_score(stability_set([scene(n, False) for n in range(4)]), intent,
                                models["detector"], models["identity_encoder"])
    assert pasted.models["identity_encoder"] == "dino-vits16"
    (found,) = pasted.concepts
    assert found.detection_rate == 1.0, pasted.records
    assert pasted.score > unrelated.score
    # Image by image: the worst pasted scene still beats the best unrelated one (a scene where
    # nothing was found counts 0).
    assert min(r.similarity for r in pasted.records) > max(
        (r.similarity or 0.0) for r in unrelated.records), (pasted.records, unrelated.records)


def test_controllability_tells_the_hair_colours_apart(models):
    intent = parse_intent("trigger: vin. His hair colour should switch between red hair and "
                          "blue hair.")
    plan = build_plan(intent, PlanSettings(prompts_per_test=3, images_per_prompt=1))
    assert {item.test for item in plan.items} == {EvalTest.CONTROLLABILITY}
    generated = pair_images(plan, [head(HAIR[item.value], n)
                                   for n, item in enumerate(plan.items)])
    result = controllability_score(generated, intent, models["image_encoder"])
    assert result.score == 1.0, [(r.target, r.margin) for r in result.records]
    assert [c.accuracy for c in result.concepts] == [1.0, 1.0]
    assert all(r.correct and r.margin > 0 for r in result.records)
    assert result.models["clip"].startswith("ViT-B-32")
