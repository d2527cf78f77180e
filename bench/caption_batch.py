"""Captioning throughput: batched vs one image at a time, in the same run.

The full-size Florence-2-base architecture (random weights, the real image processor at
768x768, written in the florence-community layout and loaded through the real loader) captions
``--images`` images with ``caption(batch_size=B)`` and with one ``caption`` call per image. Both
generate exactly ``--tokens`` tokens per image (random weights never end a caption early), with
``--beams`` beams, on CPU in fp32. Each measurement is repeated ``--runs`` times; medians and the
ratio (one at a time / batched) are printed, and whether both gave the same captions. About
6 minutes on 2 CPU cores.

    .venv/bin/python -m bench.caption_batch [--images 8] [--batch 8] [--tokens 24] [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.model_memory import CAPTION_IMAGE, write_random
from bench.timing import timed
from intenttuner import runtime
from intenttuner.loading import load_model


def images(n: int, size: int = CAPTION_IMAGE) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
            for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="florence-2-base",
                        choices=["florence-2-base", "florence-2-large", "blip-large"])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=24, help="new tokens per caption")
    parser.add_argument("--beams", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_random(args.model, Path(tmp))  # also installs a runtime on tmp
        captioner = load_model("captioner", path.name, precision="fp32")
        photos = images(args.images)
        settings = {"detail": "detailed", "max_new_tokens": args.tokens, "num_beams": args.beams}
        captioner.caption(photos[:1], **{**settings, "max_new_tokens": 2})  # warm up

        captions: dict[str, list[str]] = {}

        def one_at_a_time() -> None:
            captions["one"] = [captioner.caption([photo], **settings)[0] for photo in photos]

        def batched() -> None:
            captions["batch"] = captioner.caption(photos, batch_size=args.batch, **settings)

        one = timed(one_at_a_time, args.runs)
        batch = timed(batched, args.runs)
        same = captions["one"] == captions["batch"]
        n = args.images
        print(f"{args.model} ({captioner.kind}), {n} images {CAPTION_IMAGE}x{CAPTION_IMAGE}, "
              f"{args.tokens} tokens, {args.beams} beams, fp32 CPU, "
              f"{torch.get_num_threads()} threads, median of {args.runs}:")
        print(f"  one at a time  {one:7.2f} s  ({one / n:5.2f} s/image)")
        print(f"  batch {args.batch:<3}      {batch:7.2f} s  ({batch / n:5.2f} s/image)")
        print(f"  -> {one / batch:4.2f}x (one at a time / batched); same captions: "
              f"{'yes' if same else 'NO'}")
    runtime.set_runtime(runtime.TorchRuntime())


if __name__ == "__main__":
    main()
