"""IntentInpaint throughput: items per second, the pack's way vs one item at a time, same run.

The set: ``--images`` same-size photo-sized sources, each with one delete detection (a SAM-style
disc mask of the same size at a different place) and ``--crops`` planned crops besides its
original, so ``images * (1 + crops)`` items. Three ways to produce every item cleaned:

- *one at a time* (the obvious baseline): per item, compute its source's delete mask, inpaint
  that source alone, cut the item;
- *per image, unbatched*: masks and inpainting once per source (`remove_deleted`), batch 1;
- *per image, batched*: the same with same-size regions in batches of ``--batch`` (LaMa).

Backends: classical (OpenCV) and LaMa (full-size big-lama, random weights: spandrel's LaMa
cannot be shrunk, and the cost does not depend on the weights). Each measurement is repeated
``--runs`` times; medians and ratios are printed.

    .venv/bin/python -m bench.augment_inpaint [--images 8] [--crops 2] [--size 640] [--runs 3]
"""

from __future__ import annotations

import argparse
import functools
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.timing import timed
from intenttuner import runtime
from intenttuner.augment.inpaint import BACKENDS, inpaint
from intenttuner.augment.inpaint_base import InpaintSettings
from intenttuner.augment.masks import delete_masks
from intenttuner.augment.removal import remove_deleted
from intenttuner.augment.render import render_item, render_items
from intenttuner.augment.types import Augmented, AugmentPlan, CropItem
from intenttuner.detection.types import BoxMask, Detection, Detections, ImageDetections
from intenttuner.families import FAMILIES
from intenttuner.intent.schema import Intent
from intenttuner.tiny import TINY_BUILDERS

RADIUS = 40  # of each source's "necklace", px


def build_set(count: int, crops: int, width: int) -> tuple[Augmented, Detections, Intent]:
    height = width * 3 // 4
    rng = np.random.default_rng(0)
    sources, items, entries = [], [], []
    ys, xs = np.mgrid[:height, :width]
    for i in range(count):
        pixels = rng.integers(60, 200, (height, width, 3), dtype=np.uint8)
        cx, cy = 160 + (i * 37) % (width - 320), 160 + (i * 53) % (height - 320)
        disc = (xs - cx) ** 2 + (ys - cy) ** 2 <= RADIUS ** 2
        pixels[disc] = (230, 20, 20)
        sources.append(Image.fromarray(pixels))
        name = f"IMG_{i:03}.jpg"
        items.append(CropItem(source_index=i, source_name=name, operation="original",
                              region=(0, 0, width, height), out_size=(width, height),
                              resample="none", group="original"))
        for k in range(crops):
            x0 = (k * 97) % (width - 256)
            items.append(CropItem(source_index=i, source_name=name, operation="keep",
                                  concept="face", region=(x0, 0, x0 + 256, 256),
                                  out_size=(256, 256), resample="none", group="face"))
        box = (cx - RADIUS, cy - RADIUS, cx + RADIUS + 1, cy + RADIUS + 1)
        entries.append(ImageDetections(index=i, size=(width, height), detections=[
            Detection(concept="necklace", phrase="necklace", box=box, score=0.9,
                      mask=BoxMask.encode(disc, box))]))
    intent = Intent(description="bench", trigger_words=["v"], domain="portrait", concepts=[
        {"name": "necklace", "phrase": "necklace", "granularity": "instance",
         "operation": "delete"}])
    detections = Detections(images=entries, box_threshold=0.3, text_threshold=0.25)
    return Augmented(plan=AugmentPlan(items=items), sources=sources), detections, intent


def one_at_a_time(augmented, detections, intent, backend, settings, model) -> list:
    """Per item: its source's mask, that source inpainted alone, the item cut from it."""
    out = []
    for item in augmented.plan.items:
        single = Detections(images=[detections.images[item.source_index].model_copy(
            update={"index": 0})], box_threshold=0.3, text_threshold=0.25)
        mask = delete_masks(single, intent).images[0].mask
        source = augmented.sources[item.source_index]
        cleaned = inpaint([source], [mask], backend, settings, model)[0]
        out.append(render_item(cleaned, item))
    return out


def per_image(augmented, detections, intent, backend, settings, model) -> list:
    removal = remove_deleted(augmented, detections, intent, backend, settings=settings,
                             inpainter=model if backend == "lama" else None)
    return render_items(removal.augmented)


class QuietRuntime(runtime.TorchRuntime):
    """The plain runtime without console progress bars (one per inpaint call here)."""

    class _Silent:
        def update(self, n: int = 1) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def progress(self, total, desc, unit="it"):
        return self._Silent()



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--crops", type=int, default=2, help="planned crops per image")
    parser.add_argument("--size", type=int, default=640, help="source width (4:3)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # per-call log lines would dominate the console
    runtime.set_runtime(QuietRuntime())  # and so would a progress bar per call
    torch.manual_seed(0)
    augmented, detections, intent = build_set(args.images, args.crops, args.size)
    items = len(augmented.plan.items)
    print(f"{args.images} images {args.size}x{args.size * 3 // 4}, {items} items, "
          f"threads {torch.get_num_threads()}, device "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
    with tempfile.TemporaryDirectory() as tmp:
        lama = FAMILIES["inpainter"].load(TINY_BUILDERS["inpainter"](Path(tmp)))
        one, batch = InpaintSettings(batch_size=1), InpaintSettings(batch_size=args.batch)
        for backend, model in (("classical", None), ("lama", lama)):
            run = functools.partial(per_image, augmented, detections, intent, backend,
                                    model=model)
            run(settings=batch)  # warm up: first calls allocate
            base = timed(functools.partial(one_at_a_time, augmented, detections, intent,
                                           backend, one, model), args.runs)
            unbatched = timed(functools.partial(run, settings=one), args.runs)
            line = (f"{backend:9}  one item at a time {items / base:7.2f} items/s | per image "
                    f"{items / unbatched:7.2f} items/s ({base / unbatched:4.2f}x)")
            if BACKENDS[backend].batched:
                batched = timed(functools.partial(run, settings=batch), args.runs)
                line += (f" | per image, batch {args.batch} {items / batched:7.2f} items/s "
                         f"({base / batched:4.2f}x; {unbatched / batched:4.2f}x vs batch 1)")
            print(f"{line} (median of {args.runs})")
    runtime.set_runtime(runtime.TorchRuntime())

if __name__ == "__main__":
    main()
