"""Load Training Images' library: every hostile file loaded or skipped with its reason, the size
policy, conversions, duplicates, order, and choosing the folder."""

from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from intenttuner.dataset import image_decode as d
from intenttuner.dataset.folders import TYPE_A_PATH, list_subfolders, resolve_folder
from intenttuner.dataset.image_folder import load_image_folder
from intenttuner.errors import InputError
from tests.dataset_helpers import noise, png_header_only, truncated, write

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def load_one(tmp_path, name: str, data: bytes, **kwargs):
    """Load a folder holding one good image and ``name``; returns (result, skip or None)."""
    write(tmp_path, "0_good.png", encoded(noise(100, 100), "PNG"))
    write(tmp_path, name, data)
    result = load_image_folder(tmp_path, **kwargs)
    skipped = {s.name: s for s in result.skipped}
    return result, skipped.get(name)


def loaded_image(result, name: str) -> Image.Image:
    return result.images[result.names.index(name)]


@pytest.mark.parametrize(("name", "data", "kind"), [
    ("empty.png", b"", d.EMPTY),
    ("truncated.png", truncated(noise(300, 300), "PNG"), d.TRUNCATED),
    ("truncated.jpg", truncated(noise(300, 300), "JPEG"), d.TRUNCATED),
    ("text.jpg", b"this is a text file with a jpg name\n", d.NOT_AN_IMAGE),
    ("caption.txt", b"a caption", d.NOT_AN_IMAGE),
    ("bomb.png", png_header_only(100_000, 100_000), d.BOMB),  # PIL's own error
    ("120mp.png", png_header_only(12_000, 10_000), d.BOMB),  # PIL only warns; our limit
    ("one pixel.png", encoded(Image.new("RGB", (1, 1)), "PNG"), d.TOO_SMALL),
    ("strip.png", encoded(Image.new("RGB", (8, 4000)), "PNG"), d.TOO_SMALL),
    ("tall.png", encoded(Image.new("RGB", (64, 600)), "PNG"), d.EXTREME_ASPECT),  # 9.4:1
])
def test_hostile_file_is_skipped_with_its_reason(tmp_path, name, data, kind):
    start = time.monotonic()
    result, skip = load_one(tmp_path, name, data)
    assert time.monotonic() - start < 5  # bombs are refused unread, never decoded
    assert skip is not None and skip.kind == kind, result.report()
    assert result.names == ["0_good.png"]
    assert f"{name} ({kind}" in result.report()


def test_randomly_damaged_files_never_crash_the_run(tmp_path):
    """Byte flips and cuts in every format: each file is loaded or skipped with a known kind."""
    rng = np.random.default_rng(0)
    for fmt, ext in [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("GIF", "gif"),
                     ("TIFF", "tif"), ("BMP", "bmp")]:
        data = np.frombuffer(encoded(noise(150, 120, 1), fmt), np.uint8)
        for i in range(20):
            damaged = data.copy()
            spots = rng.integers(0, len(damaged), rng.integers(1, 20))
            damaged[spots] = rng.integers(0, 256, len(spots))
            if i % 3 == 0:
                damaged = damaged[: rng.integers(1, len(damaged))]
            write(tmp_path, f"{ext}_{i}.{ext}", damaged.tobytes())
    write(tmp_path, "zz_good.png", encoded(noise(100, 100, 2), "PNG"))
    result = load_image_folder(tmp_path)
    assert len(result.images) + len(result.skipped) == result.considered == 121
    assert {s.kind for s in result.skipped} <= set(d.SKIP_KINDS)
    assert "zz_good.png" in result.names


def test_aspect_and_size_limits_on_both_sides(tmp_path):
    write(tmp_path, "64x64.png", encoded(Image.new("RGB", (64, 64)), "PNG"))
    write(tmp_path, "63x64.png", encoded(Image.new("RGB", (63, 64)), "PNG"))
    write(tmp_path, "8to1.png", encoded(Image.new("RGB", (800, 100)), "PNG"))
    write(tmp_path, "8.1to1.png", encoded(Image.new("RGB", (810, 100)), "PNG"))
    result = load_image_folder(tmp_path)
    assert sorted(result.names) == ["64x64.png", "8to1.png"]
    kinds = {s.name: s.kind for s in result.skipped}
    assert kinds == {"63x64.png": d.TOO_SMALL, "8.1to1.png": d.EXTREME_ASPECT}


def test_every_common_format_loads(tmp_path):
    pictures = {}
    for seed, (fmt, ext) in enumerate([("PNG", "png"), ("JPEG", "jpg"), ("JPEG", "jpeg"),
                                       ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif"),
                                       ("TIFF", "tiff")]):
        pictures[f"x.{ext}"] = noise(120, 90, seed)  # distinct, or they are duplicates
        kwargs = {"lossless": True} if fmt == "WEBP" else {}
        write(tmp_path, f"x.{ext}", encoded(pictures[f"x.{ext}"], fmt, **kwargs))
    frames = [Image.new("RGB", (100, 80), RED), Image.new("RGB", (100, 80), BLUE)]
    write(tmp_path, "anim.gif", encoded(frames[0], "GIF", save_all=True,
                                        append_images=frames[1:]))
    result = load_image_folder(tmp_path)
    assert not result.skipped, result.report()
    for name in ["x.png", "x.bmp", "x.tif", "x.tiff", "x.webp"]:  # lossless: exact pixels
        assert np.array_equal(np.asarray(loaded_image(result, name)),
                              np.asarray(pictures[name]))
    assert loaded_image(result, "anim.gif").getpixel((5, 5)) == RED  # the first frame
    assert ("anim.gif", "P -> RGB, first of 2 frames") in result.converted


def test_heic_without_pillow_heif_says_what_to_install(tmp_path):
    try:
        import pillow_heif  # noqa: F401
        pytest.skip("pillow-heif is installed here: HEIC files load")
    except ImportError:
        pass
    _, skip = load_one(tmp_path, "IMG_0001.HEIC", b"\0\0\0\x18ftypheic" + b"\0" * 64)
    assert skip.kind == d.UNSUPPORTED and "pip install pillow-heif" in skip.detail


def test_modes_become_rgb_by_bit_depth_with_transparency_on_white(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgba = Image.new("RGBA", (80, 80), (255, 0, 0, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 40, 80))  # left half transparent black
    write(tmp_path, "rgba.png", encoded(rgba, "PNG"))
    write(tmp_path, "cmyk.jpg", encoded(Image.new("CMYK", (80, 80), (0, 255, 255, 0)), "JPEG",
                                        quality=100))
    palette = Image.new("RGB", (80, 80), BLUE).convert("P", palette=Image.Palette.ADAPTIVE)
    write(tmp_path, "palette.png", encoded(palette, "PNG"))
    grey16 = Image.new("I;16", (80, 80))
    grey16.putdata([16384] * 6400)  # a quarter of 65535: dark, must stay dark
    write(tmp_path, "grey16.png", encoded(grey16, "PNG"))
    colour16 = np.zeros((80, 80, 3), np.uint16)
    colour16[..., 2] = 16384  # OpenCV writes BGR: red channel at a quarter
    write(tmp_path, "colour16.png", cv2.imencode(".png", colour16)[1].tobytes())

    result = load_image_folder(tmp_path)
    assert not result.skipped, result.report()
    assert all(image.mode == "RGB" for image in result.images)
    image = loaded_image(result, "rgba.png")
    assert image.getpixel((10, 10)) == WHITE and image.getpixel((70, 10)) == RED
    assert ("rgba.png", "RGBA -> RGB, transparency on white") in result.converted
    r, g, b = loaded_image(result, "cmyk.jpg").getpixel((40, 40))
    assert r > 240 and g < 15 and b < 15
    assert loaded_image(result, "palette.png").getpixel((5, 5)) == BLUE
    assert loaded_image(result, "grey16.png").getpixel((5, 5)) == (64, 64, 64)
    assert loaded_image(result, "colour16.png").getpixel((5, 5)) == (64, 0, 0)


def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (200, 100), RED)
    stored.paste(BLUE, (100, 0, 200, 100))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    write(tmp_path, "phone.jpg", encoded(stored, "JPEG", exif=exif.tobytes(), quality=95))
    result = load_image_folder(tmp_path)
    image = loaded_image(result, "phone.jpg")
    assert image.size == (100, 200)  # upright: portrait
    top, bottom = image.getpixel((50, 20)), image.getpixel((50, 180))
    assert top[0] > 200 and top[2] < 60  # the stored left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert ("phone.jpg", "EXIF orientation 6 applied") in result.converted


def test_a_6000px_jpeg_is_loaded_downscaled_and_reported(tmp_path):
    ramp = np.linspace(0, 255, 6000, dtype=np.float32)
    pixels = np.stack([np.broadcast_to(ramp, (6000, 6000)),
                       np.broadcast_to(ramp[:, None], (6000, 6000)),
                       np.full((6000, 6000), 128, np.float32)], axis=2).astype(np.uint8)
    write(tmp_path, "big.jpg", encoded(Image.fromarray(pixels), "JPEG", quality=90))
    del pixels
    start = time.monotonic()
    result = load_image_folder(tmp_path)
    assert time.monotonic() - start < 10
    image = loaded_image(result, "big.jpg")
    assert image.size == (2048, 2048)
    assert result.resized == [("big.jpg", (6000, 6000), (2048, 2048))]
    assert "resized: big.jpg 6000x6000 -> 2048x2048" in result.report()
    # the content survived draft decoding + Lanczos: left dark, right bright (red ramp)
    assert image.getpixel((20, 1000))[0] < 20 and image.getpixel((2028, 1000))[0] > 235
    assert abs(image.getpixel((1024, 1024))[2] - 128) <= 3
    full = load_image_folder(tmp_path, max_side=0)
    assert full.images[0].size == (6000, 6000) and not full.resized


def test_names_with_spaces_and_non_ascii_letters_are_kept(tmp_path):
    for i, name in enumerate(["mon été 1.png", "写真 2.jpg", "Ünïcødé.webp"]):
        write(tmp_path, name, encoded(noise(90, 90, i), name.rsplit(".", 1)[1].replace(
            "jpg", "jpeg").upper()))
    result = load_image_folder(tmp_path)
    assert set(result.names) == {"mon été 1.png", "写真 2.jpg", "Ünïcødé.webp"}
    assert not result.skipped


def test_exact_duplicates_are_dropped_and_named_with_the_first_copy(tmp_path):
    data = encoded(noise(100, 100, 7), "PNG")
    write(tmp_path, "a.png", data)
    write(tmp_path, "c.png", data)
    write(tmp_path, "b.png", encoded(noise(100, 100, 8), "PNG"))
    # the same pixels in another container are not an exact duplicate
    write(tmp_path, "a.bmp", encoded(noise(100, 100, 7), "BMP"))
    result = load_image_folder(tmp_path)
    assert result.names == ["a.bmp", "a.png", "b.png"]
    assert result.duplicates == [("c.png", "a.png")]
    assert [s.kind for s in result.skipped] == [d.DUPLICATE]
    assert result.report().startswith("3 of 4 loaded")
    assert "duplicates: c.png = a.png" in result.report()


def test_natural_sorted_deterministic_order_and_recursion(tmp_path):
    for seed, name in enumerate(["img10.png", "img2.png", "IMG1.png", "sub/img3.png",
                                 "sub/deeper/x.png", ".hidden.png", "Thumbs.db",
                                 ".git/objects.png"]):
        write(tmp_path, name, encoded(noise(70, 70, seed), "PNG"))
    flat = load_image_folder(tmp_path)
    assert flat.names == ["IMG1.png", "img2.png", "img10.png"]
    assert flat.considered == 3  # hidden and system files are not counted
    deep = load_image_folder(tmp_path, recursive=True)
    assert deep.names == ["IMG1.png", "img2.png", "img10.png", "sub/deeper/x.png",
                          "sub/img3.png"]


def test_report_lists_counts_skips_duplicates_and_resizes(tmp_path):
    write(tmp_path, "a.jpg", encoded(noise(100, 100), "JPEG"))
    shutil.copy(tmp_path / "a.jpg", tmp_path / "c.jpg")
    write(tmp_path, "a.txt", b"caption")
    write(tmp_path, "b.png", truncated(noise(200, 200), "PNG"))
    write(tmp_path, "big.png", encoded(Image.new("RGB", (3000, 1500)), "PNG"))
    lines = load_image_folder(tmp_path).report().splitlines()
    assert lines[0] == f"2 of 5 loaded from {tmp_path}"
    assert lines[1].startswith("skipped: a.txt (not an image), b.png (truncated")
    assert lines[2] == "duplicates: c.jpg = a.jpg"
    assert lines[3] == "resized: big.png 3000x1500 -> 2048x1024"


def test_zero_usable_images_is_an_error_naming_the_folder_and_each_reason(tmp_path):
    write(tmp_path, "notes.txt", b"x")
    write(tmp_path, "empty.jpg", b"")
    write(tmp_path, "tiny.png", encoded(Image.new("RGB", (4, 4)), "PNG"))
    with pytest.raises(InputError) as info:
        load_image_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "notes.txt: not an image" in message
    assert "empty.jpg: empty file" in message
    assert "tiny.png: too small" in message
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no files"):
        load_image_folder(empty)


def test_policy_is_validated():
    with pytest.raises(InputError, match="max_side 32"):
        d.DecodePolicy(max_side=32)


# --- choosing the folder --------------------------------------------------------------------


def test_dropdown_lists_input_subfolders_naturally_sorted(tmp_path):
    for name in ["shoot10", "shoot2", "a/b", ".cache"]:
        (tmp_path / name).mkdir(parents=True)
    assert list_subfolders(tmp_path) == ["a", "a/b", "shoot2", "shoot10"]
    assert list_subfolders(tmp_path / "missing") == []


def test_folder_choice_errors_are_clear(tmp_path):
    (tmp_path / "shoot").mkdir()
    write(tmp_path, "file.png", b"x")
    assert resolve_folder("shoot", "", tmp_path) == tmp_path / "shoot"
    outside = tmp_path.parent / "elsewhere"
    outside.mkdir(exist_ok=True)
    assert resolve_folder("shoot", f"  {outside}  ", tmp_path) == outside  # typed path wins
    assert resolve_folder(TYPE_A_PATH, "shoot", tmp_path) == tmp_path / "shoot"  # relative
    with pytest.raises(InputError, match="does not exist"):
        resolve_folder("gone", "", tmp_path)
    with pytest.raises(InputError, match="is a file, not a folder"):
        resolve_folder("file.png", "", tmp_path)
    for escape in ["../elsewhere", "shoot/../../elsewhere", str(outside), "C:\\x"]:
        with pytest.raises(InputError, match="is not allowed"):
            resolve_folder(escape, "", tmp_path)
    with pytest.raises(InputError, match="or type a path"):
        resolve_folder(TYPE_A_PATH, " ", tmp_path)


@pytest.mark.parametrize(("fmt", "drafts"), [("JPEG", True), ("MPO", True), ("PNG", False),
                                             ("WEBP", False)])
def test_only_jpeg_and_mpo_take_the_draft_path(fmt, drafts):
    kwargs = {"save_all": True, "append_images": [noise(96, 64, 2)]} if fmt == "MPO" else {}
    with Image.open(io.BytesIO(encoded(noise(96, 64), fmt, **kwargs))) as image:
        assert image.format == fmt and d.can_draft(image) is drafts


def test_a_phone_mpo_jpeg_is_draft_decoded(tmp_path, monkeypatch):
    # Phones write a depth map or preview as a second picture: Pillow opens the file as MPO.
    from PIL import JpegImagePlugin

    calls = []
    original = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda self, mode, size: calls.append(size) or original(self, mode, size))
    data = encoded(noise(1024, 768), "MPO", save_all=True, append_images=[noise(1024, 768, 2)])
    write(tmp_path, "IMG_0001.jpg", data)
    result = load_image_folder(tmp_path, max_side=256)
    assert calls == [(256, 192)]
    assert result.images[0].size == (256, 192)
    assert result.resized == [("IMG_0001.jpg", (1024, 768), (256, 192))]
