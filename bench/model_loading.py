"""Load once vs reload per use: what `intenttuner.loading.load_model` saves a graph that uses a
model several times (competing scoring nodes reload the model on every run).

Full-size random SAM ViT-B and open_clip ViT-B-32 checkpoints are written in their real formats
to a temporary models folder; then, for each, ``--uses`` uses are timed both ways, ``--runs``
times, and the medians and their ratio are printed.

    .venv/bin/python -m bench.model_loading [--uses 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.model_memory import write_random
from intenttuner import loading, runtime
from intenttuner.families import FAMILIES


def time_uses(load, uses: int) -> float:
    started = time.perf_counter()
    models = [load() for _ in range(uses)]  # keep them alive, as a graph's nodes would
    elapsed = time.perf_counter() - started
    del models
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uses", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("segmenter", "image_encoder"):
            path = write_random(name, Path(tmp))  # also installs a runtime on tmp
            family = FAMILIES[name]
            widget = path.name
            naive, cached = [], []
            for _ in range(args.runs):
                naive.append(time_uses(lambda f=family, p=path: f.load(p), args.uses))
                loading._cache.clear()
                cached.append(time_uses(lambda n=name, w=widget: loading.load_model(n, w),
                                        args.uses))
                loading._cache.clear()
            n, c = statistics.median(naive), statistics.median(cached)
            print(f"{name:14} {args.uses} uses: reload each time {n:6.2f} s, load once {c:6.2f} s"
                  f"  -> {n / c:4.1f}x (median of {args.runs} runs)")
    runtime.set_runtime(runtime.TorchRuntime())


if __name__ == "__main__":
    main()
