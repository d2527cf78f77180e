"""IntentCrop's planning rules on hand-built intents and detections: which crops are made, where
they are cut, and why the others are not. Expected regions are worked out by hand from the
stated policies (margin per side as a fraction of the box, widening to a trainer ratio, moving
inside the image), not read back from the implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from intenttuner.augment.plan import CropSettings, plan_crops
from intenttuner.augment.regions import ASPECT_RATIOS, crop_region
from intenttuner.augment.render import render_items
from intenttuner.augment.types import ORIGINAL_GROUP, Augmented, crop_group
from intenttuner.detection.types import Detection, Detections, ImageDetections
from intenttuner.errors import InputError
from intenttuner.intent.schema import Concept, ConceptValue, Intent

SMALL = CropSettings(min_size=16)  # geometry tests: no crop is too small
FREE = CropSettings(min_size=16, aspect="free")


def concept(name: str, operation: str, granularity: str = "instance", phrase: str | None = None,
            values: tuple[str, ...] = ()) -> Concept:
    return Concept(name=name, phrase=phrase or name, granularity=granularity,
                   operation=operation, values=[ConceptValue(text=v) for v in values])


def make_intent(*concepts: Concept) -> Intent:
    return Intent(description="test", trigger_words=["vin"], domain="portrait",
                  concepts=list(concepts))


def det(name: str, box, score: float = 0.9, **kw) -> Detection:
    return Detection(concept=name, phrase=kw.pop("phrase", name), box=box, score=score, **kw)


def make_detections(intent: Intent, sizes, per_image) -> Detections:
    queries: dict[str, list[str]] = {}
    for c in intent.concepts:
        if c.granularity.value != "imagery":
            queries.setdefault(c.phrase, []).append(c.name)
    return Detections(images=[ImageDetections(index=i, size=s, detections=d)
                              for i, (s, d) in enumerate(zip(sizes, per_image, strict=True))],
                      queries=queries, box_threshold=0.3, text_threshold=0.25)


def plan_one(intent: Intent, size, found, settings=SMALL, names=None):
    return plan_crops(intent, make_detections(intent, [size], [found]), [size], names, settings)


def crops(plan):
    return [i for i in plan.items if i.operation != "original"]


FACE = make_intent(concept("face", "keep"))
HAIR = make_intent(concept("hair", "modify", "attribute"))


# --- margin and aspect -------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [0.0, 0.1, 0.25, 0.5])
def test_margin_adds_its_share_of_the_box_on_each_side_exactly(margin):
    box = (200, 300, 300, 380)  # 100 x 80
    plan = plan_one(FACE, (1000, 1000), [det("face", box)],
                    CropSettings(margin=margin, aspect="free", min_size=16))
    (item,) = crops(plan)
    dx, dy = 100 * margin, 80 * margin
    assert item.region == (round(200 - dx), round(300 - dy), round(300 + dx), round(380 + dy))
    assert item.out_size == (item.region[2] - item.region[0], item.region[3] - item.region[1])
    assert item.resample == "none"


@pytest.mark.parametrize(("box_size", "ratio"), [
    ((100, 80), "4:3"),  # 150x120 (1.25): 4:3 (log distance 0.06) beats 1:1 (0.22)
    ((100, 100), "1:1"),
    ((90, 100), "1:1"),  # 0.9: 1:1 (0.11) beats 3:4 (0.18)
    ((60, 100), "2:3"),  # 0.6: 2:3 (0.11) beats 3:4 (0.22)
    ((200, 100), "3:2"),  # 2.0: nothing wider is offered
    ((100, 130), "3:4"),
])
def test_nearest_aspect_widens_the_shorter_side_to_a_trainer_ratio(box_size, ratio):
    w, h = box_size
    box = (500 - w / 2, 500 - h / 2, 500 + w / 2, 500 + h / 2)
    (item,) = crops(plan_one(FACE, (1000, 1000), [det("face", box)]))
    x0, y0, x1, y1 = item.region
    assert abs((x1 - x0) / (y1 - y0) - ASPECT_RATIOS[ratio]) < 0.02
    # only widened: box + the full 0.25 margin is still inside
    assert x0 <= box[0] - 0.25 * w + 0.5 and x1 >= box[2] + 0.25 * w - 0.5
    assert y0 <= box[1] - 0.25 * h + 0.5 and y1 >= box[3] + 0.25 * h - 0.5
    # ...by the least widening: one side is exactly box + margin
    assert math.isclose(x1 - x0, 1.5 * w, abs_tol=1) or math.isclose(y1 - y0, 1.5 * h, abs_tol=1)


def test_square_aspect_makes_every_crop_square():
    plan = plan_one(FACE, (1000, 1000), [det("face", (100, 100, 300, 180))],
                    CropSettings(aspect="square", min_size=16))
    x0, y0, x1, y1 = crops(plan)[0].region
    assert x1 - x0 == y1 - y0 == 300  # 200 + 2 * 50 wide, the height widened to match


@pytest.mark.parametrize("box", [(0, 0, 80, 100), (920, 0, 1000, 100), (0, 700, 80, 800),
                                 (920, 700, 1000, 800), (460, 0, 540, 100), (0, 350, 80, 450)])
def test_edge_boxes_are_moved_inside_the_image_not_padded_or_shrunk(box):
    central = crops(plan_one(FACE, (1000, 800), [det("face", (460, 350, 540, 450))]))[0]
    (item,) = crops(plan_one(FACE, (1000, 800), [det("face", box, touches_border=True)]))
    x0, y0, x1, y1 = item.region
    assert 0 <= x0 and 0 <= y0 and x1 <= 1000 and y1 <= 800
    assert x0 <= box[0] and y0 <= box[1] and x1 >= box[2] and y1 >= box[3]
    assert (x1 - x0, y1 - y0) == (central.region[2] - central.region[0],
                                  central.region[3] - central.region[1])
    assert any("touches the image edge" in n for n in item.notes)
    assert any("to stay inside the image" in n for n in item.notes)


@pytest.mark.parametrize("aspect", ["nearest", "square", "free"])
def test_regions_always_lie_inside_the_image_and_hold_the_whole_box(aspect):
    rng = np.random.default_rng(7)
    for _ in range(400):
        size = (int(rng.integers(20, 3000)), int(rng.integers(20, 3000)))
        x = np.sort(rng.uniform(-20, size[0] + 20, 2))
        y = np.sort(rng.uniform(-20, size[1] + 20, 2))
        if min(x[1], size[0]) - max(x[0], 0) < 1 or min(y[1], size[1]) - max(y[0], 0) < 1:
            continue
        box = (float(x[0]), float(y[0]), float(x[1]), float(y[1]))
        fit = crop_region(box, size, float(rng.uniform(0, 1)), aspect)
        x0, y0, x1, y1 = fit.region
        assert all(isinstance(v, int) for v in fit.region)
        assert 0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1], (box, size, fit)
        assert x0 <= max(0, box[0]) + 1e-9 and x1 >= min(size[0], box[2]) - 1e-9, (box, fit)
        assert y0 <= max(0, box[1]) + 1e-9 and y1 >= min(size[1], box[3]) - 1e-9, (box, fit)
        if aspect != "free" and not fit.no_ratio_fits:
            assert abs(math.log((x1 - x0) / (y1 - y0) / ASPECT_RATIOS[fit.aspect])) < 0.1 \
                or min(x1 - x0, y1 - y0) < 12  # a few pixels: rounding dominates


def test_a_box_too_long_for_any_ratio_gets_a_free_region_and_a_note():
    (item,) = crops(plan_one(FACE, (1000, 100), [det("face", (10, 10, 990, 90))]))
    assert item.region == (0, 0, 1000, 100)
    assert any("free aspect" in n for n in item.notes)


# --- which crops are made ----------------------------------------------------------------------


@pytest.mark.parametrize(("share", "modify_area", "cropped"), [
    (0.39, 0.40, True), (0.41, 0.40, False), (0.41, 0.50, True), (0.39, 0.30, False)])
def test_modify_crop_only_below_the_area_threshold(share, modify_area, cropped):
    box = (0, 0, 1000 * share, 1000)  # share of a 1000 x 1000 image
    plan = plan_one(HAIR, (1000, 1000), [det("hair", box)],
                    CropSettings(min_size=16, modify_area=modify_area))
    assert len(crops(plan)) == int(cropped)
    if not cropped:
        assert plan.skipped == [f"image_0: hair (modify) not cropped: already salient, its box "
                                f"covers {share:.1%} of the image (a modify crop needs less "
                                f"than modify_area {modify_area:.0%})"]


def test_keep_is_cropped_however_large_it_is():
    (item,) = crops(plan_one(FACE, (1000, 1000), [det("face", (10, 10, 990, 990))]))
    assert item.operation == "keep" and item.region == (0, 0, 1000, 1000)
    assert any("margin reduced" in n for n in item.notes)


def test_delete_and_imagery_concepts_get_no_crop_and_say_why():
    intent = make_intent(concept("face", "keep"), concept("necklace", "delete"),
                         concept("lighting", "keep", "imagery"))
    plan = plan_one(intent, (800, 800), [det("face", (300, 100, 500, 300)),
                                         det("necklace", (350, 320, 450, 400))])
    assert [(i.operation, i.concept) for i in plan.items] == [("original", None), ("keep", "face")]
    assert any(s.startswith("necklace (delete): no crop") for s in plan.skipped)
    assert any(s.startswith("lighting (keep, imagery)") for s in plan.skipped)
    assert not plan.warnings


def test_a_concept_never_detected_is_named_in_a_warning():
    intent = make_intent(concept("face", "keep"), concept("hair", "modify", "attribute"))
    plan = plan_one(intent, (800, 800), [det("face", (300, 100, 500, 300))])
    assert len(plan.warnings) == 1 and "'hair' (modify) has no detection" in plan.warnings[0]


def test_detections_a_filter_dropped_are_not_cropped():
    plan = plan_one(FACE, (800, 800), [det("face", (300, 100, 500, 300), kept=False,
                                           reason="similarity 0.1 < 0.5")])
    assert crops(plan) == [] and "'face' (keep) has no detection" in plan.warnings[0]


@pytest.mark.parametrize(("side", "policy", "limit", "made"), [
    (128, "upscale", 2.0, True),  # 2.00x: at the limit
    (127, "upscale", 2.0, False),  # 2.02x: beyond it
    (127, "upscale", 2.1, True),
    (200, "skip", 2.0, False),
    (256, "skip", 2.0, True),  # exactly the minimum needs nothing
])
def test_small_crops_are_upscaled_within_the_limit_or_skipped_with_the_reason(side, policy,
                                                                               limit, made):
    settings = CropSettings(margin=0.0, aspect="free", min_size=256, small_crops=policy,
                            max_upscale=limit)
    plan = plan_one(FACE, (1000, 1000), [det("face", (100, 100, 100 + side, 100 + 2 * side))],
                    settings)
    assert len(crops(plan)) == int(made)
    if made:
        item = crops(plan)[0]
        assert item.out_size == (256, 512)
        assert item.resample == ("none" if side == 256 else "lanczos")
        if side < 256:
            assert f"upscaled {256 / side:.2f}x (lanczos) from {side}x{2 * side}" in item.notes[0]
    else:
        reason = "more than max_upscale" if policy == "upscale" else "small_crops is 'skip'"
        assert reason in plan.skipped[0] and f"{side}x{2 * side} px" in plan.skipped[0]
        assert "every crop of it was skipped" in plan.warnings[0]


def test_best_matching_box_is_cropped_first_and_the_limit_is_reported():
    boxes = [det("face", (0, 0, 100, 100), score=0.9, similarity=0.2),
             det("face", (400, 400, 500, 500), score=0.5, similarity=0.8)]
    plan = plan_one(FACE, (1000, 1000), boxes)
    assert [i.box for i in crops(plan)] == [(400, 400, 500, 500)]
    assert "1 more face (keep) box(es) not cropped" in plan.skipped[0]
    unlimited = plan_one(FACE, (1000, 1000), boxes,
                         CropSettings(min_size=16, max_crops_per_concept_per_image=0))
    assert len(crops(unlimited)) == 2


# --- de-duplication and overlaps ---------------------------------------------------------------


def test_the_same_face_under_two_concepts_is_one_keep_crop():
    intent = make_intent(concept("face", "keep"),
                         concept("expression", "modify", "attribute", phrase="face"))
    box = (300, 100, 500, 300)
    plan = plan_one(intent, (1000, 1000), [det("expression", box, phrase="face"),
                                           det("face", box)])
    (item,) = crops(plan)
    assert (item.concept, item.operation) == ("face", "keep")
    assert any("expression (modify)" in n and "keep crop wins" in n for n in item.notes)
    assert any("expression (modify) crop merged into the face (keep) crop" in s
               for s in plan.skipped)
    assert not plan.warnings  # expression was cropped, inside the face crop


@pytest.mark.parametrize(("threshold", "count"), [(0.85, 1), (0.99, 2)])
def test_near_identical_crops_of_two_keep_concepts_collapse_to_the_larger(threshold, count):
    intent = make_intent(concept("face", "keep"), concept("head", "keep"))
    found = [det("face", (300, 100, 500, 300)), det("head", (296, 96, 504, 304))]
    plan = plan_one(intent, (1000, 1000), found,
                    CropSettings(min_size=16, aspect="free", dedupe_iou=threshold))
    assert len(crops(plan)) == count
    if count == 1:
        assert crops(plan)[0].concept == "head"
        assert "the larger region is kept" in crops(plan)[0].notes[0]


def test_partly_overlapping_crops_of_different_operations_are_both_made_and_noted():
    intent = make_intent(concept("face", "keep"), concept("hair", "modify", "attribute"))
    plan = plan_one(intent, (1000, 1000), [det("face", (400, 300, 600, 500)),
                                           det("hair", (380, 220, 620, 360))])
    face, hair = crops(plan)
    assert (face.concept, hair.concept) == ("face", "hair")
    assert any("also shows hair (modify)" in n and "keep crop of face" in n for n in face.notes)


def test_a_delete_concept_inside_a_keep_crop_is_noted_and_a_large_intrusion_warned():
    intent = make_intent(concept("face", "keep"), concept("necklace", "delete"))
    plan = plan_one(intent, (1000, 1000), [det("face", (400, 300, 600, 500)),
                                           det("necklace", (400, 420, 600, 560))])
    (face,) = crops(plan)
    assert any("necklace (delete)" in n and "delete wins" in n for n in face.notes)
    assert len(plan.warnings) == 1 and "covers 40% of the face (keep) box" in plan.warnings[0]


# --- provenance, inputs, rendering -------------------------------------------------------------


def test_items_carry_their_provenance_and_every_source_has_its_original():
    intent = make_intent(concept("face", "keep"),
                         concept("jacket", "modify", values=("leather jacket", "striped jacket")))
    sizes = [(640, 480), (300, 500)]
    found = [[det("face", (200, 40, 300, 160), score=0.7)],
             [det("jacket", (50, 300, 150, 420), value="striped jacket", phrase="striped jacket")]]
    plan = plan_crops(intent, make_detections(intent, sizes, found), sizes,
                      ["shoot/a.jpg", "b.png"], SMALL)
    got = [(i.source_index, i.source_name, i.operation, i.concept, i.value, i.group, i.box)
           for i in plan.items]
    assert got == [
        (0, "shoot/a.jpg", "original", None, None, ORIGINAL_GROUP, None),
        (0, "shoot/a.jpg", "keep", "face", None, "face", (200, 40, 300, 160)),
        (1, "b.png", "original", None, None, ORIGINAL_GROUP, None),
        (1, "b.png", "modify", "jacket", "striped jacket", "jacket", (50, 300, 150, 420)),
    ]
    assert plan.items[0].region == (0, 0, 640, 480) and plan.items[2].out_size == (300, 500)
    assert plan.settings["modify_area"] == 0.40
    assert plan_crops(intent, make_detections(intent, sizes, found), sizes).items[2].source_name \
        == "image_1"


def test_crops_of_a_concept_named_original_never_join_the_originals_group():
    intent = make_intent(concept("original", "keep", phrase="original painting"),
                         concept("original_crop", "keep", phrase="frame"),
                         concept("face", "keep"))
    size = (640, 480)
    found = [det("original", (100, 100, 300, 300)), det("original_crop", (350, 50, 600, 200)),
             det("face", (380, 250, 480, 400))]
    plan = plan_one(intent, size, found)
    groups = {i.concept: i.group for i in crops(plan)}
    assert set(groups) == {"original", "original_crop", "face"}
    assert groups["face"] == "face" and groups["original_crop"] == "original_crop"
    assert groups["original"] not in (ORIGINAL_GROUP, "original_crop", "face")
    assert [i.group for i in plan.items].count(ORIGINAL_GROUP) == 1  # the original alone
    assert crop_group("original") == "original_crop"


def test_rendered_items_have_their_planned_size_and_show_their_region():
    rng = np.random.default_rng(0)
    sources = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
               for w, h in [(640, 480), (200, 150)]]
    found = [[det("face", (200, 40, 300, 160))], [det("face", (20, 20, 120, 120))]]
    sizes = [s.size for s in sources]
    plan = plan_crops(FACE, make_detections(FACE, sizes, found), sizes)
    assert any(i.resample == "lanczos" for i in plan.items)  # the 150 px crop is upscaled
    rendered = render_items(Augmented(plan=plan, sources=sources))
    for item, image in zip(plan.items, rendered, strict=True):
        assert image.size == item.out_size
        if item.resample == "none":
            np.testing.assert_array_equal(
                np.asarray(image), np.asarray(sources[item.source_index])[
                    item.region[1]:item.region[3], item.region[0]:item.region[2]])


def test_images_other_than_the_detected_ones_and_bad_names_are_refused():
    detections = make_detections(FACE, [(100, 100)], [[]])
    with pytest.raises(InputError, match="not the images the detections were made on"):
        plan_crops(FACE, detections, [(100, 120)])
    with pytest.raises(InputError, match="names has 2 entries for 1 images"):
        plan_crops(FACE, detections, [(100, 100)], ["a", "b"])


def test_detections_of_another_intent_are_warned_about():
    detections = make_detections(make_intent(concept("hat", "keep")), [(100, 100)],
                                 [[det("hat", (10, 10, 50, 50))]])
    plan = plan_crops(FACE, detections, [(100, 100)], settings=SMALL)
    assert crops(plan) == []
    assert any("concept(s) hat that this intent does not have" in w for w in plan.warnings)
    assert any("did not look for face" in w for w in plan.warnings)


@pytest.mark.parametrize(("field", "value"), [("margin", -0.1), ("aspect", "16:9"),
                                              ("min_size", 4), ("small_crops", "pad"),
                                              ("upscale_method", "nearest"), ("max_upscale", 0.5),
                                              ("modify_area", 0.0), ("dedupe_iou", 1.5),
                                              ("max_crops_per_concept_per_image", -1)])
def test_bad_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(InputError, match=f"{field} must"):
        CropSettings(**{field: value})


def test_planning_a_few_hundred_images_plans_every_crop():
    """300 images, two concepts each: every original and both crops are planned (how fast is
    bench/augment_crops.py's job; speed targets live in benchmarks, not tests)."""
    intent = make_intent(concept("face", "keep"), concept("hair", "modify", "attribute"))
    sizes = [(1024, 768)] * 300
    found = [[det("face", (400, 100, 600, 350)), det("hair", (380, 60, 620, 200))]] * 300
    detections = make_detections(intent, sizes, found)
    plan = plan_crops(intent, detections, sizes)
    assert len(plan.items) == 900
