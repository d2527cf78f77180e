"""Every shipped workflow in the real ComfyUI frontend (headless Chromium): it loads with no
alert, toast, dialog, console error or failed request, opens with all its nodes in view, and the
runnable ones run to success in the order the README gives.

Needs COMFYUI_PATH, `playwright` and Chromium (see tests/browser_harness.py); skips without
them, except in CI, where it fails.
"""

from __future__ import annotations

import copy
import shutil

import pytest

from tests.browser_harness import Frontend, require_browser, shipped_workflows
from tests.comfyui_harness import ComfyServer, comfyui_location

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]
# Run in this order: intent_load reads the intent intent_parse_offline saved.
RUNNABLE = ["intent_parse_offline", "intent_parse_llm", "intent_edit", "intent_load"]
LOAD_ONLY = ["concept_detect"]  # its default models are real weights, downloaded on first use


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    require_browser()
    checkout, _ = comfyui_location()
    base = tmp_path_factory.mktemp("comfy-workflows")
    (base / "input").mkdir()
    # The shipped workflows use ComfyUI's own example image, as a new user has it.
    shutil.copy(checkout / "input" / "example.png", base / "input" / "example.png")
    with ComfyServer(base) as server, Frontend(server) as frontend:
        yield frontend


def test_the_list_of_shipped_workflows_is_complete():
    assert sorted(RUNNABLE + LOAD_ONLY) == sorted(shipped_workflows())


@pytest.mark.parametrize("name", RUNNABLE + LOAD_ONLY)
def test_workflow_loads_without_alarm_with_every_node_in_view(frontend, name):
    assert frontend.load_workflow(shipped_workflows()[name]) == []


def test_a_workflow_the_frontend_rejects_is_caught(frontend):
    """The check above can fail: nulls where the frontend's schema wants a list raise the
    "Invalid workflow against zod schema" alert, and a node far off screen is out of view."""
    broken = copy.deepcopy(shipped_workflows()["intent_load"])
    broken["floatingLinks"] = None
    broken.setdefault("extra", {})["ds"] = {"scale": 1, "offset": [-5000, -5000]}
    problems = frontend.load_workflow(broken)
    assert any("zod schema" in p and "floatingLinks" in p for p in problems), problems
    assert any(p.startswith("not in view: IntentTunerIntentLoad") for p in problems), problems


def test_runnable_workflows_run_to_success(frontend):
    server = frontend.server
    finished = len(server.get("/history"))
    for i, name in enumerate(RUNNABLE, start=1):
        assert frontend.load_workflow(shipped_workflows()[name]) == [], name
        frontend.queue()
        entry = server.wait_for_history(finished + i)
        assert entry["status"]["status_str"] == "success", (name, entry["status"])
    intents = server.base / "output" / "intents"
    saved = sorted(p.relative_to(intents).as_posix() for p in intents.rglob("*.json"))
    assert saved == ["intent_00001.json", "pia/edited_00001.json", "pia/intent_00001.json"]
