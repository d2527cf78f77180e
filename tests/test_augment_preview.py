"""The augmentation preview: one labelled tile per item, pages of a bounded size, removed regions
outlined where they fall in each tile, and huge removals flagged rather than hidden."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from intenttuner.augment.plan import CropSettings, plan_crops
from intenttuner.augment.preview import (
    BORDER,
    OUTLINE,
    TILE,
    WARNING,
    mask_warnings,
    render_pages,
    render_tile,
    short_name,
    summary,
    tile_labels,
)
from intenttuner.augment.types import Augmented, CropItem
from tests.test_augment_plan import FACE, concept, det, make_detections, make_intent

GREEN = (40, 140, 60)


def flat(width: int, height: int, colour=GREEN) -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def face_plan(sizes, names=None, settings=None):
    found = [[det("face", (w * 0.4, h * 0.3, w * 0.6, h * 0.6))] for w, h in sizes]
    return plan_crops(FACE, make_detections(FACE, sizes, found), sizes, names,
                      settings or CropSettings(min_size=16))


def coloured(tile: Image.Image, colour) -> np.ndarray:
    return np.all(np.asarray(tile) == np.array(colour, dtype=np.uint8), axis=-1)


def test_each_tile_is_labelled_with_concept_operation_and_short_source():
    intent = make_intent(concept("face", "keep"),
                         concept("jacket", "modify", values=("leather jacket", "striped jacket")))
    sizes = [(800, 600)]
    found = [[det("face", (350, 100, 450, 220)),
              det("jacket", (300, 300, 500, 450), value="leather jacket",
                  phrase="leather jacket")]]
    plan = plan_crops(intent, make_detections(intent, sizes, found), sizes,
                      ["holiday 2023/very_long_file_name_of_a_camera_0042.jpg"],
                      CropSettings(min_size=200))
    labels = tile_labels(plan)
    assert [title for title, _ in labels] == ["original", "face (keep)",
                                              "jacket: leather jacket (modify)"]
    source = short_name("very_long_file_name_of_a_camera_0042.jpg")
    assert len(source) == 24 and source.startswith("very_long_f") and ".." in source
    assert source.endswith("_0042.jpg")  # the end (number, extension) survives shortening
    assert [s.split("  ")[0] for _, s in labels] == [source] * 3
    # the face: 100x120 box + margin = 150x180, widened to 3:4 = 150x200, upscaled to 200 px
    assert labels[1][1].endswith("up x1.33") and plan.items[1].out_size == (200, 267)
    assert "up" not in labels[0][1] + labels[2][1]


def test_tiles_show_their_label_text():
    source = flat(300, 200)
    item = face_plan([(300, 200)]).items[0]
    blank = np.asarray(render_tile(source, item, labels=("", "")))
    short = np.asarray(render_tile(source, item, labels=("face", "a.jpg")))
    long = np.asarray(render_tile(source, item, labels=("face (keep) and more words", "a.jpg")))
    strip = slice(TILE + 2 * BORDER, None)  # below the image: the label lines
    ink = [int((np.abs(t[strip].astype(int) - blank[strip]).sum(-1) > 60).sum())
           for t in (short, long)]
    assert ink[0] > 20 and ink[1] > ink[0] * 1.5
    np.testing.assert_array_equal(short[:strip.start], blank[:strip.start])  # image untouched


@pytest.mark.parametrize(("items", "pages"), [(1, 1), (4, 1), (5, 2), (12, 3)])
def test_pages_hold_every_item_once_and_stay_bounded(items, pages):
    sizes = [(120 + 10 * i, 90) for i in range(items)]
    plan = face_plan(sizes, settings=CropSettings(min_size=16, max_crops_per_concept_per_image=1))
    plan.items = plan.items[:items]  # originals and crops interleaved: any items will do
    augmented = Augmented(plan=plan, sources=[flat(*s) for s in sizes])
    got = render_pages(augmented, columns=2, rows=2)
    assert len(got) == pages
    frames = 0
    for page in got:
        assert page.width <= 2 * (TILE + 2 * BORDER + 8) + 8 and page.height < 700
        # every tile is framed in its operation's colour; count the frames' top-left corners
        grey = coloured(page, (120, 120, 120)) | coloured(page, (46, 160, 67))
        frames += int((grey[1:, 1:] & ~grey[:-1, 1:] & ~grey[1:, :-1]).sum())
    assert frames == items


def test_removed_regions_are_outlined_in_tile_coordinates():
    source = flat(400, 300)
    mask = np.zeros((300, 400), dtype=bool)
    mask[100:200, 100:300] = True  # y 100..200, x 100..300
    original = CropItem(source_index=0, source_name="a.jpg", operation="original",
                        region=(0, 0, 400, 300), out_size=(400, 300), resample="none",
                        group="original")
    tile = render_tile(source, original, mask)
    scale = TILE / 400  # 0.48; the image is centred vertically in the tile
    left, top = BORDER, BORDER + (TILE - round(300 * scale)) // 2
    line = coloured(tile, OUTLINE)
    ys, xs = np.nonzero(line)
    assert abs(xs.min() - (left + 100 * scale)) <= 2 and abs(xs.max() - (left + 300 * scale)) <= 2
    assert abs(ys.min() - (top + 100 * scale)) <= 2 and abs(ys.max() - (top + 200 * scale)) <= 2
    assert not line[int(top + 150 * scale), int(left + 200 * scale)]  # inside: only the contour
    assert coloured(tile, GREEN)[int(top + 150 * scale), int(left + 200 * scale)]
    assert not coloured(render_tile(source, original), OUTLINE).any()

    # a crop that shows the mask's right half: the outline moves with the crop
    crop = original.model_copy(update={"operation": "keep", "concept": "face", "group": "face",
                                       "region": (200, 50, 400, 250), "out_size": (200, 200)})
    ys, xs = np.nonzero(coloured(render_tile(source, crop, mask), OUTLINE))
    assert abs(xs.min() - BORDER) <= 2  # the mask continues beyond the crop's left edge
    assert abs(xs.max() - (BORDER + 100 * TILE / 200)) <= 2
    away = crop.model_copy(update={"region": (0, 210, 90, 300), "out_size": (90, 90)})
    assert not coloured(render_tile(source, away, mask), OUTLINE).any()


def test_a_huge_removal_is_warned_about_and_stays_visible():
    sizes = [(400, 300), (400, 300)]
    plan = face_plan(sizes, ["big.jpg", "fine.jpg"])
    mask = np.ones((300, 400), dtype=bool)
    mask[:, :80] = False  # 80% removed
    augmented = Augmented(plan=plan, sources=[flat(400, 300), flat(400, 300)],
                          masks=[mask, None])
    (warning,) = mask_warnings(augmented)
    assert warning.startswith("big.jpg: the removed region covers 80% of the image")
    assert f"WARNING: {warning}" in summary(augmented)
    tile = render_tile(augmented.sources[0], plan.items[0], mask)
    assert coloured(tile, WARNING).any() and coloured(tile, GREEN).any()  # flagged, not hidden
    assert not coloured(render_tile(augmented.sources[1], plan.items[2]), WARNING).any()
    (page,) = render_pages(augmented)
    assert coloured(page, WARNING).sum() > coloured(tile, WARNING).sum()  # the header says it


def test_a_mask_of_the_wrong_size_is_reported_not_drawn():
    plan = face_plan([(400, 300)])
    augmented = Augmented(plan=plan, sources=[flat(400, 300)],
                          masks=[np.ones((10, 10), dtype=bool)])
    assert "the removal mask is 10x10 but the image is 400x300" in mask_warnings(augmented)[0]
    assert not coloured(render_pages(augmented)[0], OUTLINE).any()


def test_summary_counts_groups_and_lists_every_skipped_crop_with_its_reason():
    intent = make_intent(concept("face", "keep"), concept("hair", "modify", "attribute"),
                         concept("necklace", "delete"))
    sizes = [(400, 300), (400, 300)]
    found = [[det("face", (150, 50, 250, 150)), det("hair", (0, 0, 400, 200))],
             [det("face", (150, 50, 250, 150)), det("hair", (160, 40, 240, 80))]]
    plan = plan_crops(intent, make_detections(intent, sizes, found), sizes,
                      settings=CropSettings(min_size=100))
    text = summary(Augmented(plan=plan, sources=[flat(*s) for s in sizes]))
    lines = text.splitlines()
    assert lines[0] == "5 item(s) from 2 image(s): original 2, face 2, hair 1"
    assert "upscaled" in lines[1]
    assert "  - image_0: hair (modify) not cropped: already salient" in text
    assert "  - necklace (delete): no crop by design" in text
    assert "WARNING: 'necklace'" not in text  # delete concepts are not IntentCrop's to warn on


def test_after_intent_inpaint_its_own_coverage_warning_is_not_repeated():
    plan = face_plan([(400, 300)], ["big.jpg"])
    plan.warnings.append("IntentInpaint: big.jpg: the delete mask covers 90% of the image")
    augmented = Augmented(plan=plan, sources=[flat(400, 300)],
                          masks=[np.ones((300, 400), dtype=bool)], inpaint={"backend": "opencv"})
    assert mask_warnings(augmented) == []
    text = summary(augmented)
    assert text.count("90%") == 1 and "Inpainted: opencv" in text
    assert coloured(render_tile(augmented.sources[0], plan.items[0], augmented.masks[0]),
                    WARNING).any()  # the tile still says so
