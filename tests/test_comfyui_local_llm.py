"""Load Local LLM -> Intent Parse inside a real ComfyUI (skips without COMFYUI_PATH; see
tests/comfyui_harness.py): the tiny random model in the server's models/LLM, loaded by the
prompt executor through the real loading code; its garbage answers end in the offline parser,
and the node's output says so."""

from __future__ import annotations

import pytest

from intenttuner.tiny.local_llm import make_tiny
from tests.comfyui_harness import ComfyServer, make_base_dir

pytestmark = pytest.mark.comfyui

DESCRIPTION = "Keep his face. His hair colour should be adjustable. Never a necklace."


def test_load_local_llm_into_intent_parse_runs_and_shows_the_fallback(tmp_path):
    base = make_base_dir(tmp_path / "base")
    folder = make_tiny(base / "models" / "LLM")
    prompt = {
        "1": {"class_type": "IntentTunerLoadLocalLLM",
              "inputs": {"model": folder.name, "precision": "auto", "max_new_tokens": 32}},
        "2": {"class_type": "IntentTunerIntentParse",
              "inputs": {"description": DESCRIPTION, "on_unplaced": "error",
                         "reference_boxes": "[]", "llm": ["1", 0], "if_llm_fails": "offline"}},
    }
    with ComfyServer(base) as srv:
        prompt_id = srv.post("/prompt", {"prompt": prompt})["prompt_id"]
        srv.wait_for_history(count=1, timeout=300)
        entry = srv.get(f"/history/{prompt_id}")[prompt_id]
        log = srv.log()

    assert entry["status"]["status_str"] == "success", entry["status"]
    text = entry["outputs"]["2"]["text"][0]
    assert "Parser: offline" in text
    assert (f"Note: The LLM '{folder.name}' at models/LLM/{folder.name} (in-process) failed, so "
            "the offline parser was used instead.") in text
    assert "answered with an invalid intent twice" in text  # after one repair round trip
    assert "IMPORT FAILED" not in log and "Traceback" not in log
