"""The LaMa backend: the learned removal model (``intenttuner.families.inpainter``).

Work region: the mask's box plus context (half its longer side, at least 64 px: LaMa's Fourier
convolutions use the whole region, and more real surroundings give a better fill), downscaled
only when longer than ``max_side`` (1024 px by default; LaMa generalises well beyond its 256 px
training size, and upscaling small regions would only make it slower), in multiples of 8 grown
into real image pixels. Regions of the same work size are filled in one batched call: batch
norm runs on its fixed statistics, so a region's result does not depend on its batch mates.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..families.inpainter import MIN_SIDE, MULTIPLE, LamaModel
from .inpaint_base import Backend, Box, Crop, InpaintSettings, Region, learned_region


def _region(box: Box, size: tuple[int, int], settings: InpaintSettings, model) -> Region:
    return learned_region(box, size, settings, settings.max_side, MULTIPLE, MIN_SIDE,
                          upscale=False)


def _fill(crops: list[Crop], settings: InpaintSettings, model: LamaModel) -> list[np.ndarray]:
    images = torch.from_numpy(np.stack([c.image for c in crops])).permute(0, 3, 1, 2)
    masks = torch.from_numpy(np.stack([c.mask for c in crops]))[:, None]
    out = model.inpaint(images.float() / 255, masks.float())
    pixels = (out.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    return list(pixels)


def _check(model) -> None:
    if not isinstance(model, LamaModel):
        raise InputError(f"The lama backend needs a LaMa model (from Load Inpaint Model), got "
                         f"{type(model).__name__}.")


BACKEND = Backend(name="lama", title="LaMa", needs="inpainter", region=_region, fill=_fill,
                  batched=True, check=_check)
