"""Delete leakage with a marker-finding detector (a necklace is found exactly where one is
drawn) and the mean-colour encoder for the reference filter (cosines known in advance)."""

from __future__ import annotations

import math

import pytest

from intenttuner.errors import InputError
from intenttuner.evaluation.leakage import WHOLE_IMAGE, LeakageSettings, leakage_score
from intenttuner.evaluation.types import Test as EvalTest  # not "Test*": pytest would collect it
from intenttuner.intent.schema import Intent
from tests.evaluation_helpers import (
    MarkerDetector,
    MeanColourEncoder,
    draw,
    generated,
    intent,
    noise,
    solid,
    tiny_models,
)

NECKLACE = (20, 40, 44, 48)
YELLOW_NECKLACE = "trigger: vin. Never a necklace [1]."  # reference [1]: a yellow necklace


def necklace(colour="yellow", size=(64, 64), box=NECKLACE, background="white"):
    return draw(solid(background, *size), "necklace", box, colour)


def rows(*images, concept="necklace"):
    return generated([(EvalTest.LEAKAGE, image, concept, None) for image in images])


def score(images, description="trigger: vin. Never a necklace.", references=(), encoder=None,
          detector=None, settings=None):
    if images and hasattr(images[0], "size"):
        images = rows(*images)
    return leakage_score(images, intent(description, references), detector or MarkerDetector(),
                         encoder, settings)


def yellow_reference():
    return [("yellow", (10, 10, 50, 30))]


def test_clean_images_score_zero_and_lower_is_better():
    detector = MarkerDetector()
    result = score([noise(64, 64), solid("yellow", 90, 40), noise(30, 70, seed=2)],
                   detector=detector)
    assert (result.applicable, result.score, result.higher_is_better) == (True, 0.0, False)
    assert detector.calls == [3]  # one detector pass
    assert [(r.item, r.found, r.box) for r in result.records] == [
        ("leakage-000", False, None), ("leakage-001", False, None), ("leakage-002", False, None)]
    (concept,) = result.concepts
    assert (concept.images, concept.detection_rate, concept.score) == (3, 0.0, 0.0)


def test_score_is_the_fraction_of_images_the_concept_is_found_in():
    images = [necklace(), noise(64, 64), necklace("blue", size=(100, 50)), solid("red"),
              noise(40, 40, seed=3)]
    result = score(images)
    assert result.score == pytest.approx(2 / 5)
    assert [r.found for r in result.records] == [True, False, True, False, False]
    assert result.records[0].box == NECKLACE and result.records[0].similarity is None
    assert result.parts == {"necklace": pytest.approx(0.4)}
    assert result.models == {"detector": "MarkerDetector"}
    assert "lower is better" in result.formula and "cosine" not in result.formula


def test_every_image_leaking_scores_one():
    assert score([necklace(), necklace("red")]).score == 1.0


def test_reference_filter_counts_only_necklaces_like_the_reference():
    encoder = MeanColourEncoder()
    images = [necklace("yellow"), necklace("blue"), necklace("white", background="red"),
              noise(64, 64)]
    result = score(images, YELLOW_NECKLACE, yellow_reference(), encoder)

    # yellow: cosine 1; blue: 0; white: 2/sqrt(6) = 0.816 >= 0.75
    assert [r.found for r in result.records] == [True, False, True, False]
    assert result.records[0].similarity == pytest.approx(1.0)
    assert result.records[2].similarity == pytest.approx(2 / math.sqrt(6))
    assert result.score == pytest.approx(2 / 4)
    assert encoder.calls == [1, 3]  # the reference crop, then every detection at once
    assert result.models == {"detector": "MarkerDetector", "reference_encoder": "mean-colour"}
    assert "cosine >= 0.75" in result.formula


def test_reference_threshold_decides_at_its_boundary():
    """A red necklace against the yellow reference: cosine 1/sqrt(2) = 0.7071."""
    images = [necklace("red")]
    strict = score(images, YELLOW_NECKLACE, yellow_reference(), MeanColourEncoder())
    loose = score(images, YELLOW_NECKLACE, yellow_reference(), MeanColourEncoder(),
                  settings=LeakageSettings(reference_threshold=0.7))
    assert (strict.score, loose.score) == (0.0, 1.0)
    assert any("None of the 1 detection(s) of 'necklace'" in w for w in strict.warnings)


def test_without_an_encoder_or_references_every_detection_leaks():
    images = [necklace("yellow"), necklace("blue")]
    no_encoder = score(images, YELLOW_NECKLACE, yellow_reference())
    no_references = score(images, encoder=MeanColourEncoder())
    assert no_encoder.score == no_references.score == 1.0
    assert "reference_encoder" not in no_references.models
    assert no_references.warnings == []  # nothing to compare with: nothing is missing


def test_references_without_an_encoder_warn_naming_the_concept_its_boxes_and_the_fix(caplog):
    images = [necklace("yellow"), necklace("blue")]
    two_boxes = "trigger: vin. Never a necklace [1] [2]. No jacket."
    references = yellow_reference() + [("blue", (4, 4, 20, 20))]
    with caplog.at_level("WARNING", logger="intenttuner.evaluation.leakage"):
        result = score(images, two_boxes, references)
    assert result.score == 1.0 and "cosine" not in result.formula
    (warning,) = result.warnings
    assert warning.startswith("'necklace' has reference box(es) [1], [2], but no image encoder "
                              "is connected: every detection counts as a leak")
    assert "jacket" not in warning  # it has no references
    assert "Connect an image encoder (Load Image Encoder, CLIP) as image_encoder" in warning
    assert warning in caplog.text


def test_intent_saved_without_crops_counts_every_detection_and_says_why():
    public = Intent.from_data(intent(YELLOW_NECKLACE, yellow_reference()).public_dict())
    result = leakage_score(rows(necklace("blue")), public, MarkerDetector(), MeanColourEncoder())
    assert result.score == 1.0
    assert "saved without crops" in result.warnings[0]


def test_each_image_is_checked_for_the_concept_it_was_generated_for():
    """A jacket in a necklace image is not a jacket leak: that prompt did not invite one."""
    both = draw(necklace(), "jacket", (4, 4, 14, 14), "blue")
    images = generated([(EvalTest.LEAKAGE, both, "necklace", None),
                        (EvalTest.LEAKAGE, noise(64, 64), "necklace", None),
                        (EvalTest.LEAKAGE, both, "jacket", None),
                        (EvalTest.LEAKAGE, necklace(), "jacket", None),
                        (EvalTest.LEAKAGE, noise(64, 64, seed=4), "jacket", None),
                        (EvalTest.LEAKAGE, noise(64, 64, seed=5), "jacket", None)])
    detector = MarkerDetector()
    result = score(images, "trigger: vin. Never a necklace. No jacket.", detector=detector)

    assert detector.calls == [6] and sorted(detector.phrases) == ["jacket", "necklace"]
    assert result.parts == {"necklace": 0.5, "jacket": 0.25}
    assert result.score == pytest.approx((0.5 + 0.25) / 2)
    assert [(r.image, r.concept, r.found) for r in result.records] == [
        (0, "necklace", True), (1, "necklace", False), (2, "jacket", True),
        (3, "jacket", False), (4, "jacket", False), (5, "jacket", False)]


def test_an_image_for_no_particular_concept_is_checked_for_all():
    both = draw(necklace(), "jacket", (4, 4, 14, 14), "blue")
    result = score(rows(both, concept=None), "trigger: vin. Never a necklace. No jacket.")
    assert [(r.concept, r.found) for r in result.records] == [("necklace", True),
                                                              ("jacket", True)]


def test_a_concept_without_images_is_not_applicable_and_left_out_of_the_mean():
    result = score(rows(necklace()), "trigger: vin. Never a necklace. No jacket.")
    jacket = next(c for c in result.concepts if c.concept == "jacket")
    assert (jacket.applicable, jacket.score) == (False, None)
    assert result.score == 1.0


def test_deleted_whole_image_quality_is_listed_as_not_measured():
    result = score([necklace()], "trigger: vin. Never a necklace. No blurry background.")
    blur = next(c for c in result.concepts if c.concept == "blurry background")
    assert (blur.applicable, blur.reason) == (False, WHOLE_IMAGE)
    assert result.score == 1.0


@pytest.mark.parametrize("description, reason", [
    ("trigger: vin. Keep his face.", "the intent deletes no concept that can be located"),
    ("trigger: vin. No blurry background.", "the intent deletes no concept that can be located"),
])
def test_intent_deleting_nothing_locatable_is_not_applicable(description, reason):
    result = score(rows(necklace(), concept=None), description)
    assert (result.applicable, result.score, result.metric) == (False, None, EvalTest.LEAKAGE)
    assert result.reason == reason and result.higher_is_better is False


def test_plan_without_leakage_images_is_not_applicable():
    result = score(generated([(EvalTest.STABILITY, necklace(), None, None)]))
    assert (result.applicable, result.score) == (False, None)
    assert result.reason == "the plan has no leakage prompts"


def test_batch_of_one():
    result = score([necklace(size=(50, 120), box=(5, 60, 40, 70))])
    assert result.score == 1.0 and result.records[0].box == (5, 60, 40, 70)


def test_images_generated_for_another_concept_are_refused():
    with pytest.raises(InputError, match="tests 'hat', which is not a leakage concept"):
        score(rows(necklace(), concept="hat"))


@pytest.mark.parametrize("settings, match", [
    (dict(box_threshold=-0.1), "box_threshold"), (dict(reference_threshold=1.5), "cosine"),
    (dict(batch_size=0), "batch_size")])
def test_settings_are_checked(settings, match):
    with pytest.raises(InputError, match=match):
        LeakageSettings(**settings)


def test_tiny_real_detector_and_reference_filter_through_the_loading_path(models_root):
    """Random weights at box_threshold 0 find a necklace everywhere; the real open_clip
    reference filter then keeps every detection at threshold -1 and none at 1 (no crop of
    these images is the reference crop)."""
    models = tiny_models(models_root, "detector", "image_encoder")
    detector, clip = models["detector"], models["image_encoder"]
    images = [necklace("blue"), noise(80, 50), necklace("red", size=(50, 90))]

    def leaks(threshold):
        return score(images, YELLOW_NECKLACE, yellow_reference(), clip, detector,
                     LeakageSettings(box_threshold=0.0, reference_threshold=threshold))

    everything, nothing = leaks(-1.0), leaks(1.0)
    assert everything.score == 1.0 and nothing.score == 0.0
    assert all(-1.0 <= r.similarity <= 1.0 for r in everything.records)
    assert everything.models == {"detector": "grounding-dino-tiny-random",
                                 "reference_encoder": "IntentTuner-Tiny-ViT"}
