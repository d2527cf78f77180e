"""Aspect-ratio buckets (intenttuner.training.buckets): the bucket list, which image goes where,
the too-small refusal, and images loaded for their bucket (modes, crops, orientation)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner.dataset.kohya_read import read_training_set
from intenttuner.errors import InputError
from intenttuner.training.buckets import (
    assign_buckets,
    bucket_sizes,
    closest_bucket,
    cover_crop,
    load_for_bucket,
    plan_buckets,
    upright_size,
)
from intenttuner.training.config import make_config
from tests.training_helpers import make_kohya_set


def config(**values):
    return make_config(base_model="base.safetensors", training_set="set", **values)


def kohya_set(root, sizes):
    return read_training_set(make_kohya_set(root, count=len(sizes), sizes=sizes))


# -- the bucket list ---------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [256, 512, 1024])
def test_buckets_follow_kohyas_rules(resolution):
    buckets = bucket_sizes(resolution)
    assert (resolution, resolution) in buckets
    assert buckets == sorted(set(buckets))
    for width, height in buckets:
        assert width % 64 == 0 and height % 64 == 0
        assert width * height <= resolution * resolution
        assert resolution // 2 <= min(width, height) and max(width, height) <= 2 * resolution
        assert (height, width) in buckets  # portrait and landscape alike


def test_buckets_at_512_are_kohyas_defaults():
    # kohya's make_bucket_resolutions((512, 512), 256, 1024, 64), written out
    assert bucket_sizes(512) == [
        (256, 832), (256, 896), (256, 960), (256, 1024), (320, 704), (320, 768), (384, 640),
        (448, 576), (512, 512), (576, 448), (640, 384), (704, 320), (768, 320), (832, 256),
        (896, 256), (960, 256), (1024, 256)]


def test_smallest_resolution_has_one_bucket():
    assert bucket_sizes(64) == [(64, 64)]


@pytest.mark.parametrize("resolution", [0, 100, 32])
def test_resolution_that_cannot_be_bucketed_is_refused(resolution):
    with pytest.raises(InputError, match="multiple of 64"):
        bucket_sizes(resolution)


def test_closest_bucket_compares_ratios_symmetrically():
    buckets = bucket_sizes(512)
    assert closest_bucket((1000, 1000), buckets) == (512, 512)
    assert closest_bucket((1920, 1080), buckets) == (640, 384)
    assert closest_bucket((1080, 1920), buckets) == (384, 640)
    assert closest_bucket((4000, 100), buckets) == (1024, 256)  # the widest there is


# -- assigning items -----------------------------------------------------------------------------


def test_each_aspect_ratio_gets_its_bucket(tmp_path):
    sizes = [(256, 256), (320, 192), (192, 320), (512, 128), (400, 240), (300, 290)]
    training_set = kohya_set(tmp_path / "set", sizes)
    buckets = assign_buckets(training_set, config(resolution=256), "sd15")
    assert buckets == [(256, 256), (320, 192), (192, 320), (512, 128), (320, 192), (256, 256)]
    plan = plan_buckets(training_set, config(resolution=256), "sd15")
    assert [size for size, _ in plan] == sizes


def test_buckets_off_is_a_square_centre_crop(tmp_path):
    training_set = kohya_set(tmp_path / "set", [(256, 256), (512, 256), (256, 400)])
    buckets = assign_buckets(training_set, config(resolution=256, buckets=False), "sd15")
    assert buckets == [(256, 256)] * 3


def test_the_models_own_resolution_is_the_default(tmp_path):
    training_set = kohya_set(tmp_path / "set", [(1024, 1024)])
    assert assign_buckets(training_set, config(), "sdxl") == [(1024, 1024)]
    assert assign_buckets(training_set, config(), "sd15") == [(512, 512)]


def test_images_smaller_than_their_bucket_are_refused_together(tmp_path):
    training_set = kohya_set(tmp_path / "set", [(256, 256), (150, 150), (130, 330)])
    with pytest.raises(InputError) as caught:
        assign_buckets(training_set, config(resolution=256), "sd15")
    message = str(caught.value)
    assert "img_1.png (150x150 < 256x256)" in message
    assert "img_2.png (130x330" in message and "img_0.png" not in message
    fits = int(re.search(r"lower resolution to (\d+) or turn on upscale_small_images",
                         message)[1])
    assert fits == 128
    # ...and the advice works: at that resolution nothing is refused
    assign_buckets(training_set, config(resolution=fits), "sd15")


def test_square_crops_refuse_images_with_a_short_side(tmp_path):
    training_set = kohya_set(tmp_path / "set", [(512, 200)])
    with pytest.raises(InputError, match="square crop.*lower resolution to 192"):
        assign_buckets(training_set, config(resolution=256, buckets=False), "sd15")


def test_images_below_the_smallest_bucket_can_only_be_upscaled(tmp_path):
    training_set = kohya_set(tmp_path / "set", [(32, 32)] * 12)
    with pytest.raises(InputError) as caught:
        assign_buckets(training_set, config(resolution=64), "sd15")
    message = str(caught.value)
    assert "12 training image(s)" in message and "... and 2 more" in message
    assert "turn on upscale_small_images" in message and "lower resolution" not in message


def test_upscale_small_images_accepts_and_upscales_them(tmp_path):
    training_set = kohya_set(tmp_path / "set", [(256, 256), (150, 150)])
    buckets = assign_buckets(training_set, config(resolution=256, upscale_small_images=True),
                             "sd15")
    assert buckets == [(256, 256), (256, 256)]
    image, original, crop = load_for_bucket(training_set.image_path(training_set.items[1]),
                                            buckets[1])
    assert image.shape == (3, 256, 256) and original == (150, 150) and crop == (0, 0)


def test_unreadable_images_are_named(tmp_path):
    training_set = kohya_set(tmp_path / "set", [(64, 64), (64, 64)])
    training_set.image_path(training_set.items[1]).write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot be read: 1_subject/img_1.png"):
        assign_buckets(training_set, config(resolution=64), "sd15")


# -- loading an image for its bucket ---------------------------------------------------------------


def three_bands(width, height, vertical=False):
    """Red, green, blue thirds side by side (stacked when ``vertical``)."""
    array = np.zeros((height, width, 3), np.uint8)
    length = height if vertical else width
    for band in range(3):
        part = slice(band * length // 3, (band + 1) * length // 3)
        if vertical:
            array[part, :, band] = 255
        else:
            array[:, part, band] = 255
    return Image.fromarray(array)


GREEN = torch.tensor([-1.0, 1.0, -1.0])


def test_centre_crop_of_a_wide_image(tmp_path):
    path = tmp_path / "wide.png"
    three_bands(384, 128).save(path)
    image, original, crop = load_for_bucket(path, (128, 128))
    assert image.shape == (3, 128, 128) and image.dtype == torch.float32
    assert original == (128, 384) and crop == (0, 128)
    assert torch.equal(image, GREEN[:, None, None].expand(3, 128, 128))


def test_centre_crop_of_a_tall_image_after_downscaling(tmp_path):
    path = tmp_path / "tall.png"
    three_bands(256, 768, vertical=True).save(path)
    image, original, crop = load_for_bucket(path, (128, 128))
    assert original == (768, 256) and crop == (128, 0)
    middle = image[:, 8:-8, :]  # away from the band edges, which the filter blends
    assert torch.allclose(middle, GREEN[:, None, None].expand_as(middle), atol=0.02)


def test_cover_crop_keeps_the_aspect_ratio():
    assert cover_crop((400, 240), (320, 192)) == ((320, 192), (0, 0))
    assert cover_crop((1000, 500), (512, 512)) == ((1024, 512), (0, 256))
    assert cover_crop((300, 1000), (256, 832)) == ((256, 853), (10, 0))


def test_downscaling_is_antialiased(tmp_path):
    # one-pixel black/white stripes average to mid grey; point sampling would keep them
    stripes = np.zeros((256, 256), np.uint8)
    stripes[:, ::2] = 255
    path = tmp_path / "stripes.png"
    Image.fromarray(stripes).save(path)
    image, _, _ = load_for_bucket(path, (64, 64))
    assert image.abs().max() < 0.1


def test_transparent_pixels_load_white(tmp_path):
    array = np.zeros((64, 64, 4), np.uint8)  # fully transparent black
    array[:32, :, :] = (255, 0, 0, 255)  # an opaque red top half
    path = tmp_path / "rgba.png"
    Image.fromarray(array, "RGBA").save(path)
    image, _, _ = load_for_bucket(path, (64, 64))
    assert torch.equal(image[:, :32], torch.tensor([1.0, -1.0, -1.0])[:, None, None]
                       .expand(3, 32, 64))
    assert torch.equal(image[:, 32:], torch.ones(3, 32, 64))


def test_greyscale_loads_as_three_equal_channels(tmp_path):
    grey = np.tile(np.arange(64, dtype=np.uint8)[None, :] * 4, (64, 1))
    path = tmp_path / "grey.png"
    Image.fromarray(grey, "L").save(path)
    image, _, _ = load_for_bucket(path, (64, 64))
    assert image.shape == (3, 64, 64)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    expected = torch.tensor(grey[0] / 255.0 * 2 - 1, dtype=torch.float32)
    assert torch.allclose(image[0, 0], expected, atol=1e-6)


def test_sixteen_bit_images_keep_their_precision(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((64, 64), 32768, np.uint16)).save(path)  # saved as I;16
    image, _, _ = load_for_bucket(path, (64, 64))
    expected = 32768 / 65535 * 2 - 1  # ~1.5e-5; read as 8-bit it would be 128/255*2-1 ~ 0.004
    assert torch.allclose(image, torch.full_like(image, expected), atol=1e-6)


def test_exif_orientation_counts_for_the_bucket(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view": stored portrait, shown landscape
    Image.new("RGB", (192, 320), "white").save(path, exif=exif)
    assert upright_size(path) == (320, 192)
    image, original, _ = load_for_bucket(path, (320, 192))
    assert image.shape == (3, 192, 320) and original == (192, 320)
