"""The real_weights tier's models: the real weights in INTENTTUNER_MODELS_DIR (a ComfyUI
``models/`` works), loaded offline through the real loaders. A test skips cleanly when the
variable is unset or a weight is missing; nothing is ever downloaded."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from intenttuner import runtime
from intenttuner.loading import load_model
from intenttuner.weights.locate import find_entry
from intenttuner.weights.manifest import load_manifest

MODELS_DIR_ENV = "INTENTTUNER_MODELS_DIR"


def real_models(wanted: dict[str, str]) -> Iterator[dict]:
    """The body of a module-scoped fixture (``yield from real_models(...)``): ``wanted`` maps
    family -> manifest entry id; yields family -> the loaded model, with the runtime's models
    folder set to the weights' folder meanwhile."""
    root = os.environ.get(MODELS_DIR_ENV)
    if not root:
        pytest.skip(f"set {MODELS_DIR_ENV} to a folder with the default weights")
    previous = runtime.get_runtime()
    runtime.set_runtime(runtime.TorchRuntime(models_dir=root))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INTENTTUNER_OFFLINE", "1")  # use what is there, never download
        manifest = load_manifest()
        missing = [i for i in wanted.values() if find_entry(manifest.get(i)) is None]
        try:
            if missing:
                pytest.skip(f"default weights not in {root}: {missing}")
            yield {family: load_model(family, manifest.get(i).target)
                   for family, i in wanted.items()}
        finally:
            runtime.set_runtime(previous)
