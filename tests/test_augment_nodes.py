"""IntentCrop as ComfyUI calls it: every input a list (INPUT_IS_LIST), image lists of mixed sizes
and modes, the preview pages and summary out; and after the tiny detector, through the pack's
own loaders."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch

from intenttuner.augment.plan import CropSettings
from intenttuner.tiny import TINY_BUILDERS
from tests.test_augment_plan import concept, det, make_detections, make_intent

NODE = "IntentTunerIntentCrop"


def lib(pack, module: str):
    return sys.modules[f"{pack.__name__}.intenttuner.{module}"]


def image(width: int, height: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, height, width, channels), generator=g)


def widgets(**changes) -> dict:
    """The node's widget values as ComfyUI passes them (each a one-item list)."""
    values = {**dataclasses.asdict(CropSettings(min_size=64)), **changes}
    return {k: [v] for k, v in values.items()}


def as_pack(pack, intent, detections):
    """The intent and detections as objects of the pack's own copy of the library."""
    return (lib(pack, "intent.schema").Intent.model_validate(intent.model_dump()),
            lib(pack, "detection.types").Detections.model_validate(detections.model_dump()))


def test_node_widgets_map_one_to_one_onto_crop_settings(pack):
    required = pack.NODE_CLASS_MAPPINGS[NODE].INPUT_TYPES()["required"]
    assert set(required) - {"images", "detections", "intent"} == \
        {f.name for f in dataclasses.fields(CropSettings)}
    assert pack.NODE_CLASS_MAPPINGS[NODE].CATEGORY == "IntentTuner/Augment"


def test_crop_on_an_image_list_of_mixed_sizes_with_names(pack, models_root):
    # a list as ComfyUI passes it: a 2-image batch, an RGBA image, a greyscale one
    images = [image(320, 240, seed=1).repeat(2, 1, 1, 1), image(500, 300, 4, seed=2),
              image(640, 640, 1, seed=3)]
    sizes = [(320, 240), (320, 240), (500, 300), (640, 640)]
    intent = make_intent(concept("face", "keep"), concept("hair", "modify", "attribute"),
                         concept("necklace", "delete"))
    found = [[det("face", (100, 50, 200, 170)), det("hair", (100, 20, 200, 80))],
             [det("face", (0, 0, 90, 100), touches_border=True)],
             [det("hair", (0, 0, 500, 300))],  # the whole image: already salient
             [det("face", (300, 300, 340, 340)), det("necklace", (300, 340, 340, 360))]]
    intent, detections = as_pack(pack, intent, make_detections(intent, sizes, found))
    names = ["a.jpg", "b.jpg", "sub/c.png", "d.webp"]

    out = pack.NODE_CLASS_MAPPINGS[NODE]().crop(images, [detections], [intent], **widgets(),
                                                names=names)
    augmented, previews, text = out["result"]

    assert [s.size for s in augmented.sources] == sizes
    assert [s.mode for s in augmented.sources] == ["RGB"] * 4
    got = [(i.source_name, i.operation, i.concept) for i in augmented.plan.items]
    assert got == [("a.jpg", "original", None), ("a.jpg", "keep", "face"),
                   ("a.jpg", "modify", "hair"), ("b.jpg", "original", None),
                   ("b.jpg", "keep", "face"), ("sub/c.png", "original", None),
                   ("d.webp", "original", None), ("d.webp", "keep", "face")]
    edge = augmented.plan.items[4]
    assert edge.region[:2] == (0, 0) and any("touches the image edge" in n for n in edge.notes)
    small = augmented.plan.items[7]  # 40 px face: 60x60 with margin, upscaled to 64
    assert small.out_size == (64, 64) and small.resample == "lanczos"
    rendered = lib(pack, "augment.render").render_items(augmented)
    assert [r.size for r in rendered] == [tuple(i.out_size) for i in augmented.plan.items]

    assert len(previews) == 1 and previews[0].ndim == 4 and previews[0].shape[-1] == 3
    assert text.startswith("8 item(s) from 4 image(s): original 4, face 3, hair 1")
    assert "sub/c.png: hair (modify) not cropped: already salient" in text
    assert out["ui"]["text"] == [text] and out["ui"]["images"] == []  # no UI outside ComfyUI


def test_crop_refuses_other_images_names_and_settings(pack, models_root):
    intent, detections = as_pack(pack, make_intent(concept("face", "keep")),
                                 make_detections(make_intent(concept("face", "keep")),
                                                 [(64, 48)], [[]]))
    node = pack.NODE_CLASS_MAPPINGS[NODE]()
    input_error = lib(pack, "errors").InputError
    with pytest.raises(input_error, match="not the images the detections were made on"):
        node.crop([image(64, 64)], [detections], [intent], **widgets())
    with pytest.raises(input_error, match="names has 2 entries for 1 images"):
        node.crop([image(64, 48)], [detections], [intent], **widgets(), names=["a", "b"])
    with pytest.raises(input_error, match="modify_area must be in"):
        node.crop([image(64, 48)], [detections], [intent], **widgets(modify_area=0.0))


def test_detect_then_crop_with_the_tiny_detector_through_the_pack_loaders(pack, models_root):
    nodes = pack.NODE_CLASS_MAPPINGS
    family = lib(pack, "families").FAMILIES["detector"]
    folder = models_root / family.folder
    widget = TINY_BUILDERS["detector"](folder).relative_to(folder).as_posix()
    detector = nodes["IntentTunerLoadDetector"]().load(widget, "auto")[0]
    intent = nodes["IntentTunerIntentParse"]().parse(
        "trigger: x. Keep the patch. Remove the hat.", "error")["result"][0]
    images = [image(160, 120, seed=1), image(90, 200, seed=2)]
    detections = nodes["IntentTunerConceptDetect"]().detect(
        images, [intent], [detector], [0.0], [0.0])["result"][0]
    assert any(d.concept == "patch" for e in detections.images for d in e.detections)

    out = nodes[NODE]().crop(images, [detections], [intent],
                             **widgets(min_size=16, max_crops_per_concept_per_image=0))
    augmented, previews, text = out["result"]
    plan = augmented.plan
    patches = [d for e in detections.images for d in e.detections if d.concept == "patch"]
    crops = [i for i in plan.items if i.operation != "original"]
    assert crops and {i.concept for i in crops} == {"patch"}  # the hat is deleted: no crop
    # every patch box became a crop, was merged into one, or is listed with its reason
    assert len(crops) + sum("patch" in s for s in plan.skipped) >= len(patches) > 0
    for item in plan.items:
        x0, y0, x1, y1 = item.region
        width, height = augmented.sources[item.source_index].size
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        if item.box is not None:
            assert x0 <= max(0, item.box[0]) and x1 >= min(width, item.box[2])
    rendered = lib(pack, "augment.render").render_items(augmented)
    assert [r.size for r in rendered] == [tuple(i.out_size) for i in plan.items]
    assert np.isfinite(previews[0].numpy()).all()
    assert "hat (delete): no crop by design" in text
