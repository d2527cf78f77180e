"""Delete masks: SAM mask or box, dilation by exactly the stated amount, union, coverage
warnings, the overlap rules with keep/modify concepts, and concepts never detected."""

from __future__ import annotations

import numpy as np
import pytest

from intenttuner.augment.masks import MaskSettings, box_mask, delete_masks, dilate
from intenttuner.detection.types import BoxMask, Detection, Detections, ImageDetections
from intenttuner.errors import InputError
from intenttuner.intent.schema import Intent

SIZE = (120, 90)  # (width, height) of every test image


def intent(**operations: str) -> Intent:
    """An intent whose concepts are ``name=operation``."""
    return Intent(description="test", trigger_words=["vincent"], domain="portrait", concepts=[
        {"name": n, "phrase": n, "granularity": "instance", "operation": op}
        for n, op in operations.items()])


def disc(centre: tuple[int, int], radius: float, size=SIZE) -> np.ndarray:
    ys, xs = np.mgrid[:size[1], :size[0]]
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius ** 2


def det(concept: str, box, mask: np.ndarray | None = None, kept: bool = True) -> Detection:
    return Detection(concept=concept, phrase=concept, box=box, score=0.9, kept=kept,
                     mask=BoxMask.encode(mask, box) if mask is not None else None)


def detections(*per_image: list[Detection]) -> Detections:
    return Detections(images=[ImageDetections(index=i, size=SIZE, detections=list(d))
                              for i, d in enumerate(per_image)],
                      box_threshold=0.3, text_threshold=0.25)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def distance_to_box(box, size=SIZE) -> np.ndarray:
    ys, xs = np.mgrid[:size[1], :size[0]]
    dx = np.maximum(np.maximum(box[0] - xs, 0), xs - (box[2] - 1))
    dy = np.maximum(np.maximum(box[1] - ys, 0), ys - (box[3] - 1))
    return np.hypot(dx, dy)


@pytest.mark.parametrize(("dilate_px", "frac", "box", "radius"), [
    (5, 0.0, (30, 20, 60, 40), 5),
    (0, 0.1, (30, 20, 80, 40), 5),  # 10 % of the 50 px longer side
    (8, 0.02, (10, 10, 110, 60), 10),  # the defaults on a 100 px box: 8 + 2
    (0, 0.0, (30, 20, 60, 40), 0),
])
def test_box_is_dilated_by_exactly_the_stated_radius(dilate_px, frac, box, radius):
    settings = MaskSettings(dilate_px=dilate_px, dilate_frac=frac)
    assert settings.radius(box) == radius
    result = delete_masks(detections([det("hat", box)]), intent(hat="delete"), settings)
    mask = result.images[0].mask

    assert bbox(mask) == (box[0] - radius, box[1] - radius, box[2] + radius, box[3] + radius)
    distance = distance_to_box(box)
    assert mask[distance <= radius - 1].all()  # a disc, not a square: within the radius ...
    assert not mask[distance > radius + 0.5].any()  # ... and nothing beyond it
    if radius >= 3:  # the corners are rounded: the square's corner pixel stays out
        assert not mask[box[1] - radius, box[0] - radius]


def test_dilation_is_clipped_at_the_image_border():
    mask = dilate(box_mask((0, 0, 10, 10), SIZE), 6)
    assert bbox(mask) == (0, 0, 16, 16)


def test_sam_mask_is_used_instead_of_its_box():
    sam = disc((60, 45), 15)
    box = (45, 30, 76, 61)
    result = delete_masks(detections([det("hat", box, sam)]), intent(hat="delete"),
                          MaskSettings(dilate_px=3, dilate_frac=0))
    mask = result.images[0].mask
    # the disc grown by 3 px: everything within 15 + 2 px of its centre, nothing beyond 15 + 3.5
    assert mask[disc((60, 45), 17)].all() and not mask[~disc((60, 45), 18.5)].any()
    assert not mask[31, 46]  # the box corner is not part of a round object's mask


def test_empty_sam_mask_falls_back_to_the_box_and_says_so():
    box = (40, 30, 70, 50)
    empty = np.zeros((SIZE[1], SIZE[0]), dtype=bool)
    result = delete_masks(detections([det("hat", box, empty)]), intent(hat="delete"),
                          MaskSettings(dilate_px=0, dilate_frac=0))
    np.testing.assert_array_equal(result.images[0].mask, box_mask(box, SIZE))
    assert "SAM mask is empty" in result.images[0].notes[0]


def test_union_over_detections_and_concepts_with_a_mask_per_concept():
    found = detections([det("hat", (5, 5, 20, 20)), det("hat", (90, 5, 110, 20)),
                        det("logo", (50, 60, 70, 80), disc((60, 70), 8))])
    settings = MaskSettings(dilate_px=2, dilate_frac=0)
    image = delete_masks(found, intent(hat="delete", logo="delete", face="keep"),
                         settings).images[0]

    assert sorted(image.concepts) == ["hat", "logo"]
    np.testing.assert_array_equal(image.mask, image.concepts["hat"] | image.concepts["logo"])
    assert image.concepts["hat"][12, 12] and image.concepts["hat"][12, 100]
    assert image.concepts["logo"][70, 60] and not image.concepts["hat"][70, 60]


def test_only_kept_detections_of_delete_concepts_count():
    found = detections([det("hat", (5, 5, 20, 20), kept=False), det("face", (40, 40, 60, 60)),
                        det("jacket", (70, 40, 100, 80))])
    image = delete_masks(found, intent(hat="delete", face="keep", jacket="modify")).images[0]
    assert not image.mask.any() and image.concepts == {}


def test_a_mask_covering_most_of_the_image_is_warned_about_and_kept():
    found = detections([det("hat", (0, 0, 100, 80))], [det("hat", (0, 0, 20, 20))])
    result = delete_masks(found, intent(hat="delete"), names=["big.jpg", "small.jpg"])
    big, small = result.images
    assert big.coverage > 0.8 and big.mask.any()
    assert len(big.warnings) == 1 and big.warnings[0].startswith("big.jpg:")
    assert f"{big.coverage:.0%}" in big.warnings[0]
    assert small.warnings == []
    assert result.all_warnings() == big.warnings


def test_a_mask_covering_the_whole_image_gets_its_own_warning():
    # the box stops 4 px short of the edges; the 8 px dilation takes the rest
    found = detections([det("hat", (4, 4, SIZE[0] - 4, SIZE[1] - 4))], [det("hat", (0, 0, 80, 80))])
    result = delete_masks(found, intent(hat="delete"), names=["all.jpg", "most.jpg"])
    whole, most = result.images
    assert whole.mask.all() and not most.mask.all() and most.coverage > 0.5
    assert len(whole.warnings) == 1 and whole.warnings[0].startswith("all.jpg:")
    assert "nothing left to fill from" in whole.warnings[0]
    assert "lower the dilation" in whole.warnings[0]
    assert len(most.warnings) == 1 and "nothing left" not in most.warnings[0]


def test_delete_sam_mask_wins_over_a_kept_concept_and_the_overlap_is_reported():
    necklace = disc((60, 60), 10)
    face = disc((60, 40), 16)  # overlaps the necklace's top
    found = detections([det("necklace", (50, 50, 71, 71), necklace),
                        det("face", (44, 24, 77, 57), face)])
    image = delete_masks(found, intent(necklace="delete", face="keep"),
                         MaskSettings(dilate_px=2, dilate_frac=0)).images[0]
    overlap = dilate(necklace, 2) & face
    assert overlap.any() and image.mask[overlap].all()
    assert any("removes" in n and "face (keep)" in n and f"{overlap.sum()} px" in n
               for n in image.notes)


def test_delete_box_gives_way_to_a_kept_sam_mask_at_its_edge():
    face = disc((40, 45), 20)
    box = (50, 30, 90, 60)  # the logo's box reaches into the face on its left
    found = detections([det("logo", box), det("face", (20, 25, 61, 66), face)])
    image = delete_masks(found, intent(logo="delete", face="keep"),
                         MaskSettings(dilate_px=0, dilate_frac=0)).images[0]
    expected = box_mask(box, SIZE) & ~face
    np.testing.assert_array_equal(image.mask, expected)
    assert any("protected" in n and "face (keep)" in n for n in image.notes)


def test_delete_box_lying_on_a_kept_concept_is_removed_whole():
    body = np.zeros((SIZE[1], SIZE[0]), dtype=bool)
    body[10:90, 20:100] = True  # the whole person
    box = (50, 30, 70, 45)  # a necklace on them
    found = detections([det("necklace", box), det("body", (20, 10, 100, 90), body)])
    image = delete_masks(found, intent(necklace="delete", body="keep"),
                         MaskSettings(dilate_px=0, dilate_frac=0)).images[0]
    np.testing.assert_array_equal(image.mask, box_mask(box, SIZE))
    assert any("lies on body (keep)" in n for n in image.notes)


def test_delete_box_wins_over_a_protected_concept_known_only_by_its_box():
    box = (50, 30, 70, 45)
    found = detections([det("necklace", box), det("jacket", (40, 35, 100, 90))])
    image = delete_masks(found, intent(necklace="delete", jacket="modify"),
                         MaskSettings(dilate_px=0, dilate_frac=0)).images[0]
    np.testing.assert_array_equal(image.mask, box_mask(box, SIZE))
    assert any("box of jacket (modify)" in n and "delete wins" in n for n in image.notes)


def test_concepts_never_detected_or_all_filtered_are_warned_about():
    found = detections([det("hat", (5, 5, 20, 20), kept=False)], [])
    result = delete_masks(found, intent(hat="delete", necklace="delete", face="keep"))
    assert len(result.warnings) == 2
    assert "'hat'" in result.warnings[0] and "dropped by a filter" in result.warnings[0]
    assert "'necklace' was not found in any image" in result.warnings[1]
    assert not any(image.mask.any() for image in result.images)


def test_whole_image_delete_concepts_are_said_to_be_left_to_the_captions():
    imagery = Intent(description="test", trigger_words=["vincent"], domain="portrait", concepts=[
        {"name": "harsh lighting", "phrase": "harsh lighting", "granularity": "imagery",
         "operation": "delete"},
        {"name": "hat", "phrase": "hat", "granularity": "instance", "operation": "delete"}])
    result = delete_masks(detections([]), imagery)
    lighting, hat = result.warnings
    assert "'harsh lighting' is a whole-image quality" in lighting and "captions" in lighting
    assert "not found" not in lighting and "thresholds" not in lighting
    assert "'hat' was not found in any image" in hat


def test_intent_without_delete_concepts_passes_images_through():
    result = delete_masks(detections([det("face", (5, 5, 20, 20))]), intent(face="keep"))
    assert "no delete concepts" in result.warnings[0]
    assert not result.images[0].mask.any()


def test_box_outside_the_image_is_skipped_with_a_note():
    result = delete_masks(detections([det("hat", (200, 200, 240, 240))]), intent(hat="delete"))
    assert not result.images[0].mask.any()
    assert "outside the image" in result.images[0].notes[0]


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="dilation must be >= 0"):
        MaskSettings(dilate_px=-1)
    with pytest.raises(InputError, match="max_coverage"):
        MaskSettings(max_coverage=0)
