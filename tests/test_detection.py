"""ConceptDetect and RefFilter on tiny real models (and a scripted detector where the test is
about our bookkeeping, not about what a random network happens to see)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from intenttuner.detection.detect import DetectSettings, detect_concepts
from intenttuner.detection.preview import render_image, summary
from intenttuner.detection.queries import Target, build_queries
from intenttuner.detection.ref_filter import FilterSettings, filter_by_references
from intenttuner.detection.types import BoxMask, Detection, Detections, ImageDetections
from intenttuner.errors import InputError
from intenttuner.families import FAMILIES
from intenttuner.families.detector_model import RawDetection
from intenttuner.intent.parse import parse_intent
from intenttuner.loading import load_model
from intenttuner.tiny import TINY_BUILDERS

ANY = DetectSettings(box_threshold=0.0, text_threshold=0.0)  # random weights: take every box


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def tiny(models_root):
    """Tiny detector, SAM and image encoder, loaded through the registry."""
    models = {}
    for name in ("detector", "segmenter", "image_encoder"):
        family = FAMILIES[name]
        path = TINY_BUILDERS[name](models_root / family.folder)
        models[name] = load_model(name, path.relative_to(models_root / family.folder).as_posix())
    return models


class ScriptedDetector:
    """Answers detect() with given boxes per image and phrase, to test what we do with them."""

    def __init__(self, answers: list[list[tuple[str, tuple, float]]]):
        self.answers = answers
        self.phrases: list[str] = []

    def detect(self, images, phrases, *, box_threshold, text_threshold, batch_size):
        self.phrases = list(phrases)
        return [[RawDetection(box, score, self.phrases.index(phrase))
                 for phrase, box, score in answer] for answer in self.answers]


VINCENT = ("trigger: vin. Keep his face. He should switch between the leather jacket [1] and the "
           "striped jacket [2]. His expression should be changeable. Keep the soft lighting. "
           "Never a necklace.")


def vincent():
    refs = [Image.new("RGB", (60, 80), (120, 60, 20)), Image.new("RGB", (60, 80), (0, 0, 200))]
    return parse_intent(VINCENT, refs, '[{"image": 0, "box": [5, 5, 55, 75]}, '
                                       '{"image": 1, "box": [5, 5, 55, 75]}]')


def test_queries_cover_each_boxable_concept_once_and_values_separately():
    queries, skipped = build_queries(vincent())
    assert {q.phrase: q.targets for q in queries} == {
        "face": [Target("face"), Target("expression")],  # expression is seen on the face
        "leather jacket": [Target("jacket", "leather jacket")],
        "striped jacket": [Target("jacket", "striped jacket")],
        "necklace": [Target("necklace")],
    }
    assert skipped == ["soft lighting"]


def test_each_detection_goes_to_the_concepts_its_phrase_serves():
    detector = ScriptedDetector([[("striped jacket", (10, 10, 50, 60), 0.9),
                                  ("face", (20, 2, 40, 20), 0.8)]])
    result = detect_concepts([noise(64, 64)], vincent(), detector)

    assert detector.phrases == ["face", "leather jacket", "striped jacket", "necklace"]
    got = [(d.concept, d.value, d.phrase, d.box) for d in result.images[0].detections]
    assert got == [("jacket", "striped jacket", "striped jacket", (10, 10, 50, 60)),
                   ("face", None, "face", (20, 2, 40, 20)),
                   ("expression", None, "face", (20, 2, 40, 20))]


def test_duplicates_degenerate_boxes_and_never_found_concepts():
    detector = ScriptedDetector([
        [("face", (10, 10, 50, 50), 0.9), ("face", (11, 11, 50, 50), 0.8),  # same face twice
         ("necklace", (5, 5, 6, 40), 0.7),  # one pixel wide
         ("leather jacket", (0, 30, 64, 64), 0.6)],  # touches three borders
        [("face", (10, 10, 50, 50), 0.9)],
    ])
    result = detect_concepts([noise(64, 64), noise(64, 64, 1)], vincent(), detector)

    faces = [d for d in result.images[0].detections if d.concept == "face"]
    assert [d.score for d in faces] == [0.9]
    jacket = next(d for d in result.images[0].detections if d.concept == "jacket")
    assert jacket.touches_border and not faces[0].touches_border
    assert any("1 degenerate box" in w for w in result.warnings)
    assert any("'necklace' was not found in any of the 2 image(s)" in w and "'necklace'" in w
               for w in result.warnings)
    assert "face: 2 box(es) in 2/2 image(s)" in summary(result)


def test_intent_with_only_whole_image_qualities_detects_nothing_and_says_why():
    intent = parse_intent("trigger: s. Keep the painting style and the soft lighting.")
    result = detect_concepts([noise(32, 32)], intent, ScriptedDetector([[]]))
    assert result.images[0].detections == []
    assert "only whole-image qualities" in result.warnings[0]


def test_no_images_is_an_error():
    with pytest.raises(InputError, match="got no images"):
        detect_concepts([], vincent(), ScriptedDetector([]))


def test_boxes_map_back_to_original_pixels_of_resized_non_square_images(tiny):
    """The model sees every image at the same working size, so a 3x larger copy of an image
    must give the same boxes times 3, in its own pixels. The odd-shaped third image is batched
    apart from them (batches are formed by aspect ratio, to keep padding small)."""
    small = noise(96, 40, seed=3)
    large = small.resize((288, 120), Image.Resampling.NEAREST)
    intent = parse_intent("trigger: x. Keep the jacket.")  # one phrase: geometry only
    result = detect_concepts([small, large, noise(50, 130)], intent, tiny["detector"], None,
                             DetectSettings(box_threshold=0.0, text_threshold=0.0,
                                            max_per_phrase=50, batch_size=2))

    for entry in result.images:
        width, height = entry.size
        assert entry.detections
        for d in entry.detections:
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    small_boxes = np.array([d.box for d in result.images[0].detections]) * 3
    large_boxes = np.array([d.box for d in result.images[1].detections])
    # every small-image box has its twin in the large image, 3x, within 1% of the width (the
    # large image has more: slivers under 2 px in the small one are dropped as degenerate)
    distance = np.abs(small_boxes[:, None, :] - large_boxes[None, :, :]).max(axis=-1).min(axis=1)
    assert (distance < 0.01 * 288).all(), distance


def test_masks_lie_inside_their_boxes_in_original_image_pixels(tiny):
    images = [noise(120, 80), noise(60, 140, 2).convert("RGBA"), noise(40, 56).convert("L")]
    intent = parse_intent("trigger: x. Keep the jacket. Remove the hat.")
    result = detect_concepts(images, intent, tiny["detector"], tiny["segmenter"], ANY)

    assert sum(d.mask is not None and d.mask.area > 0
               for entry in result.images for d in entry.detections) > 0
    for entry in result.images:
        width, height = entry.size
        for d in entry.detections:
            mask = d.mask.decode(entry.size)
            assert mask.shape == (height, width)
            ys, xs = np.nonzero(mask)
            if len(xs):
                assert xs.min() >= int(d.box[0]) and xs.max() < np.ceil(d.box[2])
                assert ys.min() >= int(d.box[1]) and ys.max() < np.ceil(d.box[3])


def test_box_mask_round_trip():
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:20, 10:25] = True
    mask[0, 0] = True  # outside the box: not kept
    encoded = BoxMask.encode(mask, (8.5, 4.2, 30.0, 22.7))
    decoded = encoded.decode((40, 30))
    assert encoded.region == (8, 4, 30, 23)
    assert np.array_equal(decoded, mask & _box_region((40, 30), (8, 4, 30, 23)))
    assert encoded.area == 15 * 15
    full = BoxMask.encode(np.ones((4, 4), dtype=bool), (0, 0, 4, 4))
    assert full.counts == [0, 16] and full.decode((4, 4)).all()


@pytest.mark.parametrize(("region", "counts"), [
    ((0, 0, 4, 4), [3, 3]),  # covers 6 of 16 pixels
    ((4, 0, 2, 4), [0]),  # x1 < x0
    ((0, 0, 2, 2), [5, -1]),  # negative run
])
def test_inconsistent_masks_are_refused(region, counts):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        BoxMask(region=region, counts=counts)


def _box_region(size, region):
    out = np.zeros((size[1], size[0]), dtype=bool)
    out[region[1]:region[3], region[0]:region[2]] = True
    return out


def filter_setup(tiny):
    """An image holding the reference crop itself plus unrelated texture, and detections of
    both, as ConceptDetect would have produced them."""
    reference = noise(40, 30, seed=7)
    intent = parse_intent("trigger: x. Keep the patch [1]. Remove the hat.", [reference],
                          "[[0, 0, 40, 30]]")
    scene = Image.new("RGB", (200, 100), (128, 128, 128))
    scene.paste(reference, (20, 50))
    scene.paste(Image.new("RGB", (50, 40), (250, 240, 10)), (120, 10))
    boxes = {"same": (20, 50, 60, 80), "other": (120, 10, 170, 50), "hat": (0, 0, 15, 15)}
    detections = Detections(
        images=[ImageDetections(index=0, size=scene.size, detections=[
            Detection(concept="patch", phrase="patch", box=boxes["same"], score=0.5),
            Detection(concept="patch", phrase="patch", box=boxes["other"], score=0.9),
            Detection(concept="hat", phrase="hat", box=boxes["hat"], score=0.4)])],
        queries={"patch": ["patch"], "hat": ["hat"]}, box_threshold=0.35, text_threshold=0.25)
    return scene, detections, intent


def test_filter_keeps_the_reference_itself_and_drops_unrelated_crops(tiny):
    scene, detections, intent = filter_setup(tiny)
    result = filter_by_references([scene], detections, intent, tiny["image_encoder"],
                                  FilterSettings(threshold=0.99))

    same, other, hat = result.images[0].detections
    assert same.similarity == pytest.approx(1.0, abs=1e-4) and same.kept
    assert other.similarity < 0.99 and not other.kept
    assert other.reason.startswith("similarity")
    assert hat.kept and hat.similarity is None  # no references: passes through
    assert [d.concept for d in result.kept(0)] == ["patch", "hat"]
    assert detections.images[0].detections[1].kept  # the input is not modified
    assert "1 box(es) dropped by the filter" in summary(result)


def test_top_k_keeps_the_best_match_per_image(tiny):
    scene, detections, intent = filter_setup(tiny)
    result = filter_by_references([scene], detections, intent, tiny["image_encoder"],
                                  FilterSettings(threshold=-1.0, top_k=1))
    assert [(d.concept, d.kept) for d in result.images[0].detections] == [
        ("patch", True), ("patch", False), ("hat", True)]
    assert "most similar" in result.images[0].detections[1].reason


def test_reference_crops_are_embedded_once_per_intent_and_encoder(tiny, monkeypatch):
    scene, detections, intent = filter_setup(tiny)
    encoder = tiny["image_encoder"]
    calls = []
    original = encoder.embed_images
    monkeypatch.setattr(encoder, "embed_images",
                        lambda images, batch_size=32: calls.append(len(images))
                        or original(images, batch_size=batch_size))
    for _ in range(3):
        filter_by_references([scene], detections, intent, encoder)
    assert calls == [1, 2, 2, 2]  # the reference once, then the two patch crops per run


def test_filter_reports_concepts_whose_detections_all_fail_and_tiny_references(tiny):
    reference = noise(10, 12, seed=1)
    intent = parse_intent("trigger: x. Keep the patch [1].", [reference], "[[0, 0, 10, 12]]")
    scene = Image.new("RGB", (64, 64), (250, 250, 0))
    detections = Detections(
        images=[ImageDetections(index=0, size=(64, 64), detections=[
            Detection(concept="patch", phrase="patch", box=(0, 0, 30, 30), score=0.5)])],
        queries={"patch": ["patch"]}, box_threshold=0.3, text_threshold=0.2)
    result = filter_by_references([scene], detections, intent, tiny["image_encoder"],
                                  FilterSettings(threshold=0.999))
    assert any("Reference [1] is only 10x12 px" in w for w in result.warnings)
    assert any("None of the 1 detection(s) of 'patch' look like" in w for w in result.warnings)


def test_filter_refuses_other_images_and_intents_without_crops(tiny):
    scene, detections, intent = filter_setup(tiny)
    with pytest.raises(InputError, match="not the images the detections were made on"):
        filter_by_references([scene, scene], detections, intent, tiny["image_encoder"])
    without = type(intent).from_json(intent.to_json(with_crops=False))
    with pytest.raises(InputError, match=r"no crops for reference box\(es\) \[1\]"):
        filter_by_references([scene], detections, without, tiny["image_encoder"])


def test_preview_draws_kept_and_dropped_boxes_at_display_size(tiny):
    scene, detections, intent = filter_setup(tiny)
    result = filter_by_references([scene.resize((2000, 1000))], _scaled(detections, 10),
                                  intent, tiny["image_encoder"], FilterSettings(threshold=0.99))
    preview = render_image(scene.resize((2000, 1000)), result.images[0].detections)
    assert preview.size == (768, 384)
    pixels = np.asarray(preview)
    assert (pixels == (230, 40, 40)).all(axis=-1).any()  # a dropped (red) box is drawn


def _scaled(detections: Detections, factor: int) -> Detections:
    out = detections.model_copy(deep=True)
    out.images[0].size = (out.images[0].size[0] * factor, out.images[0].size[1] * factor)
    for d in out.images[0].detections:
        d.box = tuple(v * factor for v in d.box)
    return out


def test_value_without_boxes_is_not_judged_against_another_values_box(tiny):
    leather = noise(40, 30, seed=7)
    intent = parse_intent("trigger: x. He should switch between the leather jacket [1] and a "
                          "denim jacket.", [leather], "[[0, 0, 40, 30]]")
    scene = Image.new("RGB", (200, 100), (20, 40, 160))
    scene.paste(leather, (10, 10))
    detections = Detections(
        images=[ImageDetections(index=0, size=scene.size, detections=[
            Detection(concept="jacket", value="leather jacket", phrase="leather jacket",
                      box=(10, 10, 50, 40), score=0.6),
            Detection(concept="jacket", value="denim jacket", phrase="denim jacket",
                      box=(100, 20, 190, 90), score=0.7)])],
        queries={"leather jacket": ["jacket"], "denim jacket": ["jacket"]},
        box_threshold=0.35, text_threshold=0.25)

    result = filter_by_references([scene], detections, intent, tiny["image_encoder"],
                                  FilterSettings(threshold=0.99))

    leather_det, denim_det = result.images[0].detections
    assert leather_det.kept and leather_det.similarity == pytest.approx(1.0, abs=1e-4)
    assert denim_det.kept and denim_det.similarity is None
    assert not [w for w in result.warnings if "look like" in w]
