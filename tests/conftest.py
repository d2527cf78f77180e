"""Shared fixtures: an isolated models folder and runtime per test, no network, and the pack
loaded the way ComfyUI loads it (as a package from its folder)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from intenttuner import runtime

PACK_DIR = Path(__file__).resolve().parents[1]
PACK_NAME = "intenttuner_pack"  # ComfyUI uses the folder name; any package name works


def load_pack():
    """Import the pack's root ``__init__.py`` as package ``intenttuner_pack`` (once)."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, PACK_DIR / "__init__.py", submodule_search_locations=[str(PACK_DIR)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


def _runtime_modules():
    """The library's runtime module, plus the pack's own copy when the pack is loaded."""
    return [m for name, m in list(sys.modules.items())
            if name == "intenttuner.runtime" or name == f"{PACK_NAME}.intenttuner.runtime"]


@pytest.fixture
def models_root(tmp_path, monkeypatch, pack):
    """A fresh, empty models root installed as the runtime's models folder (for the library
    and for the pack's copy of it)."""
    root = tmp_path / "models"
    root.mkdir()
    saved = [(m, m.get_runtime()) for m in _runtime_modules()]
    for module, _ in saved:
        module.set_runtime(module.TorchRuntime(models_dir=root, output_dir=tmp_path / "output"))
    # Never touch the user's Hugging Face cache or the network from tests.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("INTENTTUNER_OFFLINE", "1")
    yield root
    for module, previous in saved:
        module.set_runtime(previous)


@pytest.fixture(scope="session")
def pack():
    """The pack, imported as ComfyUI imports it."""
    return load_pack()


__all__ = ["load_pack", "runtime"]
