"""Detection-stage throughput: batched vs one image (or crop) at a time, in the same run.

- ConceptDetect: full-size GroundingDINO Swin-T (random weights, the real architecture and
  image processor) on ``--images`` same-size photos-sized images, all phrases of an intent in
  one pass per image; ``detect(batch_size=B)`` vs ``batch_size=1``.
- RefFilter: full-size open_clip ViT-B-32 embedding ``--crops`` detection crops in one batched
  call vs one call per crop, plus the reference-embedding cache (second filter run).

Each measurement is repeated ``--runs`` times; medians and ratios are printed.

    .venv/bin/python -m bench.detection [--images 8] [--batch 4] [--size 480] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.model_memory import write_random
from bench.timing import timed
from intenttuner import runtime
from intenttuner.families.detector import BUNDLED_CONFIG
from intenttuner.families.detector_model import GroundingDinoDetector
from intenttuner.families.gdino_tokenizer import bert_tokenizer
from intenttuner.loading import load_model
from intenttuner.tiny.detector import bert_style_vocab, write_vocab

PHRASES = ["face", "black leather jacket", "striped jacket", "hair", "necklace"]


def full_size_detector(shortest_edge: int, tmp: Path) -> GroundingDinoDetector:
    """The real Swin-T architecture with random weights, at a given working resolution."""
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
    )

    config = GroundingDinoConfig.from_dict(json.loads(BUNDLED_CONFIG.read_text()))
    model = GroundingDinoForObjectDetection(config).eval()  # on CPU: index buffers are computed
    processor = GroundingDinoImageProcessor(
        size={"shortest_edge": shortest_edge, "longest_edge": round(shortest_edge * 1333 / 800)})
    tokenizer = bert_tokenizer(write_vocab(tmp, bert_style_vocab(size=config.text_config.vocab_size)))
    return GroundingDinoDetector(model, processor, tokenizer, source=tmp, kind="hf")


def images(n: int, size: tuple[int, int] = (1024, 768)) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
            for _ in range(n)]



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=480, help="detector's shorter image side")
    parser.add_argument("--crops", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        detector = full_size_detector(args.size, Path(tmp))
        photos = images(args.images)
        detect = detector.detect  # warm up once: first calls allocate
        detect(photos[:1], PHRASES, box_threshold=0.3, text_threshold=0.25)
        one = timed(lambda: detect(photos, PHRASES, batch_size=1), args.runs)
        batched = timed(lambda: detect(photos, PHRASES, batch_size=args.batch), args.runs)
        n = args.images
        print(f"ConceptDetect  {n} images {args.size}px: one at a time {n / one:5.2f} img/s, "
              f"batch {args.batch} {n / batched:5.2f} img/s -> {one / batched:4.2f}x "
              f"(median of {args.runs})")

        path = write_random("image_encoder", Path(tmp))
        encoder = load_model("image_encoder", path.name)
        crops = [c.crop((0, 0, 96 + i % 64, 128)) for i, c in
                 enumerate(images(args.crops, (224, 224)))]
        encoder.embed_images(crops[:2])
        single = timed(lambda: [encoder.embed_images([c]) for c in crops], args.runs)
        batch = timed(lambda: encoder.embed_images(crops, batch_size=32), args.runs)
        print(f"RefFilter      {args.crops} crops: one at a time {args.crops / single:6.1f} "
              f"crops/s, batch 32 {args.crops / batch:6.1f} crops/s -> {single / batch:4.2f}x "
              f"(median of {args.runs})")
    runtime.set_runtime(runtime.TorchRuntime())


if __name__ == "__main__":
    main()
