"""StabilityScore (and the concept finding all metrics share), with known-output models: an
encoder whose embedding is the mean colour and a detector that finds drawn marker outlines, so
each similarity is a cosine between two colours known in advance."""

from __future__ import annotations

import math

import pytest

from intenttuner.errors import InputError
from intenttuner.evaluation.finding import crop_box, find_concepts
from intenttuner.evaluation.stability import (
    NO_REFERENCES,
    WHOLE_IMAGE,
    StabilitySettings,
    stability_score,
)
from intenttuner.evaluation.types import Test as EvalTest  # not "Test*": pytest would collect it
from tests.evaluation_helpers import (
    FixedScorer,
    MarkerDetector,
    MeanColourEncoder,
    cosine,
    draw,
    generated,
    intent,
    mean_colour,
    noise,
    rgb,
    solid,
    stability_set,
    tiny_models,
)

FACE = (10, 10, 50, 50)  # where the generated images show the face (XYXY)
KEEP_FACE = "trigger: vin. Keep his face [1]."


def red_face_intent(description: str = KEEP_FACE):
    return intent(description, [("red", FACE)])  # reference [1]: a red 40x40 face


def face(content, size=(64, 64), box=FACE, rank=0, background="white"):
    return draw(solid(background, *size), "face", box, content, rank)


def score(images, the_intent=None, **kwargs):
    settings = kwargs.pop("settings", None)
    encoder = kwargs.pop("encoder", None) or MeanColourEncoder()
    detector = kwargs.pop("detector", None) or MarkerDetector()
    rows = images if images and not hasattr(images[0], "size") else stability_set(images)
    return stability_score(rows, the_intent or red_face_intent(), detector, encoder,
                           settings=settings, **kwargs)


# -- shared pieces: crop_box, find_concepts ---------------------------------------------------

def test_crop_box_grows_by_the_margin_and_stays_inside_the_image():
    image = noise(100, 50)
    assert crop_box(image, (10, 10, 30, 20)).size == (20, 10)
    assert crop_box(image, (10, 10, 30, 20), margin=0.5).size == (40, 20)  # 10 px / 5 px a side
    assert crop_box(image, (90, 40, 120, 70), margin=0.1).size == (13, 13)  # 87..100: clamped
    assert crop_box(image, (99.9, 49.9, 100, 50)).size == (1, 1)  # never empty
    with pytest.raises(InputError, match="margin"):
        crop_box(image, (0, 0, 10, 10), margin=-0.1)


def test_find_concepts_asks_for_each_concepts_own_phrase_in_one_pass():
    """'hair', not one of its values: the crop must not favour the value the query names."""
    the_intent = intent("trigger: vin. Keep his face [1]. His hair colour should switch "
                        "between red hair [2] and blue hair [3]. Keep the soft lighting.",
                        [("red", FACE), ("red", FACE), ("blue", FACE)])
    images = [draw(face("red", rank=1), "face", (2, 2, 8, 8), "green"),
              draw(noise(90, 40), "hair", (5, 5, 20, 20), "blue")]
    detector = MarkerDetector()

    found = find_concepts(images, the_intent, the_intent.concepts, detector)

    assert detector.calls == [2] and sorted(detector.phrases) == ["face", "hair"]
    assert [sorted(f) for f in found] == [["face", "hair colour"]] * 2  # no lighting
    assert [(d.box, d.score) for d in found[0]["face"]] == [((2, 2, 8, 8), 0.9),
                                                           (FACE, 0.8)]
    assert found[0]["hair colour"] == []
    assert [(d.box, d.value) for d in found[1]["hair colour"]] == [((5, 5, 20, 20), None)]
    assert found[1]["face"] == []


# -- perfect, hand-made ranking, random, adversarial ------------------------------------------

def test_identical_crops_score_exactly_one_with_one_detector_pass_and_one_embed_call():
    encoder, detector = MeanColourEncoder(), MarkerDetector()
    images = [face("red"), face("red", size=(96, 64)), face("red", size=(64, 120))]
    result = score(images, encoder=encoder, detector=detector)

    assert result.applicable and result.score == pytest.approx(1.0, abs=1e-6)
    assert detector.calls == [3]  # every image in one detector pass
    assert encoder.calls == [1, 3]  # the reference crop, then all generated crops at once
    (concept,) = result.concepts
    assert (concept.concept, concept.images, concept.detection_rate) == ("face", 3, 1.0)
    assert concept.mean_similarity == pytest.approx(1.0, abs=1e-6)
    assert [(r.item, r.image, r.found, r.box) for r in result.records] == [
        ("stability-000", 0, True, FACE), ("stability-001", 1, True, FACE),
        ("stability-002", 2, True, FACE)]
    assert result.parts == {"identity": result.score, "quality": None, "aesthetic": None}
    assert result.formula.startswith("score = identity (no quality scorer connected)")
    assert result.models == {"identity_encoder": "mean-colour", "detector": "MarkerDetector"}


def test_reference_crop_pasted_in_ranks_above_unrelated_images():
    the_intent = red_face_intent()
    reference = the_intent.references[0].crop()
    pasted = [face(reference, background="green"), face(reference, size=(80, 64))]
    unrelated = [face(noise(40, 40, seed=1)), face("blue"), face("yellow")]

    high = score(pasted, the_intent).score
    low = score(unrelated, the_intent).score

    assert high == pytest.approx(1.0, abs=1e-6)
    expected = (cosine(mean_colour(noise(40, 40, seed=1)), (1, 0, 0)) + 0.0
                + cosine((1, 1, 0), (1, 0, 0))) / 3
    assert low == pytest.approx(expected, abs=1e-6) and low < high


def test_random_crops_score_the_expected_cosine_of_grey_to_the_reference():
    """Uniform noise averages to grey, whose cosine to red is 1/sqrt(3)."""
    images = [face(noise(40, 40, seed=s)) for s in range(4)]
    result = score(images)
    assert result.score == pytest.approx(1 / math.sqrt(3), abs=0.01)
    exact = [cosine(mean_colour(noise(40, 40, seed=s)), (1, 0, 0)) for s in range(4)]
    assert [r.similarity for r in result.records] == pytest.approx(exact, abs=1e-6)


def test_opposite_crops_are_clipped_to_zero_and_never_count_negative():
    """With colours centred on grey, cyan is red's opposite: cosine -1, clipped to 0."""
    result = score([face("cyan"), face("red")], encoder=MeanColourEncoder(centre=0.5))
    assert [r.similarity for r in result.records] == pytest.approx([0.0, 1.0], abs=1e-6)
    assert result.score == pytest.approx(0.5, abs=1e-6)


def test_missing_face_counts_zero_so_score_is_detection_rate_times_mean_similarity():
    images = [face("red"), face("yellow"), solid("red"), noise(64, 64)]  # 2 found of 4
    result = score(images)
    (concept,) = result.concepts
    yellow = 1 / math.sqrt(2)
    assert concept.detection_rate == 0.5
    assert concept.mean_similarity == pytest.approx((1 + yellow) / 2, abs=1e-6)
    assert concept.score == pytest.approx(0.5 * (1 + yellow) / 2, abs=1e-6)
    assert result.score == pytest.approx(concept.score, abs=1e-9)
    assert [(r.found, r.similarity, r.box) for r in result.records[2:]] == [
        (False, None, None), (False, None, None)]
    assert result.warnings == []


def test_concept_never_found_scores_zero_with_its_warning():
    result = score([solid("red"), noise(50, 70)])
    (concept,) = result.concepts
    assert (result.applicable, result.score) == (True, 0.0)
    assert (concept.detection_rate, concept.mean_similarity, concept.score) == (0.0, None, 0.0)
    (warning,) = result.warnings
    assert "'face' (looked for as 'face') was not found in any of the 2 stability" in warning


def test_best_box_and_best_reference_count():
    """Max over the top boxes (a green face scores higher, a red one is also there) and over
    the references ([1] red, [2] blue)."""
    the_intent = intent("trigger: vin. Keep his face [1] [2].", [("red", FACE), ("blue", FACE)])
    two_faces = draw(face("red", rank=1), "face", (52, 52, 62, 62), "green", rank=0)
    blue = face("blue")

    result = score([two_faces, blue], the_intent)
    assert [r.similarity for r in result.records] == pytest.approx([1.0, 1.0], abs=1e-6)
    assert result.records[0].box == FACE  # the box that matched, not the best-scoring one

    only_best = score([two_faces, blue], the_intent, settings=StabilitySettings(top_boxes=1))
    assert [r.similarity for r in only_best.records] == pytest.approx([0.0, 1.0], abs=1e-6)
    assert only_best.records[0].box == (52, 52, 62, 62)


# -- the quality term --------------------------------------------------------------------------

def test_quality_term_combines_exactly_with_its_weight():
    images = [face("red"), face("yellow"), face("red"), face("red")]
    scorer = FixedScorer([10.0, 5.5, 1.0, 14.0])  # quality 1, 0.5, 0, 1 (clipped)
    result = score(images, quality_scorer=scorer, settings=StabilitySettings(quality_weight=0.3))

    identity = (3 + 1 / math.sqrt(2)) / 4
    assert result.parts["identity"] == pytest.approx(identity, abs=1e-6)
    assert result.parts["quality"] == pytest.approx(2.5 / 4)
    assert result.parts["aesthetic"] == pytest.approx(30.5 / 4)
    assert result.parts["quality_weight"] == 0.3
    assert result.score == pytest.approx(0.7 * identity + 0.3 * 2.5 / 4, abs=1e-6)
    assert [r.quality for r in result.records] == [1.0, 0.5, 0.0, 1.0]
    assert "(1 - quality_weight) x identity + quality_weight x quality" in result.formula
    assert result.models["quality"] == "fixed on none" and scorer.calls == [4]


def test_quality_weight_zero_keeps_identity_and_reports_quality():
    result = score([face("yellow")], quality_scorer=FixedScorer([10.0]),
                   settings=StabilitySettings(quality_weight=0.0))
    assert result.score == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert result.parts["quality"] == 1.0


# -- references from the training images, caching -----------------------------------------------

def test_training_images_give_references_once_per_intent_and_encoder():
    the_intent = intent("trigger: vin. Keep his face.")  # no reference box
    training = [face("blue", size=(70, 60)), face("red"), noise(40, 40)]  # 2 faces found
    encoder, detector = MeanColourEncoder(), MarkerDetector()

    first = score([face("red"), face("blue")], the_intent, encoder=encoder, detector=detector,
                  reference_images=training)
    assert first.score == pytest.approx(1.0, abs=1e-6)
    assert detector.calls == [3, 2] and encoder.calls == [2, 2]

    again = score([face("green")], the_intent, encoder=encoder, detector=detector,
                  reference_images=[t.copy() for t in training])  # same pixels, new objects
    assert again.score == pytest.approx(0.0, abs=1e-6)
    assert detector.calls == [3, 2, 1] and encoder.calls == [2, 2, 1]


def test_intent_saved_without_crops_uses_the_training_images_and_says_so():
    from intenttuner.intent.schema import Intent

    public = Intent.from_data(red_face_intent().public_dict())
    result = score([face("red")], public, reference_images=[face("red")])
    assert result.score == pytest.approx(1.0, abs=1e-6)
    assert "saved without crops" in result.warnings[0]


# -- not applicable, never 0 or 1 ------------------------------------------------------------

@pytest.mark.parametrize("description, reason", [
    ("trigger: vin. Never a necklace.", "keeps no concept that can be located (it keeps "),
    ("trigger: vin. Keep the soft lighting.", "(only whole-image qualities: soft lighting)"),
])
def test_intent_without_a_locatable_kept_concept_is_not_applicable(description, reason):
    result = score([face("red")], intent(description))
    assert (result.applicable, result.score, result.metric) == (False, None, EvalTest.STABILITY)
    assert reason in result.reason


def test_plan_without_stability_images_is_not_applicable():
    rows = generated([(EvalTest.LEAKAGE, face("red"), "necklace", None)])
    result = score(rows)
    assert (result.applicable, result.score) == (False, None)
    assert result.reason == "the plan has no stability prompts"


def test_concept_without_references_is_not_applicable_but_reports_its_detection_rate():
    result = score([face("red"), solid("red")], intent("trigger: vin. Keep his face."))
    assert (result.applicable, result.score) == (False, None)
    (concept,) = result.concepts
    assert (concept.applicable, concept.score, concept.detection_rate) == (False, None, 0.5)
    assert concept.reason == NO_REFERENCES and NO_REFERENCES in result.reason
    assert [r.found for r in result.records] == [True, False]


def test_kept_whole_image_quality_is_left_to_the_quality_term():
    the_intent = red_face_intent(KEEP_FACE + " Keep the soft lighting.")
    result = score([face("red")], the_intent, quality_scorer=FixedScorer([10.0]))
    assert result.score == pytest.approx(1.0, abs=1e-6)
    lighting = next(c for c in result.concepts if c.concept == "soft lighting")
    assert (lighting.applicable, lighting.reason, lighting.score) == (False, WHOLE_IMAGE, None)
    assert {r.concept for r in result.records} == {"face"}
    unjudged = next(c for c in score([face("red")], the_intent).concepts
                    if c.concept == "soft lighting")
    assert unjudged.reason == WHOLE_IMAGE + " (connect a quality scorer to judge it)"


def test_batch_of_one_and_other_tests_images_ignored():
    rows = generated([(EvalTest.CONTROLLABILITY, face("blue"), "hair colour", "blue hair"),
                      (EvalTest.STABILITY, face("yellow", size=(33, 90), box=(3, 20, 30, 60)),
                       None, None)])
    result = score(rows)
    assert result.score == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert [(r.item, r.image) for r in result.records] == [("stability-000", 1)]


@pytest.mark.parametrize("field, value", [("box_threshold", 1.5), ("quality_weight", -0.1),
                                          ("top_boxes", 0), ("batch_size", 0)])
def test_settings_are_checked(field, value):
    with pytest.raises(InputError, match=field):
        StabilitySettings(**{field: value})


def test_colours_of_the_helpers_are_what_the_arithmetic_assumes():
    """The expected values above are cosines of these colours: guard the helpers."""
    assert rgb("yellow") == (255, 255, 0)
    assert mean_colour(face("red").crop(FACE)).tolist() == [1.0, 0.0, 0.0]


# -- tiny real models through the real loading path -------------------------------------------

def test_tiny_real_models_score_through_the_loading_path(models_root):
    """Tiny random DINO, detector, open_clip and aesthetic predictor: the pasted reference crop
    embeds exactly like the reference (same pixels, real DINO), so it ranks first; with the real
    detector (threshold 0: random weights), found and missing faces follow its detections and
    the real quality term combines exactly."""
    from intenttuner.families.aesthetic import AestheticScorer

    models = tiny_models(models_root, "identity_encoder", "detector", "image_encoder",
                         "aesthetic")
    dino, detector = models["identity_encoder"], models["detector"]
    scorer = AestheticScorer(models["aesthetic"], models["image_encoder"])
    the_intent = intent(KEEP_FACE, [(noise(40, 40, seed=9), FACE)])  # a textured reference
    reference = the_intent.references[0].crop()

    pasted = score([face(reference), face(reference, size=(80, 64))], the_intent, encoder=dino)
    unrelated = score([face(noise(40, 40, seed=s)) for s in (1, 2)], the_intent, encoder=dino)
    assert pasted.score == pytest.approx(1.0, abs=1e-5)
    assert unrelated.score < pasted.score - 0.01
    assert pasted.models["identity_encoder"] == "tiny-dino"

    pictures = [face(reference), noise(50, 70, seed=3)]
    real = stability_score(stability_set(pictures), the_intent, detector, dino, scorer,
                           settings=StabilitySettings(box_threshold=0.0, quality_weight=0.25))
    found = find_concepts(pictures, the_intent, the_intent.concepts, detector, 0.0)
    (concept,) = real.concepts
    assert [r.found for r in real.records] == [bool(f["face"]) for f in found]
    assert concept.detection_rate == sum(bool(f["face"]) for f in found) / 2 > 0
    similarities = [r.similarity or 0.0 for r in real.records]
    assert all(0.0 <= s <= 1.0 for s in similarities)
    assert concept.score == pytest.approx(sum(similarities) / 2, abs=1e-6)
    quality = [min(max((float(a) - 1) / 9, 0.0), 1.0) for a in scorer.score_images(pictures)]
    assert [r.quality for r in real.records] == pytest.approx(quality, abs=1e-6)
    assert real.score == pytest.approx(0.75 * concept.score + 0.25 * sum(quality) / 2, abs=1e-6)
    assert real.models["quality"].endswith(" on IntentTuner-Tiny-ViT")
