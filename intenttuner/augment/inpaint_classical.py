"""The classical backend: OpenCV's ``cv2.inpaint``, no weights at all.

Two named methods: "telea" (Telea 2004, fast marching: each hole pixel is a weighted average of
known pixels within ``radius``, filled from the border inwards) and "navier-stokes"
(Bertalmio et al. 2001: isophotes continued into the hole). Both smear the surroundings into the
hole, which is fine for small objects on plain backgrounds and visibly blurry for large holes in
texture, where LaMa does much better. They only read pixels within ``radius`` of the hole, so
the work region is the mask's box plus ``radius + 2`` px, at full resolution.

With nothing known (the mask covers the whole image) there is nothing to smear in, and
``cv2.inpaint`` would return the input unchanged, deleted concept included; such an image is
filled flat `NEUTRAL_GREY` instead (`masks` warns about it: leave the image out of the set).
"""

from __future__ import annotations

import numpy as np

from .inpaint_base import Backend, Box, Crop, InpaintSettings, Region, plan_region

# The fill of a hole with no known pixel around it: mid grey, which carries none of the deleted
# concept's colours (the image's own mean would).
NEUTRAL_GREY = (128, 128, 128)


def _region(box: Box, size: tuple[int, int], settings: InpaintSettings, model) -> Region:
    return plan_region(box, size, context=settings.radius + 2, scale=1.0, multiple=1)


def _fill(crops: list[Crop], settings: InpaintSettings, model) -> list[np.ndarray]:
    import cv2

    flag = cv2.INPAINT_TELEA if settings.method == "telea" else cv2.INPAINT_NS
    # cv2.inpaint treats channels alike, so RGB order needs no conversion
    return [cv2.inpaint(c.image, c.mask.astype(np.uint8) * 255, settings.radius, flag)
            if not c.mask.all() else _flat(c.image) for c in crops]


def _flat(image: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.array(NEUTRAL_GREY, dtype=np.uint8), image.shape).copy()


BACKEND = Backend(name="classical", title="OpenCV inpainting", needs=None, region=_region,
                  fill=_fill, batched=False)
