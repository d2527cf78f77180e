"""Fixtures of the trainer and monitor tests (a pytest plugin, see tests/conftest.py): torch on
one thread for the module, and the tiny SD 1.5 loaded once per module. A module takes the
thread setting with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""

from __future__ import annotations

import pytest

from tests.training_run_helpers import load_tiny, single_thread


@pytest.fixture(scope="module")
def one_thread():
    yield from single_thread()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The tiny SD 1.5 (fp32), shared by the module's tests: training restores it each time."""
    return load_tiny(tmp_path_factory.mktemp("base"))
