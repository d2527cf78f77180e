"""Draw the shipped example data: Milo, a cartoon character, for every workflow and `run`.

    .venv/bin/python scripts/make_example_data.py [OUTPUT_FOLDER] [--count N] [--size PX]
        [--seed N]

Writes OUTPUT_FOLDER (default: the committed examples/milo) with train/ (the training
pictures), references/ (the reference picture and boxes.json) and intent.txt; nothing is
downloaded and the same arguments always draw the same pixels. tests/test_examples.py checks
that the committed folder is what the defaults draw, so rerun this after changing the drawing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intenttuner.examples import shipped_example, write_example_data  # noqa: E402

log = logging.getLogger("make_example_data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, nargs="?", default=shipped_example().root,
                        help="folder to write the example into (default: examples/milo)")
    parser.add_argument("--count", type=int, default=16, help="training pictures (12-20)")
    parser.add_argument("--size", type=int, default=512, help="picture side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = write_example_data(args.output, count=args.count, size=args.size, seed=args.seed)
    total = sum(p.stat().st_size for p in data.root.rglob("*") if p.is_file())
    log.info("%s: %d training pictures, %.0f kB", data.root, len(data.training_images()),
             total / 1e3)
    print(data.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
