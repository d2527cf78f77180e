"""Command line of the IntentTuner library.

    python -m intenttuner smoke [--models-dir DIR]   # tiny model of every family: build, load, run
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from .errors import IntentTunerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intenttuner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    smoke = sub.add_parser("smoke", help="check the model stack with tiny random models")
    smoke.add_argument("--models-dir", type=Path,
                       help="where the tiny models are written (default: a temporary folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        if args.command == "smoke":
            return _smoke(args.models_dir)
    except IntentTunerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2


def _smoke(models_dir: Path | None) -> int:
    from .smoke import format_table, run_smoke

    with tempfile.TemporaryDirectory(prefix="intenttuner-smoke-") as tmp:
        results = run_smoke(models_dir or Path(tmp))
        print(format_table(results))
    print(f"smoke check passed: {len(results)} model families loaded and ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
