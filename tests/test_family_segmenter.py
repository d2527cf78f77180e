"""Segment Anything: shape inference, loading through FAMILY.load, and box-prompted masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intenttuner.errors import InputError, WrongModelFamilyError
from intenttuner.families import segmenter
from intenttuner.families.segmenter import FAMILY, KNOWN_VARIANTS, infer_arch
from intenttuner.tiny.segmenter import TINY_ARCH, make_tiny
from intenttuner.weights.safe_load import load_state_dict

BOXES = np.array([[10, 10, 60, 80], [0, 0, 150, 90], [100, 5, 140, 50]], dtype=np.float32)


@pytest.fixture
def tiny_path(models_root):
    return make_tiny(models_root / "sams")


@pytest.fixture
def image():
    return (np.random.default_rng(0).random((90, 150, 3)) * 255).astype(np.uint8)


def _meta_shapes(variant: str) -> dict[str, tuple[int, ...]]:
    from segment_anything import sam_model_registry

    with torch.device("meta"):  # real ViT-H would need 2.5 GB; meta tensors need none
        model = sam_model_registry[variant]()
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@pytest.mark.parametrize("variant", ["vit_b", "vit_l", "vit_h"])
def test_released_variants_are_inferred_from_shapes(variant):
    arch = infer_arch(_meta_shapes(variant))
    assert arch == KNOWN_VARIANTS[variant]
    assert arch.variant == variant


def test_tiny_model_loads_with_inferred_architecture(tiny_path):
    sam = FAMILY.load(tiny_path)
    assert sam.arch == TINY_ARCH
    assert sam.variant == "custom"


def test_masks_match_segment_anything_predictor(tiny_path, image):
    """One batched call gives what SamPredictor gives box by box."""
    from segment_anything import SamPredictor

    masks = FAMILY.load(tiny_path).masks_for_boxes(image, BOXES)
    assert masks.shape == (3, 90, 150) and masks.dtype == bool
    assert 0 < masks.mean() < 1  # the tiny model's masks are neither empty nor full

    reference = segmenter.build_sam(TINY_ARCH)
    reference.load_state_dict(load_state_dict(tiny_path), assign=True)
    predictor = SamPredictor(reference.eval())
    predictor.set_image(image)
    for box, mask in zip(BOXES, masks, strict=True):
        expected, _, _ = predictor.predict(box=box, multimask_output=False)
        np.testing.assert_array_equal(mask, expected[0])


def test_no_boxes_gives_empty_stack(tiny_path, image):
    masks = FAMILY.load(tiny_path).masks_for_boxes(image, np.zeros((0, 4)))
    assert masks.shape == (0, 90, 150) and masks.dtype == bool


def test_boxes_are_clipped_and_outside_boxes_get_empty_masks(tiny_path, image):
    sam = FAMILY.load(tiny_path)
    inside = sam.masks_for_boxes(image, BOXES[1:2])
    overhanging = sam.masks_for_boxes(image, np.array([[-20, -20, 400, 300], [200, 0, 260, 50]]))
    np.testing.assert_array_equal(overhanging[0], inside[0])
    assert not overhanging[1].any()


def test_other_image_layouts_are_converted(tiny_path, image):
    sam = FAMILY.load(tiny_path)
    rgb = sam.masks_for_boxes(image, BOXES)
    as_float = sam.masks_for_boxes(image.astype(np.float32) / 255.0, BOXES)
    np.testing.assert_array_equal(as_float, rgb)
    grey = sam.masks_for_boxes(image[:, :, 0], BOXES)
    grey_as_rgb = sam.masks_for_boxes(np.repeat(image[:, :, :1], 3, axis=2), BOXES)
    np.testing.assert_array_equal(grey, grey_as_rgb)  # grey is R = G = B, nothing else
    assert not np.array_equal(grey, rgb)  # the model saw the grey image, not the colour one


@pytest.mark.parametrize("boxes, message", [
    (np.array([[1.0, 2.0, 3.0]]), r"shape \(N, 4\)"),
    (np.array([[50.0, 10.0, 20.0, 40.0]]), "XYXY"),
    (np.array([[0.0, 0.0, np.nan, 5.0]]), "NaN"),
])
def test_bad_boxes_are_rejected(tiny_path, image, boxes, message):
    with pytest.raises(InputError, match=message):
        FAMILY.load(tiny_path).masks_for_boxes(image, boxes)


def test_safetensors_copy_loads_the_same(tiny_path, image):
    from safetensors.torch import save_file

    copy = tiny_path.with_suffix(".safetensors")
    save_file(load_state_dict(tiny_path), str(copy))
    np.testing.assert_array_equal(FAMILY.load(copy).masks_for_boxes(image, BOXES),
                                  FAMILY.load(tiny_path).masks_for_boxes(image, BOXES))


def test_fp16_image_encoder_gives_nearly_the_same_masks(tiny_path, image):
    sam = FAMILY.load(tiny_path, precision="fp16")
    assert sam.dtype == torch.float16
    reference = FAMILY.load(tiny_path, precision="fp32").masks_for_boxes(image, BOXES)
    assert (sam.masks_for_boxes(image, BOXES) == reference).mean() > 0.99






def test_unknown_tensors_are_rejected(models_root):
    path = models_root / "sams" / "not_sam.pth"
    path.parent.mkdir(parents=True)
    torch.save({"backbone.weight": torch.zeros(2)}, path)
    with pytest.raises(WrongModelFamilyError, match="not a Segment Anything"):
        FAMILY.load(path)


def test_sam_variant_with_extra_layers_is_rejected(tiny_path):
    state = load_state_dict(tiny_path)
    state["mask_decoder.hf_token.weight"] = torch.zeros(1, 32)  # as in SAM-HQ
    torch.save(state, tiny_path)
    with pytest.raises(WrongModelFamilyError, match="cannot load"):
        FAMILY.load(tiny_path)


def test_sniff():
    assert segmenter.sniff(_meta_shapes("vit_b"))
    assert not segmenter.sniff(["visual.conv1.weight", "logit_scale"])
