"""Shared fixtures: an isolated models folder and runtime per test, no network, and the pack
loaded the way ComfyUI loads it (as a package from its folder)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from intenttuner import runtime

PACK_DIR = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"
# Shared fixtures: the download tests', and the trainer and monitor tests' (tiny SD 1.5, one thread).
pytest_plugins = ["tests.download_helpers", "tests.training_fixtures"]
# Tiers that must run in CI: there, a test of these marks that skips has failed.
REQUIRED_IN_CI = ("comfyui", "browser")
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


def require(available: bool, reason: str) -> None:
    """Skip the calling test when a tier's host (ComfyUI, the browser) is ``available`` no,
    outside CI; in CI the tier must run, so the same condition fails the test."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI runs this tier, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, a skip of a required tier is a failure, whoever raised it (a fixture, a marker,
    an ``importorskip``): a green run must mean the real host was tested."""
    outcome = yield
    report = outcome.get_result()
    required = [m for m in REQUIRED_IN_CI if item.get_closest_marker(m)]
    if IN_CI and report.skipped and required and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where the {required[0]} tier must run: " \
                          f"{report.longrepr[-1] if isinstance(report.longrepr, tuple) else ''}"


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
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved token, no user config
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("INTENTTUNER_OFFLINE", "1")
    yield root
    for module, previous in saved:
        module.set_runtime(previous)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The tiny random open_clip encoder, written by its tiny builder, loaded by its family."""
    from intenttuner.families.image_encoder import FAMILY
    from intenttuner.tiny.image_encoder import make_tiny

    return FAMILY.load(make_tiny(tmp_path_factory.mktemp("clip")))


@pytest.fixture(scope="session")
def pack():
    """The pack, imported as ComfyUI imports it."""
    return load_pack()


__all__ = ["IN_CI", "load_pack", "require", "runtime"]
