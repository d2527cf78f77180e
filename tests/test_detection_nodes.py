"""ConceptDetect and RefFilter as ComfyUI calls them: inputs as lists (INPUT_IS_LIST), image
lists of different sizes and modes, preview lists out."""

from __future__ import annotations

import sys

import numpy as np
import torch

from intenttuner.tiny import TINY_BUILDERS
from tests.test_detection import noise

BOXES = '[{"image": 0, "box": [4, 4, 44, 36]}]'


def image(width: int, height: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, height, width, channels), generator=g)


def test_detect_then_filter_on_an_image_list_of_mixed_sizes(pack, models_root):
    nodes = pack.NODE_CLASS_MAPPINGS
    models = {}
    for name, node in (("detector", "IntentTunerLoadDetector"),
                       ("segmenter", "IntentTunerLoadSegmenter"),
                       ("image_encoder", "IntentTunerLoadImageEncoder")):
        family = sys.modules[f"{pack.__name__}.intenttuner.families"].FAMILIES[name]
        folder = models_root / family.folder
        widget = TINY_BUILDERS[name](folder).relative_to(folder).as_posix()
        models[name] = nodes[node]().load(widget, "auto")[0]
    reference = torch.from_numpy(np.array(noise(48, 40, 5))).float()[None] / 255
    intent = nodes["IntentTunerIntentParse"]().parse(
        "trigger: x. Keep the patch [1]. Remove the hat.", "error", reference_boxes=BOXES,
        reference_1=reference)["result"][0]
    # a list as ComfyUI passes it: a 2-image batch, an RGBA image, a large greyscale one
    images = [image(64, 48, seed=1).repeat(2, 1, 1, 1), image(90, 40, 4, seed=2),
              image(1600, 1200, 1, seed=3)]

    detect = nodes["IntentTunerConceptDetect"]()
    out = detect.detect(images, [intent], [models["detector"]], [0.0], [0.0],
                        segmenter=[models["segmenter"]])
    detections, previews, text = out["result"]

    assert [e.size for e in detections.images] == [(64, 48), (64, 48), (90, 40), (1600, 1200)]
    assert len(previews) == 4 and previews[3].shape == (1, 576, 768, 3)
    assert all(d.mask is not None for e in detections.images for d in e.detections)
    assert text.startswith("4 image(s)") and "patch:" in text and "hat:" in text
    assert len(out["ui"]["images"]) == 0  # no UI outside ComfyUI; the outputs carry them

    filtered, previews, text = nodes["IntentTunerRefFilter"]().filter(
        images, [detections], [intent], [models["image_encoder"]], [0.999], [1])["result"]
    patches = [d for e in filtered.images for d in e.detections if d.concept == "patch"]
    assert patches and all(d.similarity is not None for d in patches)
    assert all(d.similarity is None and d.kept for e in filtered.images
               for d in e.detections if d.concept == "hat")
    assert "Filtered by reference similarity >= 0.999" in text
