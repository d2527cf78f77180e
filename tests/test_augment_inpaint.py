"""Inpainting backends: for every backend, pixels outside the mask are the input's own and
pixels inside change; images of different sizes in one call; Cancel stops mid-way; the learned
and diffusion backends run models loaded through their real loaders (random LaMa, tiny SD)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner import runtime
from intenttuner.augment.inpaint import BACKENDS, choose_backend, inpaint
from intenttuner.augment.inpaint_base import InpaintSettings, Region, cut, paste, plan_region
from intenttuner.augment.inpaint_diffusion import native_side
from intenttuner.augment.masks import dilate
from intenttuner.augment.removal import remove_deleted
from intenttuner.augment.types import Augmented, AugmentPlan, CropItem
from intenttuner.detection.types import Detection, Detections, ImageDetections
from intenttuner.errors import InputError
from intenttuner.families import FAMILIES
from intenttuner.families.inpainter import LamaModel
from intenttuner.intent.schema import Intent
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny.base_model import make_tiny_sdxl_checkpoint

RED = (230, 20, 20)
# diffusion: 2 steps at 64 px on the tiny model (it declares SD 1.5's 512 px native size)
FAST = InpaintSettings(steps=2, min_context_px=8, work_side=64)


def scene(width: int, height: int, centre, radius: int, seed: int = 0):
    """A smooth grey-green gradient with a red disc; returns (image, dilated disc mask)."""
    ys, xs = np.mgrid[:height, :width]
    base = np.stack([90 + 60 * xs / width, 110 + 40 * ys / height,
                     np.full_like(xs, 100.0, dtype=float)], -1)
    noise = np.random.default_rng(seed).normal(0, 2, base.shape)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    disc = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius ** 2
    pixels[disc] = RED
    return pixels, dilate(disc, 3)


def scenes():
    """Three images of different sizes (one taller than wide, one larger)."""
    return [scene(96, 64, (40, 30), 10), scene(50, 70, (25, 40), 8, seed=1),
            scene(200, 120, (150, 60), 18, seed=2)]


@pytest.fixture(scope="module")
def lama(tmp_path_factory):
    path = TINY_BUILDERS["inpainter"](tmp_path_factory.mktemp("inpaint"))
    return FAMILIES["inpainter"].load(path)


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    path = TINY_BUILDERS["base_model"](tmp_path_factory.mktemp("checkpoints"))
    return FAMILIES["base_model"].load(path, precision="fp32")


@pytest.fixture
def model_for(request):
    """backend name -> the model it runs with (None, or the module fixture loaded above)."""
    fixtures = {"inpainter": "lama", "base_model": "sd15"}

    def get(name: str):
        needs = BACKENDS[name].needs
        return request.getfixturevalue(fixtures[needs]) if needs else None
    return get


def red_pixels(pixels: np.ndarray) -> int:
    p = pixels.astype(int)
    return int(((p[..., 0] > 180) & (p[..., 1] < 80) & (p[..., 2] < 80)).sum())


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_only_masked_pixels_change_for_images_of_different_sizes(backend, model_for):
    pairs = scenes()
    images = [Image.fromarray(p) for p, _ in pairs]
    masks = [m for _, m in pairs]
    out = inpaint(images, masks, backend, FAST, model=model_for(backend),
                  negatives=["red disc"] * 3)

    assert [o.size for o in out] == [i.size for i in images]
    for (before, mask), after in zip(pairs, out, strict=True):
        after = np.asarray(after).astype(int)
        diff = np.abs(after - before.astype(int))
        assert diff[~mask].max() == 0, "a pixel outside the mask changed"
        assert (diff[mask].max(-1) > 2).mean() > 0.5, "the masked pixels were not filled"
    if backend == "classical":  # OpenCV fills from the surroundings: the red disc is gone
        assert all(red_pixels(np.asarray(o)) == 0 for o in out)
        assert all(red_pixels(p) > 100 for p, _ in pairs)


@pytest.mark.parametrize("method", ["telea", "navier-stokes"])
def test_classical_methods_fill_with_the_surroundings_colour(method):
    pixels, mask = scene(96, 64, (40, 30), 10)
    out = np.asarray(inpaint([pixels], [mask], "classical", InpaintSettings(method=method))[0])
    ring = dilate(mask, 4) & ~mask
    assert np.abs(out[mask].mean(0) - pixels[ring].mean(0)).max() < 12


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_mask_covering_the_whole_image_is_filled_by_every_backend(backend, model_for):
    pixels, _ = scene(48, 40, (24, 20), 12)
    full = np.ones(pixels.shape[:2], dtype=bool)
    out = np.asarray(inpaint([pixels], [full], backend, FAST, model=model_for(backend))[0])
    assert red_pixels(pixels) > 100
    assert (np.abs(out.astype(int) - pixels).max(-1) > 2).mean() > 0.5, "the image was kept"
    if backend == "classical":  # nothing to smear in: a flat neutral grey, the disc gone
        assert (out == 128).all() and red_pixels(out) == 0


class Exploding(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, *args):
        raise AssertionError("the model ran on an image with nothing to fill")


def test_empty_masks_leave_images_untouched_without_running_the_model():
    pixels, _ = scene(64, 48, (30, 20), 6)
    empty = np.zeros(pixels.shape[:2], dtype=bool)
    out = inpaint([pixels], [empty], "lama", model=LamaModel(Exploding(), Path("none")))
    np.testing.assert_array_equal(np.asarray(out[0]), pixels)


def test_lama_batch_gives_the_same_result_as_one_at_a_time(lama):
    pairs = [scene(96, 64, (40, 30), 10), scene(96, 64, (50, 34), 10, seed=3)]
    images, masks = [p for p, _ in pairs], [m for _, m in pairs]
    one = inpaint(images, masks, "lama", InpaintSettings(batch_size=1), model=lama)
    batched = inpaint(images, masks, "lama", InpaintSettings(batch_size=2), model=lama)
    for a, b in zip(one, batched, strict=True):
        assert np.abs(np.asarray(a).astype(int) - np.asarray(b)).max() <= 1


def test_lama_works_on_a_small_region_of_a_large_photo(lama):
    pixels, mask = scene(3000, 2000, (2500, 300), 20)
    out = np.asarray(inpaint([pixels], [mask], "lama", model=lama)[0]).astype(int)
    diff = np.abs(out - pixels)
    assert diff[~mask].max() == 0 and (diff[mask].max(-1) > 2).mean() > 0.5


def test_diffusion_with_a_9_channel_inpainting_unet(sd15):
    from diffusers import UNet2DConditionModel

    config = dict(sd15.unet.config, in_channels=9)
    unet = UNet2DConditionModel.from_config(config).eval()
    model = dataclasses.replace(sd15, unet=unet, _managed={})
    pixels, mask = scene(96, 64, (40, 30), 10)
    out = np.asarray(inpaint([pixels], [mask], "diffusion", FAST, model=model)[0]).astype(int)
    diff = np.abs(out - pixels)
    assert diff[~mask].max() == 0 and (diff[mask].max(-1) > 2).mean() > 0.5


def test_diffusion_with_sdxl(tmp_path):
    model = FAMILIES["base_model"].load(make_tiny_sdxl_checkpoint(tmp_path), precision="fp32")
    pixels, mask = scene(80, 64, (40, 30), 10)
    out = np.asarray(inpaint([pixels], [mask], "diffusion", FAST, model=model,
                             negatives=["necklace"])[0]).astype(int)
    diff = np.abs(out - pixels)
    assert diff[~mask].max() == 0 and (diff[mask].max(-1) > 2).mean() > 0.5


def test_diffusion_results_do_not_depend_on_batching(sd15):
    pairs = [scene(96, 64, (40, 30), 10), scene(96, 64, (50, 34), 10, seed=3)]
    images, masks = [p for p, _ in pairs], [m for _, m in pairs]
    one = inpaint(images, masks, "diffusion", dataclasses.replace(FAST, batch_size=1),
                  model=sd15)
    both = inpaint(images, masks, "diffusion", FAST, model=sd15)
    for a, b in zip(one, both, strict=True):
        assert np.abs(np.asarray(a).astype(int) - np.asarray(b)).max() <= 2


class Interrupted(Exception):
    pass


class Cancelling(runtime.TorchRuntime):
    """Presses Cancel at the ``after``-th check (as ComfyUI's interrupt does)."""

    def __init__(self, after: int):
        super().__init__()
        self.after, self.checks = after, 0

    def check_interrupted(self) -> None:
        self.checks += 1
        if self.checks >= self.after:
            raise Interrupted


@pytest.fixture
def cancel_at():
    previous = runtime.get_runtime()

    def install(after: int) -> Cancelling:
        rt = Cancelling(after)
        runtime.set_runtime(rt)
        return rt

    yield install
    runtime.set_runtime(previous)


@pytest.mark.parametrize(("backend", "after"), [("classical", 2), ("lama", 2), ("diffusion", 2)])
def test_cancel_stops_inpainting_mid_way(backend, after, model_for, cancel_at):
    model = model_for(backend)
    pairs = scenes()
    rt = cancel_at(after)
    with pytest.raises(Interrupted):
        inpaint([p for p, _ in pairs], [m for _, m in pairs], backend, FAST, model=model)
    assert rt.checks == after  # it stopped at the check that raised, with work left to do


def test_diffusion_checks_for_cancel_between_denoising_steps(sd15, cancel_at):
    pixels, mask = scene(96, 64, (40, 30), 10)
    rt = cancel_at(3)  # 1: before the batch; 2, 3: after the first and second step
    with pytest.raises(Interrupted):
        inpaint([pixels], [mask], "diffusion", dataclasses.replace(FAST, steps=5), model=sd15)
    assert rt.checks == 3


def test_auto_prefers_lama_and_falls_back_to_classical(lama):
    assert choose_backend("auto", inpainter=lama)[0].name == "lama"
    backend, model, note = choose_backend("auto")
    assert backend.name == "classical" and model is None and "Load Inpaint Model" in note


@pytest.mark.parametrize(("backend", "input_name"), [("lama", "'inpainter'"),
                                                     ("diffusion", "'base_model'")])
def test_a_backend_without_its_model_names_the_missing_input(backend, input_name):
    with pytest.raises(InputError, match=input_name):
        choose_backend(backend)


def test_wrong_model_objects_and_sizes_are_refused(lama, sd15):
    pixels, mask = scene(64, 48, (30, 20), 6)
    with pytest.raises(InputError, match="needs a LaMa model"):
        inpaint([pixels], [mask], "lama", model=sd15)
    with pytest.raises(InputError, match="needs a base model"):
        inpaint([pixels], [mask], "diffusion", model=lama)
    with pytest.raises(InputError, match="same size"):
        inpaint([pixels], [mask[:, :10]], "classical")
    with pytest.raises(InputError, match="Unknown inpainting backend 'magic'"):
        inpaint([pixels], [mask], "magic")


def test_region_grows_into_real_pixels_to_a_multiple_of_8():
    region = plan_region((50, 40, 61, 53), (200, 100), context=4, scale=1.0, multiple=8)
    x0, y0, x1, y1 = region.box
    assert region.work == region.fit == (x1 - x0, y1 - y0) == (24, 24)
    assert x0 <= 46 and x1 >= 65 and y0 <= 36 and y1 >= 57


def test_region_is_padded_only_where_the_image_is_too_small():
    region = plan_region((2, 2, 10, 10), (13, 30), context=3, scale=1.0, multiple=8,
                         minimum=16)
    assert region.box[0] == 0 and region.box[2] == 13 and region.work == (16, 16)
    image = np.random.default_rng(0).integers(0, 255, (30, 13, 3), dtype=np.uint8)
    mask = np.zeros((30, 13), dtype=bool)
    mask[2:10, 2:10] = True
    pixels, hole = cut(image, mask, region)
    assert pixels.shape == (16, 16, 3) and not hole[:, 13:].any()
    filled = np.zeros_like(pixels)
    out = paste(image, mask, region, filled)
    assert (out[mask] == 0).all() and np.array_equal(out[~mask], image[~mask])


def test_large_regions_are_downscaled_for_lama(lama):
    settings = InpaintSettings(max_side=256)
    region = BACKENDS["lama"].region((100, 100, 900, 700), (1000, 800), settings, lama)
    assert max(region.work) <= 256 + 8 and region.work[0] % 8 == region.work[1] % 8 == 0
    assert isinstance(region, Region)


def test_diffusion_works_at_the_models_native_resolution(sd15):
    native = BACKENDS["diffusion"].region((10, 10, 30, 20), (200, 100), InpaintSettings(), sd15)
    assert native_side(sd15) == 512 and max(native.work) == 512  # SD 1.5: 64 latents x 8
    assert max(BACKENDS["diffusion"].region((10, 10, 30, 20), (200, 100), FAST,
                                            sd15).work) == 64


def removal_inputs(deleted: list[int]):
    """Two sources (different sizes) with a red disc each, an original item per source, and a
    necklace (delete) detection on the sources in ``deleted``."""
    pairs = [scene(96, 64, (40, 30), 10), scene(50, 70, (25, 40), 8, seed=1)]
    items, images = [], []
    for i, (_, mask) in enumerate(pairs):
        height, width = mask.shape
        items.append(CropItem(source_index=i, source_name=f"img_{i}.jpg", operation="original",
                              region=(0, 0, width, height), out_size=(width, height),
                              resample="none", group="original"))
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
        found = [Detection(concept="necklace", phrase="necklace", box=box, score=0.9)]
        images.append(ImageDetections(index=i, size=(width, height),
                                      detections=found if i in deleted else []))
    augmented = Augmented(plan=AugmentPlan(items=items),
                          sources=[Image.fromarray(p) for p, _ in pairs])
    detections = Detections(images=images, box_threshold=0.3, text_threshold=0.25)
    intent = Intent(description="Never a necklace.", trigger_words=["v"], domain="portrait",
                    concepts=[{"name": "necklace", "phrase": "necklace",
                               "granularity": "instance", "operation": "delete"}])
    return augmented, detections, intent


def test_diffusion_seeds_follow_the_source_index_not_the_masked_images(sd15):
    def cleaned(deleted):
        removal = remove_deleted(*removal_inputs(deleted), backend="diffusion",
                                 settings=dataclasses.replace(FAST, seed=7), base_model=sd15)
        return np.asarray(removal.augmented.sources[1])

    alone, after_another = cleaned([1]), cleaned([0, 1])
    np.testing.assert_array_equal(alone, after_another)
    # the seed does matter: image 1 filled with image 0's seed comes out different
    shifted = remove_deleted(*removal_inputs([1]), backend="diffusion",
                             settings=dataclasses.replace(FAST, seed=6), base_model=sd15)
    assert not np.array_equal(np.asarray(shifted.augmented.sources[1]), alone)
