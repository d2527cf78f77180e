"""Painting masked regions out of images: one entry point over the inpainting backends.

    cleaned = inpaint(images, masks, "classical")                    # no weights at all
    cleaned = inpaint(images, masks, "lama", model=load_model("inpainter"))
    cleaned = inpaint(images, masks, "diffusion", settings, model=base_model)

`BACKENDS` maps a name to its `Backend` (each in its own module):

* ``classical`` — OpenCV ``cv2.inpaint`` (Telea or Navier-Stokes). No weights, milliseconds per
  image on a CPU, deterministic; smears the surroundings into the hole, so large holes in
  texture look blurred.
* ``lama`` — LaMa (big-lama, 0.2 GB, `intenttuner.families.inpainter`): what object-removal
  tools use; plausible texture and structure even for large holes. Measured on 2 CPU cores:
  about 1 s for a 208 px region (an 80 px object with its context), 5 s for 512 px; batched
  on a GPU.
* ``diffusion`` — the user's SD 1.5 / SDXL base model through diffusers' inpainting pipelines:
  the most "generative" and by far the slowest (20 steps of a full UNet, twice for guidance,
  plus a VAE round trip, per region), and the only one that can invent new content; the
  deleted concept is named in the negative prompt.

**Default: LaMa when a LaMa model is given, else classical** (`choose_backend`, the node's
"auto"). Removal quality matters here, because the fine-tuned model learns whatever is left in
the hole (a smear becomes part of "the face"); LaMa gives clean fills at a CPU-affordable cost,
while diffusion is far slower and can paint the concept right back. But inpainting must never
fail for want of weights, so without a LaMa model the weight-free classical fill is used, and
the summary says so. The library's plain default (`DEFAULT_BACKEND`) is classical for that reason.

Every backend returns pixels outside the mask unchanged (see `inpaint_base.paste`), works on
the mask's region plus context rather than the whole image, reports progress through the
runtime and stops on Cancel before each batch (the diffusion backend also between steps).
Images whose mask is empty are returned as they are, without running the model. A mask
covering the whole image leaves nothing to fill from: the classical backend paints it flat grey,
LaMa and diffusion invent a picture (`masks` warns about such images).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError
from ..imageio import ImageLike, to_rgb_array
from ..runtime import get_runtime
from . import inpaint_classical, inpaint_diffusion, inpaint_lama
from .inpaint_base import Backend, Crop, InpaintSettings, Region, cut, mask_box, paste

log = logging.getLogger(__name__)

BACKENDS: dict[str, Backend] = {
    b.name: b for b in (inpaint_classical.BACKEND, inpaint_lama.BACKEND, inpaint_diffusion.BACKEND)
}
DEFAULT_BACKEND = "classical"  # the one that needs nothing; see `choose_backend` for "auto"
AUTO = "auto"


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise InputError(f"Unknown inpainting backend '{name}'; choose one of "
                         f"{', '.join([AUTO, *BACKENDS])}.") from None


def choose_backend(name: str, inpainter: Any = None,
                   base_model: Any = None) -> tuple[Backend, Any, str]:
    """(backend, the model it runs with, a note for the summary) for the widget value ``name``.

    ``"auto"``: LaMa when ``inpainter`` is given, else classical (module docstring). A named
    backend that needs a model not given raises InputError saying which one to connect.
    """
    if name == AUTO:
        if inpainter is not None:
            return BACKENDS["lama"], inpainter, "auto: LaMa (a LaMa model is connected)"
        return (BACKENDS["classical"], None,
                "auto: classical OpenCV fill (connect Load Inpaint Model for LaMa's better fill)")
    backend = get_backend(name)
    model = {"inpainter": inpainter, "base_model": base_model}.get(backend.needs)
    if backend.needs and model is None:
        source = {"inpainter": "a LaMa model from Load Inpaint Model (LaMa) to the 'inpainter' "
                               "input", "base_model": "a base model from Load Base Model to the "
                                                      "'base_model' input"}[backend.needs]
        raise InputError(f"The {name} inpainting backend needs {source}. Connect it, or choose "
                         "the classical backend (no weights needed).")
    return backend, model, ""


def inpaint(images: Sequence[ImageLike], masks: Sequence[np.ndarray], backend: str | Backend,
            settings: InpaintSettings | None = None, model: Any = None,
            negatives: Sequence[str] | None = None,
            seeds: Sequence[int] | None = None) -> list[Image.Image]:
    """Fill the masked pixels of each image; every other pixel stays exactly as it was.

    ``images``: PIL images or arrays in any mode `intenttuner.imageio` reads (filled as 8-bit
    RGB). ``masks``: one H x W array per image, non-zero = fill. ``model``: what the backend
    needs (``Backend.needs``). ``negatives``: per image, what was removed there (the diffusion
    backend's negative prompt). ``seeds``: per image, the diffusion backend's seed (default
    ``settings.seed + i`` for the i-th image given; `removal` passes ``seed + source index``).
    Returns RGB PIL images, same sizes, in order.
    """
    backend = get_backend(backend) if isinstance(backend, str) else backend
    settings = settings or InpaintSettings()
    if backend.needs and model is None:
        raise InputError(f"The {backend.name} inpainting backend needs a model "
                         f"({backend.needs}); none was given.")
    if backend.check is not None:
        backend.check(model)
    arrays, holes = _validate(images, masks)
    negatives = list(negatives) if negatives is not None else [""] * len(arrays)
    if len(negatives) != len(arrays):
        raise InputError(f"{len(negatives)} negative prompts for {len(arrays)} images.")
    seeds = list(seeds) if seeds is not None else [settings.seed + i for i in range(len(arrays))]
    if len(seeds) != len(arrays):
        raise InputError(f"{len(seeds)} seeds for {len(arrays)} images.")
    regions: dict[int, Region] = {}
    for i, hole in enumerate(holes):
        box = mask_box(hole)
        if box is not None:
            regions[i] = backend.region(box, (hole.shape[1], hole.shape[0]), settings, model)
    results = list(arrays)
    started = time.perf_counter()
    rt = get_runtime()
    with rt.progress(total=len(regions), desc=f"Inpainting ({backend.title})") as bar:
        for batch in _batches(regions, settings.batch_size if backend.batched else 1):
            rt.check_interrupted()
            crops = [Crop(*cut(arrays[i], holes[i], regions[i]), negative=negatives[i],
                          seed=seeds[i]) for i in batch]
            filled = backend.fill(crops, settings, model)
            for i, pixels in zip(batch, filled, strict=True):
                results[i] = paste(arrays[i], holes[i], regions[i], pixels)
            bar.update(len(batch))
    log.info("inpainted %d of %d image(s) with %s in %.2f s", len(regions), len(arrays),
             backend.name, time.perf_counter() - started)
    return [Image.fromarray(a) for a in results]


def _validate(images: Sequence[ImageLike],
              masks: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if len(images) != len(masks):
        raise InputError(f"{len(images)} images but {len(masks)} masks; give one mask per "
                         "image.")
    arrays = [to_rgb_array(image) for image in images]
    holes = []
    for i, (pixels, mask) in enumerate(zip(arrays, masks, strict=True)):
        mask = np.asarray(mask)
        if mask.shape != pixels.shape[:2]:
            raise InputError(f"Image {i} and its mask must be the same size: image "
                             f"{pixels.shape[1]}x{pixels.shape[0]}, mask "
                             f"{mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]}.")
        holes.append(mask != 0)
    return arrays, holes


def _batches(regions: dict[int, Region], size: int) -> list[list[int]]:
    """Image indices grouped by work size (in first-seen order), in chunks of ``size``."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, region in regions.items():
        groups.setdefault(region.work, []).append(i)
    return [members[k:k + size] for members in groups.values()
            for k in range(0, len(members), size)]
