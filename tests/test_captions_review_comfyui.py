"""Caption Review in a real ComfyUI: an edit queued with the prompt lands in the set's caption
file; queueing again with another edit re-runs Caption Review only, leaving Load Training Set,
the captioner and Caption Refine to ComfyUI's cache (skips without COMFYUI_PATH; see
tests/comfyui_harness.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from intenttuner.dataset.kohya import read_training_set, write_training_set
from tests.comfyui_harness import ComfyServer
from tests.dataset_helpers import sample_augmented, sample_intent

pytestmark = pytest.mark.comfyui


def prompt(folder: str, edits: dict[str, str], captioner: str | None = None) -> dict:
    """Load Training Set -> Caption Review; with ``captioner``, Caption Refine in between."""
    graph = {
        "1": {"class_type": "IntentTunerLoadTrainingSet",
              "inputs": {"folder": folder, "path": ""}},
        "2": {"class_type": "IntentTunerCaptionReview",
              "inputs": {"training_set": ["1", 0],
                         "edits": json.dumps(edits, ensure_ascii=False)}},
    }
    if captioner:
        graph["3"] = {"class_type": "IntentTunerLoadCaptioner",
                      "inputs": {"model": captioner, "precision": "auto"}}
        graph["4"] = {"class_type": "IntentTunerCaptionRefine",
                      "inputs": {"training_set": ["1", 0], "captioner": ["3", 0],
                                 "detail": "detailed", "max_tokens": 77,
                                 "overwrite_user_edits": False, "recaption": False,
                                 "max_new_tokens": 12, "batch_size": 8}}
        graph["2"]["inputs"]["training_set"] = ["4", 0]
    return graph


def run(server: ComfyServer, edits: dict[str, str], captioner: str | None = None) -> dict:
    """Queue the prompt on the test's own set and return its history entry once it has
    finished."""
    response = server.post("/prompt", {"prompt": prompt(server.folder, edits, captioner),
                                       "client_id": "caption-review"})
    assert response["node_errors"] == {}, response
    prompt_id = response["prompt_id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        entry = server.get(f"/history/{prompt_id}").get(prompt_id)
        if entry and (entry["status"].get("completed")
                      or entry["status"].get("status_str") == "error"):
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
            return entry
        time.sleep(0.3)
    raise TimeoutError(f"prompt {prompt_id} did not finish")


def messages(entry: dict, event: str) -> list[dict]:
    return [data for name, data in entry["status"]["messages"] if name == event]


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory):
    """One server for the module (a start costs far more than a test); each test writes its
    own set (`served`), so no test sees another's captions or cached nodes."""
    from intenttuner.tiny import TINY_BUILDERS

    base = tmp_path_factory.mktemp("base")
    folder = base / "models" / "captioners"
    captioner = TINY_BUILDERS["captioner"](folder).relative_to(folder).as_posix()
    with ComfyServer(base) as server:
        server.tiny_captioner = captioner
        yield server


@pytest.fixture
def served(comfyui, request):
    """(the server, a fresh set named after the test): its own Load Training Set input, so
    ComfyUI's cache holds nothing of it when the test starts."""
    name = request.node.name.removeprefix("test_")[:40]
    training_set = write_training_set(sample_augmented(), sample_intent(),
                                      comfyui.base / "input" / "training_sets", name,
                                      if_exists="error")
    comfyui.folder = f"training_sets/{Path(training_set.root).name}"
    return comfyui, training_set


def test_edit_reaches_the_caption_file_and_a_new_edit_reruns_only_the_review(served):
    server, ts = served
    root = Path(ts.root)
    face, coat = ts.items[3], ts.items[5]

    first = run(server, {face.sha256: "ohwx man, close-up, Amélie"})
    assert (root / face.caption_file).read_text(encoding="utf-8") == \
        "ohwx man, close-up, Amélie\n"
    panel = first["outputs"]["2"]
    assert [e["key"] for e in panel["it_captions"]] == [i.sha256 for i in ts.items]
    assert panel["it_captions"][3]["caption_source"] == "user"
    for thumbnail in panel["it_thumbnails"]:  # the panel's images are where /view finds them
        assert (server.base / "temp" / thumbnail["subfolder"] / thumbnail["filename"]).is_file()
    assert len(panel["it_thumbnails"]) == len(ts.items)

    second = run(server, {face.sha256: "ohwx man, close-up, Amélie",
                          coat.sha256: "ohwx man, red wool coat, snow"})
    assert (root / coat.caption_file).read_text(encoding="utf-8") == \
        "ohwx man, red wool coat, snow\n"
    assert [(i.caption, i.caption_source) for i in read_training_set(root).items][3:] == [
        ("ohwx man, close-up, Amélie", "user"), ("ohwx, man, black leather jacket",
                                                "placeholder"),
        ("ohwx man, red wool coat, snow", "user")]
    cached = {node for data in messages(second, "execution_cached") for node in data["nodes"]}
    assert "2" not in cached  # the changed widget re-ran Caption Review
    assert "Traceback" not in server.log()


def test_a_new_edit_keeps_load_training_set_cached(served):
    server, ts = served
    run(server, {ts.items[3].sha256: "ohwx man, close-up"})
    second = run(server, {ts.items[3].sha256: "ohwx man, close-up, smiling"})
    # ComfyUI's history lists the nodes it served from its cache; the others ran
    cached = {node for data in messages(second, "execution_cached") for node in data["nodes"]}
    assert cached == {"1"}
    assert (Path(ts.root) / ts.items[3].caption_file).read_text(encoding="utf-8") == \
        "ohwx man, close-up, smiling\n"


def test_an_edit_after_caption_refine_recaptions_nothing(served):
    """The whole loop: captioned by Caption Refine, then an edit in the review; queueing the
    edit runs Caption Review alone (ComfyUI's cache serves the rest) and keeps every other
    refined caption."""
    server, ts = served
    root = Path(ts.root)
    face = ts.items[3]
    first = run(server, {}, server.tiny_captioner)
    refined = read_training_set(root)
    assert all(i.caption_source == "refined" for i in refined.items)
    assert "6 caption(s) refined; captioner ran on 6 image(s)" in first["outputs"]["4"]["text"][0]

    second = run(server, {face.sha256: "ohwx, man, close-up of the face, smiling"},
                 server.tiny_captioner)
    cached = {node for data in messages(second, "execution_cached") for node in data["nodes"]}
    assert cached == {"1", "3", "4"}  # only Caption Review ran
    after = read_training_set(root)
    assert after.items[3].caption == "ohwx, man, close-up of the face, smiling"
    assert after.items[3].caption_source == "user"
    assert [i.caption for i in after.items if i.image != face.image] == \
        [i.caption for i in refined.items if i.image != face.image]
