"""Training sets in a real ComfyUI: its own "Load Image and Text Dataset from Folder" reads what
Save Training Set's library writes, and Load Training Images / Load Training Set run there
(skips without COMFYUI_PATH; see tests/comfyui_harness.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from PIL import Image

from intenttuner.dataset.kohya import write_training_set
from tests.comfyui_harness import ComfyServer
from tests.dataset_helpers import noise, sample_augmented, sample_intent, truncated, write

pytestmark = pytest.mark.comfyui


def test_comfyui_reads_the_training_set_and_runs_the_dataset_nodes(tmp_path):
    base = tmp_path / "base"
    input_dir = base / "input"
    training_set = write_training_set(sample_augmented(), sample_intent(),
                                      input_dir / "training_sets", "ohwx")
    photos = input_dir / "photos"
    photos.mkdir()
    noise(120, 90, 1).save(photos / "a.png")
    noise(90, 120, 2).save(photos / "été 2.jpg")
    write(photos, "broken.png", truncated(noise(200, 200, 3), "PNG"))
    write(photos, "notes.txt", b"not an image")
    prompt = {
        "1": {"class_type": "LoadImageTextDataSetFromFolder",
              "inputs": {"folder": "training_sets/ohwx"}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 1]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "4": {"class_type": "IntentTunerLoadTrainingImages",
              "inputs": {"folder": "photos", "path": "", "recursive": False, "max_side": 2048}},
        "5": {"class_type": "IntentTunerLoadTrainingSet",
              "inputs": {"folder": "training_sets/ohwx", "path": ""}},
    }
    with ComfyServer(base) as server:
        info = server.get("/object_info/IntentTunerLoadTrainingSet")
        listed = info["IntentTunerLoadTrainingSet"]["input"]["required"]["folder"][0]
        response = server.post("/prompt", {"prompt": prompt})
        history = server.wait_for_history(timeout=180)
        log = server.log()
    assert history["status"]["status_str"] == "success", json.dumps(history["status"])[-3000:]
    assert "training_sets/ohwx" in listed
    assert response["node_errors"] == {}
    outputs = history["outputs"]

    # ComfyUI's reader: every image x its repeats, each with its caption
    expected = Counter()
    sizes = Counter()
    for item in training_set.items:
        expected[item.caption] += item.repeats
        sizes[tuple(item.size)] += item.repeats
    assert Counter(outputs["2"]["text"]) == expected
    assert sum(expected.values()) == training_set.steps_per_epoch() == 10
    previews = outputs["3"]["images"]
    seen = Counter()
    for preview in previews:
        with Image.open(base / "temp" / preview["subfolder"] / preview["filename"]) as image:
            seen[image.size] += 1
    assert seen == sizes

    report = outputs["4"]["text"][0]
    assert report.startswith("2 of 4 loaded")
    assert "broken.png (truncated" in report and "notes.txt (not an image)" in report
    summary = outputs["5"]["text"][0]
    assert summary.startswith("6 images in 3 group(s), 10 per epoch")
    assert "Traceback" not in log
