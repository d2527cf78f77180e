"""One real download in a process of its own, for tests of downloads that processes share.

    python -m tests.download_worker SPEC_JSON READY_FILE GO_FILE

``SPEC_JSON`` holds ``url``, ``name``, ``size``, ``sha256`` and ``target`` of a single-file
entry in models/sams; the models root is ``INTENTTUNER_MODELS_DIR``. The worker imports
everything first, creates READY_FILE, waits for GO_FILE (so that several workers start their
downloads together), calls the real `ensure_entry` and writes one JSON line to stdout:
``{"path", "waited", "seconds"}`` or ``{"error"}``. Log lines go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from intenttuner import runtime
from intenttuner.weights.download import ensure_entry
from intenttuner.weights.manifest import WeightEntry, WeightFile


class _Recording(runtime.TorchRuntime):
    """The plain runtime, remembering the download events' states."""

    states: list[str] = []

    def send_event(self, event, data):
        self.states.append(data["state"])


def main(spec_json: str, ready: str, go: str) -> dict:
    spec = json.loads(spec_json)
    file = WeightFile(name=spec["name"], size=spec["size"], sha256=spec["sha256"], url=spec["url"])
    entry = WeightEntry(id="shared", family="segmenter", default=False, title="Shared test file",
                        folder="sams", target=spec["target"], files=(file,), licence="MIT")
    rt = _Recording()  # models root from INTENTTUNER_MODELS_DIR
    runtime.set_runtime(rt)
    Path(ready).touch()
    deadline = time.monotonic() + 120
    while not Path(go).exists():
        if time.monotonic() > deadline:
            return {"error": "never told to go"}
        time.sleep(0.005)
    start = time.monotonic()
    try:
        path = ensure_entry(entry)
    except Exception as exc:  # reported to the test, which fails on it
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"path": str(path), "waited": "waiting" in rt.states,
            "seconds": round(time.monotonic() - start, 3)}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(process)d %(name)s: %(message)s")
    sys.stdout.write(json.dumps(main(*sys.argv[1:4])) + "\n")
