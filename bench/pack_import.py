"""What importing the pack costs, against a bare ``import torch`` measured in the same run.

Each measurement runs in a fresh interpreter and times only the import itself (not Python's
start-up); the three kinds alternate, ``--runs`` times each, and the medians are printed:

* ``import torch`` alone;
* the pack in a fresh interpreter (this includes torch, which the pack imports);
* the pack after ``import torch``: what ComfyUI, which has loaded torch long before custom
  nodes, actually pays for it.

    .venv/bin/python -m bench.pack_import [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parents[1]

_LOAD_PACK = f"""
import importlib.util
spec = importlib.util.spec_from_file_location(
    "intenttuner_pack", {str(PACK_DIR / "__init__.py")!r},
    submodule_search_locations=[{str(PACK_DIR)!r}])
module = importlib.util.module_from_spec(spec)
sys.modules["intenttuner_pack"] = module
spec.loader.exec_module(module)
"""

_TIMED = "import sys, time\n{before}\nstarted = time.perf_counter()\n{timed}\n" \
         "print(time.perf_counter() - started)\n"

KINDS = {
    "import torch": _TIMED.format(before="", timed="import torch"),
    "pack, fresh interpreter": _TIMED.format(before="", timed=_LOAD_PACK),
    "pack after import torch": _TIMED.format(before="import torch", timed=_LOAD_PACK),
}


def time_once(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd="/", check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    time_once(KINDS["pack, fresh interpreter"])  # warm the file cache and __pycache__
    for _ in range(args.runs):
        for kind, code in KINDS.items():
            times[kind].append(time_once(code))
    torch_s = statistics.median(times["import torch"])
    for kind, values in times.items():
        median = statistics.median(values)
        print(f"{kind:24} {median * 1000:7.0f} ms  ({median / torch_s:4.2f}x import torch; "
              f"min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f} ms, "
              f"median of {args.runs})")


if __name__ == "__main__":
    main()
