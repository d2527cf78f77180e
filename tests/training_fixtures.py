"""Fixtures of the trainer and monitor tests (a pytest plugin, see tests/conftest.py): torch on
one thread for the module, the tiny SD 1.5 loaded once per module, and the full-size random
SD 1.5 checkpoint written once per session (the real-ComfyUI tests share its 2 GB). A module
takes the thread setting with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.training_comfy_model import CACHE_ENV
from tests.training_run_helpers import load_tiny, single_thread

MAKE_CHECKPOINT = Path(__file__).resolve().parents[1] / "scripts" / "make_random_checkpoint.py"


@pytest.fixture(scope="module")
def one_thread():
    yield from single_thread()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The tiny SD 1.5 (fp32), shared by the module's tests: training restores it each time."""
    return load_tiny(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="session", autouse=True)
def shared_test_checkpoints(tmp_path_factory):
    """The session's folder for the small ComfyUI SD 1.5 (tests/training_comfy_model.py):
    written there once, linked into each test's ComfyUI; the processes tests start (ComfyUI
    in-process scripts) find it through the environment."""
    folder = tmp_path_factory.mktemp("shared-checkpoints")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="session")
def full_size_sd15(tmp_path_factory) -> Path:
    """A full-size random SD 1.5 checkpoint (fp16, ~2 GB), written once per session by the
    project script; only the real-ComfyUI tier uses it, so it skips without ComfyUI."""
    from tests.comfyui_harness import comfyui_location

    comfyui_location()
    folder = tmp_path_factory.mktemp("full-size")
    out = subprocess.run([sys.executable, str(MAKE_CHECKPOINT), str(folder), "--kind", "sd15"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return Path(out.stdout.strip().splitlines()[-1])
