"""Image conversion: every PIL mode and numpy layout models may be handed, scaled by its dtype and
mode (never by its pixel values), and image files read upright at their own bit depth."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from intenttuner.errors import InputError
from intenttuner.imageio import open_image, pils_to_batch, to_rgb_array, to_rgb_float, to_rgb_pil

GREY = np.array([[0, 128], [200, 255]], dtype=np.uint8)
DARK_16 = 1000  # of 65535: a dark 16-bit image, 1.5 % brightness


def _grey_rgb(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[:, :, None], 3, axis=2)


@pytest.mark.parametrize("image", [
    Image.fromarray(GREY),
    Image.fromarray(GREY.astype(np.uint16) * 257),  # I;16, as 16-bit greyscale PNGs open
    Image.frombytes("I;16B", (2, 2), (GREY.astype(">u2") * 257).tobytes()),
    Image.fromarray(GREY.astype(np.int32) * 257),  # I
    Image.fromarray(GREY.astype(np.float32) / 255),  # F
    Image.fromarray(GREY).convert("RGB"),
    Image.fromarray(GREY).convert("P"),
    Image.fromarray(GREY).convert("CMYK"),
    Image.fromarray(GREY).convert("LA"),  # opaque alpha
    Image.fromarray(GREY).convert("RGBA"),  # opaque alpha
    GREY,
    GREY[:, :, None],
    GREY.astype(np.uint16) * 257,
    (GREY.astype(np.uint16) * 257).astype(">u2"),  # big-endian, as some TIFF readers return
    GREY.astype(np.float32) / 255,  # ComfyUI-style [0, 1]
    GREY.astype(np.float64) / 255,
    _grey_rgb(GREY),
    np.dstack([_grey_rgb(GREY), np.full((2, 2), 255, np.uint8)]),
], ids=lambda v: getattr(v, "mode", None) or f"{v.dtype}{v.shape}")
def test_grey_values_survive_every_layout(image):
    out = to_rgb_array(image)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    np.testing.assert_allclose(out.astype(int), _grey_rgb(GREY), atol=1)
    floats = to_rgb_float(image)
    assert floats.dtype == np.float32 and floats.shape == (2, 2, 3)
    np.testing.assert_allclose(floats, _grey_rgb(GREY) / 255, atol=1 / 255)


def _single(value, mode: str | None = None, dtype=None) -> Image.Image | np.ndarray:
    """A 3x2 image whose every pixel is ``value`` (a PIL image of ``mode`` or an array)."""
    if dtype is not None:
        return np.full((2, 3) + np.shape(value), value, dtype=dtype)
    return Image.new(mode, (3, 2), value)


# Each case: a dark pixel and the brightness it stands for by its format's definition (value over
# the format's white), which must not be stretched towards 1.0 because it is the image's maximum.
DARK_CASES = {
    "1": (_single(1, "1"), (1.0, 1.0, 1.0)),
    "L": (_single(10, "L"), (10 / 255,) * 3),
    "LA": (_single((10, 255), "LA"), (10 / 255,) * 3),
    "RGB": (_single((10, 20, 30), "RGB"), (10 / 255, 20 / 255, 30 / 255)),
    "RGBA": (_single((10, 20, 30, 255), "RGBA"), (10 / 255, 20 / 255, 30 / 255)),
    "CMYK": (_single((0, 0, 0, 245), "CMYK"), (10 / 255,) * 3),  # K=245 of 255: 10 left
    "I;16": (Image.fromarray(np.full((2, 3), DARK_16, np.uint16)), (DARK_16 / 65535,) * 3),
    "I;16B": (Image.frombytes("I;16B", (3, 2), np.full((2, 3), DARK_16, ">u2").tobytes()),
              (DARK_16 / 65535,) * 3),
    "I": (_single(DARK_16, "I"), (DARK_16 / 65535,) * 3),
    "I-below-255": (_single(200, "I"), (200 / 65535,) * 3),  # still 16-bit data, not 8-bit
    "F": (_single(0.01, "F"), (0.01,) * 3),
    "uint8": (_single(10, dtype=np.uint8), (10 / 255,) * 3),
    "uint16": (_single(DARK_16, dtype=np.uint16), (DARK_16 / 65535,) * 3),
    "uint16-rgb": (_single([DARK_16, 0, 2 * DARK_16], dtype=np.uint16),
                   (DARK_16 / 65535, 0.0, 2 * DARK_16 / 65535)),
    "float32": (_single(0.01, dtype=np.float32), (0.01,) * 3),
    "bool": (_single(True, dtype=np.bool_), (1.0, 1.0, 1.0)),
}


@pytest.mark.parametrize("name", DARK_CASES)
def test_scale_follows_dtype_and_mode_not_the_pixel_values(name):
    image, expected = DARK_CASES[name]
    floats = to_rgb_float(image)
    assert floats.dtype == np.float32 and floats.shape == (2, 3, 3)
    assert 0.0 <= floats.min() and floats.max() <= 1.0
    np.testing.assert_allclose(floats, np.broadcast_to(expected, (2, 3, 3)), atol=1e-6)
    np.testing.assert_array_equal(to_rgb_array(image),
                                  np.broadcast_to(np.rint(np.multiply(expected, 255)), (2, 3, 3)))


def test_palette_image_uses_its_palette_colours():
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.putpixel((1, 0), 1)
    np.testing.assert_allclose(to_rgb_float(image), [[[0, 0, 0], [10 / 255, 20 / 255, 30 / 255]]],
                               atol=1e-6)


def test_float_overshoot_from_resampling_is_clipped():
    image = np.array([[-0.01, 0.5, 1.03]], dtype=np.float32)
    np.testing.assert_allclose(to_rgb_float(image)[0, :, 0], [0.0, 0.5, 1.0])


def test_transparency_is_composited_over_the_background():
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, 0] = 200  # red channel
    rgba[0, :, 3] = [0, 128, 255]  # transparent, half, opaque
    out = to_rgb_array(Image.fromarray(rgba))
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 2], [200, 0, 0])
    half = 128 / 255
    np.testing.assert_allclose(to_rgb_float(rgba)[0, 1],
                               [200 / 255 * half + 1 - half, 1 - half, 1 - half], atol=1e-6)
    black = to_rgb_array(rgba, background=(0, 0, 0))
    np.testing.assert_array_equal(black[0, 0], [0, 0, 0])


def test_palette_transparency_is_honoured():
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    np.testing.assert_array_equal(to_rgb_array(image), [[[255, 255, 255], [10, 20, 30]]])


def test_sixteen_bit_transparency_key_is_honoured():
    image = Image.fromarray(np.array([[0, DARK_16]], np.uint16))
    image.info["transparency"] = 0  # as a 16-bit greyscale PNG's tRNS chunk opens
    np.testing.assert_allclose(to_rgb_float(image, background=(0, 255, 0))[0],
                               [[0, 1, 0], [DARK_16 / 65535] * 3], atol=1e-6)


def test_rgb_pil_is_returned_unchanged():
    image = Image.new("RGB", (3, 2), (1, 2, 3))
    assert to_rgb_pil(image) is image
    assert to_rgb_pil(np.zeros((2, 3), np.uint8)).mode == "RGB"


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 8, 8), np.uint8), "Channels-first"),
    (np.zeros((2, 2, 5), np.uint8), "shape"),
    (np.full((2, 2), 1e6, np.float32), "Rescale"),
    (GREY.astype(np.float64), "divide by 255"),  # 0-255 floats are not [0, 1]
    (np.array([[0.5, np.nan]]), "NaN"),
    (GREY.astype(np.int64), "do not say their scale"),
    (Image.fromarray(np.array([[0, 70000]], np.int32)), "16-bit"),
    (np.zeros((2, 2), dtype=object), "numbers"),
    (Image.new("RGB", (0, 4)), "empty"),
    ("not an image", "PIL image or a numpy array"),
])
def test_unusable_inputs_are_rejected(bad, message):
    with pytest.raises(InputError, match=message):
        to_rgb_float(bad)
    with pytest.raises(InputError, match=message):
        to_rgb_array(bad)


# --- files ------------------------------------------------------------------------------------


def test_dark_16_bit_png_round_trips_at_its_own_brightness(tmp_path):
    ramp = np.linspace(0, DARK_16, 48, dtype=np.float64).round().astype(np.uint16).reshape(6, 8)
    path = tmp_path / "dark.png"
    Image.fromarray(ramp).save(path)
    batch = pils_to_batch([open_image(path)])
    assert tuple(batch.shape) == (1, 6, 8, 3) and str(batch.dtype) == "torch.float32"
    assert float(batch.max()) == pytest.approx(DARK_16 / 65535, abs=1e-4)
    np.testing.assert_allclose(batch[0].numpy(), _grey_rgb(ramp) / 65535, atol=1e-6)


def test_16_bit_colour_png_keeps_its_16_bits(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb = np.zeros((4, 5, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = DARK_16, 7, 65535
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    image = open_image(path)
    np.testing.assert_array_equal(image, rgb)
    np.testing.assert_allclose(pils_to_batch([image])[0].numpy(), rgb / 65535, atol=1e-6)


def _photo() -> Image.Image:
    """80x40 (W x H): left half red, right half blue, a green 16x16 square top left."""
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = (220, 20, 20)
    pixels[:, 40:] = (20, 20, 220)
    pixels[:16, :16] = (20, 220, 20)
    return Image.fromarray(pixels)


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90 degrees clockwise to view
    path = tmp_path / "phone.jpg"
    _photo().save(path, quality=95, subsampling=0, exif=exif)
    out = to_rgb_array(open_image(path))
    assert out.shape == (80, 40, 3)  # portrait now
    # Turned clockwise, the left (red) half is on top and the green corner at the top right.
    for rows, cols, colour in [((20, 36), (4, 20), (220, 20, 20)),
                               ((50, 70), (10, 30), (20, 20, 220)),
                               ((4, 12), (28, 36), (20, 220, 20))]:
        patch = out[rows[0]:rows[1], cols[0]:cols[1]].reshape(-1, 3)
        np.testing.assert_allclose(patch, np.broadcast_to(colour, patch.shape), atol=12)


def _with_exif_chunk(png: bytes, orientation: int) -> bytes:
    """``png`` with an eXIf chunk (EXIF Orientation = ``orientation``) after its IHDR."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = exif.tobytes()
    data = data.removeprefix(b"Exif\x00\x00")  # a PNG eXIf chunk holds the TIFF part only
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + data) & 0xFFFFFFFF)
    return png[:33] + chunk + png[33:]  # 8-byte signature + 25-byte IHDR chunk


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_of_16_bit_colour_png_matches_pil(tmp_path, orientation):
    # PIL rotates its own 8-bit reading of the file; the 16-bit pixels must turn the same way.
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(orientation)
    rgb = (rng.integers(0, 256, (3, 5, 3)) * 257).astype(np.uint16)
    ok, encoded = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    path = tmp_path / "deep.png"
    path.write_bytes(_with_exif_chunk(encoded.tobytes(), orientation))
    with Image.open(path) as eight_bit:
        expected = np.asarray(ImageOps.exif_transpose(eight_bit).convert("RGB"))
    out = open_image(path)
    assert out.dtype == np.uint16
    assert out.shape == ((5, 3, 3) if orientation >= 5 else (3, 5, 3))  # 5-8 swap the sides
    assert np.array_equal(out, rgb) == (orientation == 1)  # the tag was read and applied
    np.testing.assert_array_equal(out // 257, expected)


def test_file_objects_are_read_too():
    buffer = io.BytesIO()
    Image.new("L", (3, 2), 10).save(buffer, format="PNG")
    buffer.seek(0)
    assert to_rgb_array(open_image(buffer)).tolist() == [[[10, 10, 10]] * 3] * 2


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(InputError, match="notes.png is not an image"):
        open_image(path)


def test_detection_preview_of_a_dark_16_bit_image_stays_dark():
    from intenttuner.detection.preview import render_image

    preview = render_image(Image.fromarray(np.full((20, 30), DARK_16, np.uint16)), [])
    assert preview.mode == "RGB" and preview.size == (30, 20)
    assert np.asarray(preview).max() == round(DARK_16 / 257)  # not clipped to white
