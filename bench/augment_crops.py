"""IntentCrop throughput: planning + cutting every item in one pass vs one item at a time.

- one pass (what the node does): each IMAGE tensor converted to PIL once, one `plan_crops`
  call for all images, every item cut from its converted source (`render_items`).
- one at a time (the obvious baseline: a crop-by-box node chained per concept): for each item,
  convert its source tensor again, plan that image alone, cut that item.

``--images`` photo-sized images with a kept face, a small modified hair box and a delete box
each; some crops need upscaling. Each measurement is repeated ``--runs`` times; medians and the
ratio are printed.

    .venv/bin/python -m bench.augment_crops [--images 24] [--size 1024] [--runs 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.timing import timed
from intenttuner.augment.plan import CropSettings, plan_crops
from intenttuner.augment.render import render_item, render_items
from intenttuner.augment.types import Augmented
from intenttuner.detection.types import Detection, Detections, ImageDetections
from intenttuner.imageio import batch_to_pils
from intenttuner.intent.schema import Concept, Intent

INTENT = Intent(description="bench", trigger_words=["vin"], domain="portrait", concepts=[
    Concept(name="face", phrase="face", granularity="instance", operation="keep"),
    Concept(name="hair", phrase="hair", granularity="attribute", operation="modify"),
    Concept(name="necklace", phrase="necklace", granularity="instance", operation="delete"),
])


def detections(sizes: list[tuple[int, int]]) -> Detections:
    images = []
    for i, (w, h) in enumerate(sizes):
        s = 0.15 + 0.1 * (i % 3)  # face sizes vary, so some crops are upscaled
        found = [("face", (w * 0.4, h * 0.2, w * (0.4 + s), h * (0.2 + s * w / h))),
                 ("hair", (w * 0.38, h * 0.1, w * (0.42 + s), h * 0.25)),
                 ("necklace", (w * 0.45, h * 0.7, w * 0.55, h * 0.78))]
        images.append(ImageDetections(index=i, size=(w, h), detections=[
            Detection(concept=c, phrase=c, box=box, score=0.9) for c, box in found]))
    return Detections(images=images, queries={c.phrase: [c.name] for c in INTENT.concepts},
                      box_threshold=0.3, text_threshold=0.25)


def one_pass(tensors, found, settings) -> int:
    sources = [pil for t in tensors for pil in batch_to_pils(t)]
    plan = plan_crops(INTENT, found, [s.size for s in sources], settings=settings)
    return len(render_items(Augmented(plan=plan, sources=sources)))


def one_at_a_time(tensors, found, settings) -> int:
    made = 0
    for i, tensor in enumerate(tensors):
        alone = found.model_copy(update={"images": [found.images[i].model_copy(
            update={"index": 0})]})
        size = found.images[i].size
        count = len(plan_crops(INTENT, alone, [size], settings=settings).items)
        for k in range(count):
            source = batch_to_pils(tensor)[0]  # the source converted again for each item
            item = plan_crops(INTENT, alone, [size], settings=settings).items[k]
            render_item(source, item)
            made += 1
    return made



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=1024, help="longer image side, px")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    shapes = [(args.size, args.size * 3 // 4), (args.size * 3 // 4, args.size)]
    tensors = [torch.rand((1, h, w, 3), generator=g) for w, h in
               (shapes[i % 2] for i in range(args.images))]
    found = detections([(t.shape[2], t.shape[1]) for t in tensors])
    settings = CropSettings()
    items = one_pass(tensors, found, settings)
    assert one_at_a_time(tensors, found, settings) == items  # the same work either way
    started = time.perf_counter()
    plan_crops(INTENT, found, [i.size for i in found.images], settings=settings)
    planning = time.perf_counter() - started
    batched = timed(lambda: one_pass(tensors, found, settings), args.runs)
    single = timed(lambda: one_at_a_time(tensors, found, settings), args.runs)
    print(f"IntentCrop  {args.images} images {args.size}px, {items} items: one at a time "
          f"{items / single:6.1f} items/s, one pass {items / batched:6.1f} items/s -> "
          f"{single / batched:4.2f}x (median of {args.runs}); planning alone "
          f"{planning * 1000:.1f} ms")


if __name__ == "__main__":
    main()
