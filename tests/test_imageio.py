"""Image conversion to RGB uint8: every PIL mode and numpy layout models may be handed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from intenttuner.errors import InputError
from intenttuner.imageio import to_rgb_array, to_rgb_pil

GREY = np.array([[0, 128], [200, 255]], dtype=np.uint8)


def _grey_rgb(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[:, :, None], 3, axis=2)


@pytest.mark.parametrize("image", [
    Image.fromarray(GREY),
    Image.fromarray(GREY.astype(np.uint16) * 257),  # I;16, as 16-bit greyscale PNGs open
    Image.fromarray(GREY.astype(np.int32) * 257),  # I
    Image.fromarray(GREY.astype(np.float32) / 255),  # F
    Image.fromarray(GREY).convert("RGB"),
    Image.fromarray(GREY).convert("P"),
    Image.fromarray(GREY).convert("CMYK"),
    Image.fromarray(GREY).convert("LA"),  # opaque alpha
    GREY,
    GREY[:, :, None],
    GREY.astype(np.uint16) * 257,
    GREY.astype(np.float32) / 255,  # ComfyUI-style [0, 1]
    GREY.astype(np.float64),  # [0, 255] floats
    _grey_rgb(GREY),
    np.dstack([_grey_rgb(GREY), np.full((2, 2), 255, np.uint8)]),
], ids=lambda v: getattr(v, "mode", None) or f"{v.dtype}{v.shape}")
def test_grey_values_survive_every_layout(image):
    out = to_rgb_array(image)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    np.testing.assert_allclose(out.astype(int), _grey_rgb(GREY), atol=1)


def test_transparency_is_composited_over_the_background():
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, 0] = 200  # red channel
    rgba[0, :, 3] = [0, 128, 255]  # transparent, half, opaque
    out = to_rgb_array(Image.fromarray(rgba))
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 2], [200, 0, 0])
    assert 200 <= out[0, 1, 0] <= 255 and 120 <= out[0, 1, 1] <= 135
    black = to_rgb_array(rgba, background=(0, 0, 0))
    np.testing.assert_array_equal(black[0, 0], [0, 0, 0])


def test_palette_transparency_is_honoured():
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    np.testing.assert_array_equal(to_rgb_array(image), [[[255, 255, 255], [10, 20, 30]]])


def test_rgb_pil_is_returned_unchanged():
    image = Image.new("RGB", (3, 2), (1, 2, 3))
    assert to_rgb_pil(image) is image
    assert to_rgb_pil(np.zeros((2, 3), np.uint8)).mode == "RGB"


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 8, 8), np.uint8), "Channels-first"),
    (np.zeros((2, 2, 5), np.uint8), "shape"),
    (np.full((2, 2), 1e6, np.float32), "Rescale"),
    (np.zeros((2, 2), dtype=object), "numbers"),
    (Image.new("RGB", (0, 4)), "empty"),
    ("not an image", "PIL image or a numpy array"),
])
def test_unusable_inputs_are_rejected(bad, message):
    with pytest.raises(InputError, match=message):
        to_rgb_array(bad)
