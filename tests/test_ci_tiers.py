"""The rule that makes CI test the real host: in CI (CI=true) a ComfyUI or browser test that
skips has failed; elsewhere it skips cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TIER_TESTS = """
import pytest
from tests_conftest_copy import require

@pytest.mark.comfyui
def test_host_missing():
    require(False, "no ComfyUI here")

@pytest.mark.browser
def test_skipped_by_hand():
    pytest.skip("no browser here")

def test_other_tiers_may_skip():
    pytest.skip("needs real weights")
"""


@pytest.fixture
def tier_run(pytester, monkeypatch):
    conftest = (Path(__file__).with_name("conftest.py")).read_text()
    pytester.makepyfile(tests_conftest_copy=conftest)
    pytester.makeconftest("from tests_conftest_copy import pytest_runtest_makereport  # noqa\n")
    pytester.makeini("[pytest]\nmarkers =\n    comfyui: x\n    browser: x\n")
    pytester.makepyfile(test_tiers=TIER_TESTS)

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))

    def run(ci: str | None):
        if ci is None:
            monkeypatch.delenv("CI", raising=False)
        else:
            monkeypatch.setenv("CI", ci)
        # The conftest copy reads CI when imported: import it afresh for each run.
        return pytester.runpytest_subprocess("-p", "no:cacheprovider")
    return run


def test_in_ci_a_skipped_host_tier_fails(tier_run):
    result = tier_run("true")
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(["*CI runs this tier, but no ComfyUI here*",
                                 "*skipped in CI, where the browser tier must run*"])


def test_outside_ci_the_host_tiers_skip(tier_run):
    tier_run(None).assert_outcomes(skipped=3)
