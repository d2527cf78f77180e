"""Write a full-size, randomly initialised SD 1.5 (or SDXL) single-file checkpoint.

    .venv/bin/python scripts/make_random_checkpoint.py OUTPUT_FOLDER [--kind sd15|sdxl]
        [--seed N] [--precision fp16|bf16|fp32]

The real architecture in the original layout (what ComfyUI's CheckpointLoaderSimple and our
base-model loader read), random weights, nothing downloaded: for the real-ComfyUI LoRA test and
the GPU benchmark. SD 1.5 in fp16 is ~2.1 GB, SDXL ~6.9 GB. Prints the file's path; an existing
file of the same name (same kind, seed and precision) is reused.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from intenttuner.tiny.full_size import make_full_size_checkpoint  # noqa: E402

log = logging.getLogger("make_random_checkpoint")
PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="folder to write the checkpoint into")
    parser.add_argument("--kind", choices=("sd15", "sdxl"), default="sd15")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default="fp16")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.monotonic()
    path = make_full_size_checkpoint(args.output, args.kind, args.seed, PRECISIONS[args.precision])
    log.info("%s: %.2f GB in %.0f s", path, path.stat().st_size / 1e9, time.monotonic() - start)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
