"""The pack inside a real ComfyUI (skips without COMFYUI_PATH; see tests/comfyui_harness.py)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.comfyui_harness import ComfyServer, make_base_dir, run_in_comfyui

pytestmark = pytest.mark.comfyui

INPROCESS = Path(__file__).with_name("comfyui_inprocess.py")


KEY = "sk-live-INTEGRATION-9f8e7d6c5b4a3210"


@pytest.fixture(scope="module")
def fake_llm():
    from tests.fake_llm import FakeLLM, Reply
    from tests.test_intent_llm import VALID

    answer = json.loads(json.dumps(VALID))  # no boxes here, so no [n] in the answer
    for concept in answer["concepts"]:
        for value in concept["values"]:
            value["references"] = []
    fake = FakeLLM(replies=[Reply(json.dumps(answer))])
    fake.base_url = fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm):
    """The module's server (a start costs more than most tests here). It holds an LLM key in
    its environment, as a user's would, for the key test; the others never touch it. A
    loopback endpoint gets the key only when the user trusts its host:port."""
    env = {"IT_INTEGRATION_API_KEY": KEY,
           "INTENTTUNER_LLM_TRUSTED_HOSTS": fake_llm.base_url.split("/")[2]}
    with ComfyServer(tmp_path_factory.mktemp("comfy-base"), env) as srv:
        yield srv


def test_pack_loads_without_errors_and_lists_every_node(server, pack):
    log = server.log()
    assert "IMPORT FAILED" not in log
    assert "Traceback" not in log
    info = server.get("/object_info")
    missing = set(pack.NODE_CLASS_MAPPINGS) - set(info)
    assert not missing
    for node_id in pack.NODE_CLASS_MAPPINGS:
        assert info[node_id]["category"].startswith("IntentTuner/")
        assert info[node_id]["python_module"].endswith("ComfyUI-IntentTuner")


def test_model_folders_are_registered_with_explicit_extensions(server):
    folders = set(server.get("/models"))
    assert {"grounding-dino", "sams", "image_encoders", "captioners", "checkpoints",
            "diffusers", "loras", "identity_encoders", "aesthetic", "prompt_adapters"} <= folders


def test_missing_optional_package_leaves_comfyui_and_other_nodes_working(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    # sitecustomize runs at interpreter start: segment_anything behaves as if uninstalled.
    (blocker / "sitecustomize.py").write_text(
        "import importlib.util, sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'segment_anything':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _Block())\n"
        "_find = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, p=None: (\n"
        "    None if n.split('.')[0] == 'segment_anything' else _find(n, p))\n")
    with ComfyServer(tmp_path / "base", {"PYTHONPATH": str(blocker)}) as srv:
        info = srv.get("/object_info")
        log = srv.log()
    assert "IMPORT FAILED" not in log
    assert info["IntentTunerLoadSegmenter"]["description"].startswith("UNAVAILABLE")
    assert "pip install segment-anything" in info["IntentTunerLoadSegmenter"]["description"]
    assert not info["IntentTunerLoadDetector"]["description"].startswith("UNAVAILABLE")
    assert "KSampler" in info  # ComfyUI itself is fine
    assert "Load Segment Anything (SAM) unavailable until you run `pip install segment-anything`" \
        in log


def test_loaders_run_through_comfyui_model_manager_progress_and_cancel(tmp_path):
    base = make_base_dir(tmp_path / "base")
    result = run_in_comfyui(INPROCESS, base)
    for family, check in result["loaders"].items():
        assert check["ok"], f"{family}: {check}"
        assert check["listed"], f"{family}: the tiny model is not in the loader's list"
        assert check["loaded_by_comfyui_model_manager"], family
    assert result["download"]["progress_events"] > 0
    assert result["download"]["file_ok"]
    assert result["download"]["websocket_events"] == [["intenttuner.download", "start"],
                                                      ["intenttuner.download", "done"]]
    assert result["cancel"]["interrupted"]
    assert result["cancel"]["part_kept"]
    assert result["free_memory"]["loaded_models_after"] == 0
    detection = result["detection"]
    assert detection["ok"], detection["error"]
    assert "jacket:" in detection["detect_text"] and "hat:" in detection["detect_text"]
    assert "Filtered by reference similarity >= 0.5" in detection["filter_text"]
    assert detection["previews"] == 1


def test_llm_key_stays_out_of_history_logs_and_outputs(server, fake_llm):
    """A real server parsing with an LLM: the key is used, and found nowhere afterwards."""
    prompt = {
        "1": {"class_type": "IntentTunerLLMSettings",
              "inputs": {"base_url": fake_llm.base_url, "model": "gpt-test",
                         "api_key_env": "IT_INTEGRATION_API_KEY", "timeout_s": 30.0}},
        "2": {"class_type": "IntentTunerIntentParse",
              "inputs": {"description": "Keep his face. Switch between the leather jacket [1] "
                                        "and the striped jacket [2]. Never a necklace.",
                         "on_unplaced": "error", "reference_boxes": "[]", "llm": ["1", 0],
                         "if_llm_fails": "error"}},
        "3": {"class_type": "IntentTunerIntentSave",
              "inputs": {"intent": ["2", 0], "filename_prefix": "secret", "with_crops": True}},
    }
    prompt_id = server.post("/prompt", {"prompt": prompt})["prompt_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        history = server.get(f"/history/{prompt_id}")
        if history.get(prompt_id, {}).get("status", {}).get("completed"):
            break
        time.sleep(0.5)
    with urllib.request.urlopen(server.url + "/history", timeout=10) as r:
        history_text = r.read().decode()
    log = server.log()
    assert json.loads(history_text)[prompt_id]["status"]["status_str"] == "success"
    assert fake_llm.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    assert KEY not in history_text
    assert KEY not in log
    saved = list((server.base / "output" / "intents").glob("secret_*.json"))
    assert saved
    for path in server.base.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert KEY.encode() not in path.read_bytes(), path
