"""IntentInpaint as ComfyUI calls it, end to end on an AUGMENTED set built by hand (sources +
one original item per source + a crop), with detections built by hand; the LaMa and diffusion
backends through the pack's own loader nodes."""

from __future__ import annotations

import functools
import importlib

import numpy as np
import pytest
from PIL import Image

from intenttuner.tiny import TINY_BUILDERS
from tests.test_augment_inpaint import red_pixels, scene

DISCS = [((40, 30), 10), ((25, 40), 8)]  # (centre, radius) of the red disc per source
SIZES = [(96, 64), (50, 70)]


def lib(pack, name: str):
    """A module of the pack's own copy of the library (the node's classes must be the pack's)."""
    return importlib.import_module(f"{pack.__name__}.intenttuner.{name}")


def build_inputs(pack):
    types = lib(pack, "augment.types")
    det = lib(pack, "detection.types")
    schema = lib(pack, "intent.schema")
    sources, items, images = [], [], []
    for i, ((width, height), (centre, radius)) in enumerate(zip(SIZES, DISCS, strict=True)):
        pixels, _ = scene(width, height, centre, radius, seed=i)
        sources.append(Image.fromarray(pixels))
        name = f"shoot/IMG_{i}.jpg"
        items.append(types.CropItem(source_index=i, source_name=name, operation="original",
                                    region=(0, 0, width, height), out_size=(width, height),
                                    resample="none", group="original"))
        box = (centre[0] - radius, centre[1] - radius, centre[0] + radius + 1,
               centre[1] + radius + 1)
        detections = [det.Detection(concept="necklace", phrase="necklace", box=box, score=0.8)]
        images.append(det.ImageDetections(index=i, size=(width, height), detections=detections))
    # a crop of source 0 far from the disc, and one through it
    items += [types.CropItem(source_index=0, source_name="shoot/IMG_0.jpg", operation="keep",
                             concept="face", region=region, out_size=(24, 24), group="face")
              for region in ((70, 40, 94, 64), (28, 18, 52, 42))]
    augmented = types.Augmented(plan=types.AugmentPlan(items=items), sources=sources)
    detections = det.Detections(images=images, box_threshold=0.3, text_threshold=0.25)
    intent = schema.Intent(description="Keep his face. Never a necklace.", trigger_words=["v"],
                           domain="portrait", concepts=[
                               {"name": "face", "phrase": "face", "granularity": "instance",
                                "operation": "keep"},
                               {"name": "necklace", "phrase": "necklace",
                                "granularity": "instance", "operation": "delete"}])
    return augmented, detections, intent


def run(pack, backend="classical", **extra):
    node = pack.NODE_CLASS_MAPPINGS["IntentTunerIntentInpaint"]()
    augmented, detections, intent = build_inputs(pack)
    out = node.inpaint(augmented, detections, intent, backend, 4, "telea", 2, 0, "", **extra)
    return augmented, out


def test_classical_end_to_end(pack, models_root):
    before, out = run(pack)
    augmented, previews, text = out["result"]

    assert augmented.inpaint["backend"] == "classical" and augmented.inpaint["dilate_px"] == 4
    for i, (source, mask) in enumerate(zip(augmented.sources, augmented.masks, strict=True)):
        original = np.asarray(before.sources[i]).astype(int)
        cleaned = np.asarray(source).astype(int)
        assert mask is not None and mask.shape == original.shape[:2]
        assert np.abs(cleaned - original)[~mask].max() == 0
        assert red_pixels(original) > 100 and red_pixels(cleaned.astype(np.uint8)) == 0
    removed = [item.removed for item in augmented.plan.items]
    assert removed == [["necklace"], ["necklace"], [], ["necklace"]]
    assert before.plan.items[0].removed == []  # the input is not modified

    assert len(previews) == 2
    width, height = SIZES[0]
    assert previews[0].shape[2:] == (width * 2 + 6, 3)  # before | after
    assert previews[0].shape[1] >= height + 36  # a label line above, wrapped text below
    assert text.startswith("IntentInpaint: 2 of 2 image(s) inpainted with classical in ")
    assert "shoot/IMG_0.jpg: removed necklace; mask" in text and "% of the image" in text
    assert out["ui"]["text"] == [text]


def test_auto_uses_lama_from_the_loader_node(pack, models_root):
    folder = models_root / "inpaint"
    widget = TINY_BUILDERS["inpainter"](folder).relative_to(folder).as_posix()
    loader = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadInpainter"]()
    assert widget in loader.INPUT_TYPES()["required"]["model"][0]
    lama = loader.load(widget, "auto")[0]

    _, out = run(pack, "auto", inpainter=lama)
    augmented, _, text = out["result"]
    assert augmented.inpaint["backend"] == "lama"
    assert "with lama (auto: LaMa" in text


def test_auto_without_lama_falls_back_to_classical_and_says_so(pack, models_root):
    _, out = run(pack, "auto")
    assert out["result"][0].inpaint["backend"] == "classical"
    assert "connect Load Inpaint Model" in out["result"][2]


def test_diffusion_with_the_base_model_loader_node(pack, models_root, monkeypatch):
    folder = models_root / "checkpoints"
    widget = TINY_BUILDERS["base_model"](folder).relative_to(folder).as_posix()
    base = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadBaseModel"]().load(widget, "fp32")[0]
    # The tiny model declares SD 1.5's 512 px native size; work at 64 px to stay fast.
    node_module = importlib.import_module(f"{pack.__name__}.nodes.inpaint")
    monkeypatch.setattr(node_module, "InpaintSettings", functools.partial(
        lib(pack, "augment.inpaint_base").InpaintSettings, work_side=64))

    before, out = run(pack, "diffusion", base_model=base)
    augmented, _, text = out["result"]
    assert augmented.inpaint["backend"] == "diffusion" and augmented.inpaint["steps"] == 2
    assert "inpainted with diffusion" in text
    for i, mask in enumerate(augmented.masks):
        diff = np.abs(np.asarray(augmented.sources[i]).astype(int)
                      - np.asarray(before.sources[i]))
        assert diff[~mask].max() == 0 and diff[mask].max() > 0


@pytest.mark.parametrize(("backend", "input_name"), [("lama", "inpainter"),
                                                     ("diffusion", "base_model")])
def test_missing_model_input_is_named(pack, models_root, backend, input_name):
    errors = lib(pack, "errors")
    with pytest.raises(errors.InputError, match=f"'{input_name}' input"):
        run(pack, backend)


def test_large_mask_warning_reaches_summary_plan_and_preview(pack, models_root):
    node = pack.NODE_CLASS_MAPPINGS["IntentTunerIntentInpaint"]()
    augmented, detections, intent = build_inputs(pack)
    detections.images[1].detections[0].box = (0.0, 0.0, 50.0, 60.0)
    result, previews, text = node.inpaint(augmented, detections, intent, "classical", 4,
                                          "telea", 2, 0, "")["result"]
    assert "WARNING: shoot/IMG_1.jpg: the delete mask covers" in text
    assert any(w.startswith("IntentInpaint: shoot/IMG_1.jpg") for w in result.plan.warnings)
    assert any("covers" in n for n in result.plan.items[1].notes)
    banner = previews[1][0, -10:, :40].numpy()  # the red warning banner under the images
    assert banner[..., 0].mean() > 0.6 and banner[..., 1].mean() < 0.4


def test_whole_image_mask_is_filled_and_its_warning_reaches_the_summary(pack, models_root):
    node = pack.NODE_CLASS_MAPPINGS["IntentTunerIntentInpaint"]()
    augmented, detections, intent = build_inputs(pack)
    detections.images[1].detections[0].box = (0.0, 0.0, 50.0, 70.0)
    result, _, text = node.inpaint(augmented, detections, intent, "classical", 4, "telea", 2,
                                   0, "")["result"]
    assert result.masks[1].all()
    before, after = np.asarray(augmented.sources[1]), np.asarray(result.sources[1])
    assert red_pixels(before) > 100 and red_pixels(after) == 0 and (after == 128).all()
    assert "WARNING: shoot/IMG_1.jpg: the delete mask covers the whole image" in text
    assert "nothing left to fill from" in text


def test_detections_of_other_images_are_refused(pack, models_root):
    node = pack.NODE_CLASS_MAPPINGS["IntentTunerIntentInpaint"]()
    augmented, detections, intent = build_inputs(pack)
    detections.images.pop()
    with pytest.raises(lib(pack, "errors").InputError, match="not the images the detections"):
        node.inpaint(augmented, detections, intent, "classical", 4, "telea", 2, 0, "")
