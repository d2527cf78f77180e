"""ControllabilityScore with a known-output CLIP: images embed as their mean colour and texts as
the colour they name, so every two-way choice and margin is a difference of known cosines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from intenttuner.errors import InputError
from intenttuner.evaluation.controllability import (
    NO_VALUES,
    ControlSettings,
    controllability_score,
)
from intenttuner.evaluation.finding import find_concepts
from intenttuner.evaluation.types import Test as EvalTest  # not "Test*": pytest would collect it
from tests.evaluation_helpers import (
    ColourClip,
    MarkerDetector,
    MeanColourEncoder,
    cosine,
    draw,
    generated,
    intent,
    mean_colour,
    noise,
    solid,
    tiny_models,
)

HAIR = "trigger: vin. His hair colour should switch between red hair and blue hair."
HAIR_BOX = (8, 4, 56, 24)
EXACT = ControlSettings(crop_margin=0.0)  # the crop is exactly the drawn hair


def hair(colour, background="white", size=(64, 64), box=HAIR_BOX):
    return draw(solid(background, *size), "hair", box, colour)


def rows(*pairs, concept="hair colour"):
    """(value prompted, image) pairs -> controllability Generated."""
    return generated([(EvalTest.CONTROLLABILITY, image, concept, value) for value, image in pairs])


def score(images, description=HAIR, clip=None, detector=None, settings=EXACT):
    return controllability_score(images, intent(description), clip or ColourClip(), detector,
                                 settings)


def directions(result):
    return {(c.target, c.other): (c.images, c.accuracy, c.mean_margin)
            for c in result.concepts if c.applicable}


def test_images_of_the_prompted_colour_are_all_correct_with_margin_one():
    clip, detector = ColourClip(), MarkerDetector()
    images = rows(("red hair", hair("red")), ("red hair", hair("red", size=(90, 50))),
                  ("blue hair", hair("blue", background="red")), ("blue hair", hair("blue")))
    result = score(images, clip=clip, detector=detector)

    assert result.applicable and result.score == 1.0
    assert directions(result) == {("red hair", "blue hair"): (2, 1.0, pytest.approx(1.0)),
                                  ("blue hair", "red hair"): (2, 1.0, pytest.approx(1.0))}
    assert result.parts == {"balanced_accuracy": 1.0, "mean_margin": pytest.approx(1.0),
                            "hair colour": 1.0}
    assert clip.text_calls == [["a photo of red hair", "a photo of blue hair"]]
    assert clip.calls == [4] and detector.calls == [4]  # all crops / images in one call each
    assert [(r.target, r.other, r.predicted, r.correct, r.found, r.box)
            for r in result.records[2:]] == [
        ("blue hair", "red hair", "blue hair", True, True, HAIR_BOX)] * 2
    assert result.models == {"clip": "colour-clip", "detector": "MarkerDetector"}


def test_images_of_the_other_colour_are_all_wrong_with_margin_minus_one():
    images = rows(("red hair", hair("blue")), ("blue hair", hair("red")))
    result = score(images, detector=MarkerDetector())
    assert result.score == 0.0
    assert directions(result) == {("red hair", "blue hair"): (1, 0.0, pytest.approx(-1.0)),
                                  ("blue hair", "red hair"): (1, 0.0, pytest.approx(-1.0))}
    assert [r.predicted for r in result.records] == ["blue hair", "red hair"]


def test_a_model_that_ignores_the_prompt_scores_half_balanced_accuracy():
    """Always red hair: three of four images are 'correct' by count, but balanced accuracy
    weighs both directions equally."""
    images = rows(("red hair", hair("red")), ("red hair", hair("red")),
                  ("red hair", hair("red")), ("blue hair", hair("red")))
    result = score(images, detector=MarkerDetector())
    assert result.score == 0.5
    assert result.parts["mean_margin"] == pytest.approx(0.0, abs=1e-6)  # (1 + -1) / 2


def test_random_colours_are_classified_by_which_colour_they_lean_to():
    """Random hair colours: correct exactly when the crop is redder than blue for a red
    prompt (and the reverse), with margin (r - b) / |rgb|, computed from the pixels."""
    crops = [noise(48, 20, seed=s) for s in range(8)]
    values = ["red hair", "blue hair"] * 4
    result = score(rows(*[(v, hair(c)) for v, c in zip(values, crops, strict=True)]),
                   detector=MarkerDetector())

    expected = []
    for value, crop in zip(values, crops, strict=True):
        r, _, b = mean_colour(crop)
        sign = 1 if value == "red hair" else -1
        expected.append(sign * (r - b) / np.linalg.norm(mean_colour(crop)))
    assert [r.margin for r in result.records] == pytest.approx(expected, abs=1e-6)
    assert [r.correct for r in result.records] == [m > 0 for m in expected]
    by_value = [np.mean([m > 0 for m in expected[k::2]]) for k in (0, 1)]
    assert result.score == pytest.approx(np.mean(by_value))


def test_the_concept_crop_decides_not_the_whole_image():
    """Red hair on a mostly blue image: right with the detector's crop, wrong without it."""
    image = draw(solid("blue", 64, 64), "hair", (20, 20, 30, 30), "red")
    with_crop = score(rows(("red hair", image)), detector=MarkerDetector())
    whole = score(rows(("red hair", image)))

    assert (with_crop.records[0].correct, with_crop.records[0].box) == (True, (20, 20, 30, 30))
    assert (whole.records[0].correct, whole.records[0].box, whole.records[0].found) == (
        False, None, None)
    assert whole.models["detector"] == "none (whole images)"


def test_crop_margin_takes_in_the_surroundings():
    image = draw(solid("blue", 64, 64), "hair", (20, 20, 30, 30), "red")
    tight = score(rows(("red hair", image)), detector=MarkerDetector())
    wide = score(rows(("red hair", image)), detector=MarkerDetector(),
                 settings=ControlSettings(crop_margin=1.0))  # 30x30 around a 10x10 red patch
    r, _, b = surroundings = mean_colour(image.crop((10, 10, 40, 40)))  # blue, outline, red
    assert tight.records[0].margin == pytest.approx(1.0)
    assert wide.records[0].margin == pytest.approx((r - b) / np.linalg.norm(surroundings))
    assert wide.records[0].correct is False  # mostly blue around it


def test_hair_never_found_falls_back_to_the_whole_image_with_a_warning():
    images = rows(("red hair", solid("red")), ("blue hair", solid("blue", 40, 90)))
    result = score(images, detector=MarkerDetector())
    assert result.score == 1.0
    assert [(r.found, r.box) for r in result.records] == [(False, None), (False, None)]
    (warning,) = result.warnings
    assert "'hair colour' (looked for as 'hair') was not found in any of the 2" in warning
    assert "whole images were classified" in warning


def test_three_values_give_six_directions():
    three = "trigger: vin. His hair colour can be red, green or blue."
    images = rows(("red hair", hair("red")), ("green hair", hair("yellow")),
                  ("blue hair", hair("green")))
    result = score(images, description=three, detector=MarkerDetector())

    half = 1 / math.sqrt(2)  # yellow is half red, half green
    assert directions(result) == {
        ("red hair", "green hair"): (1, 1.0, pytest.approx(1.0)),
        ("red hair", "blue hair"): (1, 1.0, pytest.approx(1.0)),
        ("green hair", "red hair"): (1, 0.0, pytest.approx(0.0, abs=1e-6)),  # a tie is wrong
        ("green hair", "blue hair"): (1, 1.0, pytest.approx(half)),
        ("blue hair", "red hair"): (1, 0.0, pytest.approx(0.0, abs=1e-6)),
        ("blue hair", "green hair"): (1, 0.0, pytest.approx(-1.0)),
    }
    assert result.score == pytest.approx(3 / 6)
    assert result.parts["hair colour"] == pytest.approx(3 / 6)
    assert len(result.records) == 6  # each image against each other value


def test_each_concept_weighs_the_same_whatever_its_number_of_values():
    """Hair with three values (six directions, three right) and lighting with two (both
    right): the score is the mean of the concepts' balanced accuracies, (0.5 + 1) / 2, not
    the mean over the eight directions (5 / 8)."""
    two = ("trigger: vin. His hair colour can be red, green or blue. The lighting should "
           "switch between red light and blue light.")
    images = generated([
        (EvalTest.CONTROLLABILITY, hair("red"), "hair colour", "red hair"),
        (EvalTest.CONTROLLABILITY, hair("yellow"), "hair colour", "green hair"),
        (EvalTest.CONTROLLABILITY, hair("green"), "hair colour", "blue hair"),
        (EvalTest.CONTROLLABILITY, solid("red"), "lighting", "red light"),
        (EvalTest.CONTROLLABILITY, solid("blue"), "lighting", "blue light")])
    result = score(images, description=two, detector=MarkerDetector())

    assert len(directions(result)) == 8
    hair_margin = (1 + 1 + 0 + 1 / math.sqrt(2) + 0 - 1) / 6  # as in the three-value test
    assert result.parts == {"balanced_accuracy": pytest.approx(0.75),
                            "mean_margin": pytest.approx((hair_margin + 1.0) / 2),
                            "hair colour": pytest.approx(0.5), "lighting": 1.0}
    assert result.score == pytest.approx(0.75)
    assert "mean over the 2 modified concept(s)" in result.formula


def test_whole_image_concepts_are_classified_whole_even_with_a_detector():
    lighting = "trigger: vin. The lighting should switch between red light and blue light."
    images = rows(("red light", solid("red")), ("blue light", solid("blue")), concept="lighting")
    result = score(images, description=lighting, detector=MarkerDetector())
    assert result.score == 1.0
    assert [r.found for r in result.records] == [None, None]
    assert result.warnings == []


def test_value_without_images_is_not_applicable_and_balanced_over_the_rest():
    result = score(rows(("red hair", hair("red", size=(30, 80), box=(2, 2, 28, 40)))),
                   detector=MarkerDetector())
    blue = next(c for c in result.concepts if c.target == "blue hair")
    assert (blue.applicable, blue.accuracy, blue.reason) == (
        False, None, "no image was generated for 'blue hair'")
    assert result.score == 1.0 and result.parts["mean_margin"] == pytest.approx(1.0)


@pytest.mark.parametrize("description, reason", [
    ("trigger: vin. Keep his face.", "the intent modifies no concept with two or more values"),
    ("trigger: vin. The jacket should be changeable.", "no concept with two or more values"),
])
def test_intent_without_a_two_valued_modify_concept_is_not_applicable(description, reason):
    result = score(rows(("red hair", hair("red"))), description=description)
    assert (result.applicable, result.score, result.metric) == (
        False, None, EvalTest.CONTROLLABILITY)
    assert reason in result.reason
    assert all(c.reason == NO_VALUES and c.score is None for c in result.concepts)


def test_a_modify_concept_without_values_is_listed_beside_the_measured_ones():
    result = score(rows(("red hair", hair("red")), ("blue hair", hair("blue"))),
                   description=HAIR + " The jacket should be changeable.")
    jacket = next(c for c in result.concepts if c.concept == "jacket")
    assert (jacket.applicable, jacket.reason) == (False, NO_VALUES)
    assert result.score == 1.0


def test_plan_without_controllability_images_is_not_applicable():
    result = score(generated([(EvalTest.STABILITY, hair("red"), None, None)]))
    assert (result.applicable, result.score) == (False, None)
    assert result.reason == "the plan has no controllability prompts"


def test_an_encoder_without_texts_is_refused():
    with pytest.raises(InputError, match="needs a CLIP image/text encoder.*not DINO"):
        score(rows(("red hair", hair("red"))), clip=MeanColourEncoder())


def test_no_encoder_is_refused_saying_none_was_given():
    with pytest.raises(InputError, match=r"needs a CLIP image/text encoder \(Load Image "
                       r"Encoder, CLIP\) to classify the controllability images: none was given"):
        controllability_score(rows(("red hair", hair("red"))), intent(HAIR), None)


@pytest.mark.parametrize("clip", [None, MeanColourEncoder()], ids=["no encoder", "DINO"])
@pytest.mark.parametrize("description, images, reason", [
    ("trigger: vin. Keep his face.", None, "the intent modifies no concept with two or more"),
    (HAIR, [], "the plan has no controllability prompts"),
])
def test_not_applicable_needs_no_clip(clip, description, images, reason):
    images = rows(("red hair", hair("red"))) if images is None else images
    result = controllability_score(images, intent(description), clip)
    assert (result.applicable, result.score) == (False, None) and reason in result.reason


@pytest.mark.parametrize("concept, value, match", [
    ("jacket", "red hair", "tests 'jacket', which is not a controllability concept"),
    ("hair colour", "green hair", "value 'green hair' of 'hair colour', which is not one"),
    (None, "red hair", r"Image 0 \(controllability-000\) is a controllability image of no "
     "modified concept: each one is prompted with one value of one modified concept"),
    ("hair colour", None, "is a controllability image of no value: each one"),
])
def test_images_of_another_intent_are_refused(concept, value, match):
    images = generated([(EvalTest.CONTROLLABILITY, hair("red"), concept, value)])
    with pytest.raises(InputError, match=match):
        score(images)


@pytest.mark.parametrize("settings, match", [
    (dict(template="a photo of"), "template must hold"),
    (dict(crop_margin=-0.5), "crop_margin"), (dict(box_threshold=2.0), "box_threshold"),
    (dict(batch_size=0), "batch_size"),
])
def test_settings_are_checked(settings, match):
    with pytest.raises(InputError, match=match):
        ControlSettings(**settings)


def test_the_template_is_what_the_texts_say():
    clip = ColourClip()
    score(rows(("red hair", hair("red"))), clip=clip,
          settings=ControlSettings(template="a portrait with {}, studio"))
    assert clip.text_calls == [["a portrait with red hair, studio",
                                "a portrait with blue hair, studio"]]


def test_the_helper_cosines_the_expectations_rest_on():
    assert cosine((1, 1, 0), (1, 0, 0)) == pytest.approx(1 / math.sqrt(2))


def test_tiny_real_clip_and_detector_through_the_loading_path(models_root):
    """Random weights say nothing about colours, so the oracle is the encoder itself: each
    margin is cos(image, target text) - cos(image, other text) computed here apart, for whole
    images; with the real detector (threshold 0) every image is classified by a crop."""
    models = tiny_models(models_root, "image_encoder", "detector")
    clip, detector = models["image_encoder"], models["detector"]
    pictures = [hair("red"), hair("blue", size=(90, 40), box=(10, 5, 80, 30)), noise(50, 70)]
    images = rows(("red hair", pictures[0]), ("blue hair", pictures[1]),
                  ("red hair", pictures[2]))

    whole = score(images, clip=clip)
    texts = clip.embed_texts(["a photo of red hair", "a photo of blue hair"])
    sims = clip.embed_images(pictures) @ texts.T  # rows: images; columns: red, blue
    expected = [float(sims[0, 0] - sims[0, 1]), float(sims[1, 1] - sims[1, 0]),
                float(sims[2, 0] - sims[2, 1])]
    assert [r.margin for r in whole.records] == pytest.approx(expected, abs=1e-5)
    red = np.mean([expected[0] > 0, expected[2] > 0])
    assert whole.score == pytest.approx((red + (expected[1] > 0)) / 2)
    assert whole.models["clip"] == "IntentTuner-Tiny-ViT"

    cropped = score(images, clip=clip, detector=detector,
                    settings=ControlSettings(box_threshold=0.0))
    the_intent = intent(HAIR)
    found = find_concepts(pictures, the_intent, the_intent.concepts, detector, 0.0)
    best = [f["hair colour"][0].box if f["hair colour"] else None for f in found]
    assert [r.box for r in cropped.records] == best and any(best)
    assert [r.found for r in cropped.records] == [b is not None for b in best]
    assert 0.0 <= cropped.score <= 1.0
