"""The intent nodes as ComfyUI calls them: IMAGE tensors in, INTENT + preview IMAGE out; save,
load and edit; and the API key kept out of every workflow, log line and file."""

from __future__ import annotations

import json
import logging
import sys

import pytest
import torch

from tests.fake_llm import FakeLLM, Reply
from tests.test_intent_llm import VALID

KEY = "sk-proj-TOPSECRET-abcdef0123456789"
BOXES = json.dumps([{"image": 0, "box": [4, 4, 40, 50], "label": "jacket"},
                    {"image": 2, "box": [0, 0, 30, 30]}])
DESCRIPTION = ("trigger: vin. Keep his face. He should switch between the leather jacket [1] and "
               "the striped jacket [2]. Never a necklace.")


def image_batch(n: int, height: int, width: int, value: float) -> torch.Tensor:
    return torch.full((n, height, width, 3), value)


@pytest.fixture
def nodes(pack, models_root):
    return pack.NODE_CLASS_MAPPINGS


def lib(pack, module: str):
    return sys.modules[f"{pack.__name__}.intenttuner.{module}"]


def test_parse_with_references_of_different_sizes(nodes, pack):
    out = nodes["IntentTunerIntentParse"]().parse(
        DESCRIPTION, "error", reference_boxes=BOXES,
        reference_1=image_batch(2, 64, 48, 0.2),  # a batch: images 0 and 1
        reference_2=image_batch(1, 32, 96, 0.9))  # image 2
    intent, preview, text = out["result"]

    assert [r.image_size for r in intent.references] == [(48, 64), (96, 32)]
    assert intent.reference(2).crop().getpixel((0, 0)) == (230, 230, 230)
    assert [c.name for c in intent.concepts] == ["face", "jacket", "necklace"]
    assert preview.ndim == 4 and preview.shape[0] == 1 and preview.shape[3] == 3
    assert preview.dtype == torch.float32 and 0 <= preview.min() and preview.max() <= 1
    assert text.startswith("Trigger: vin") and "DELETE  necklace" in text
    assert out["ui"]["text"] == [text]


def test_parse_reports_unplaced_sentences_as_an_error_or_lists_them(nodes, pack):
    node = nodes["IntentTunerIntentParse"]()
    text = "trigger: x. Keep the face. Blorp the hat."
    with pytest.raises(lib(pack, "errors").InputError, match="Blorp the hat"):
        node.parse(text, "error")
    intent, _, summary = node.parse(text, "list")["result"]
    assert "NOT UNDERSTOOD: Blorp the hat" in summary
    assert [c.name for c in intent.concepts] == ["face"]


def test_reference_to_a_box_that_does_not_exist(nodes, pack):
    with pytest.raises(lib(pack, "errors").InputError, match=r"refers to \[2\], but only 1"):
        nodes["IntentTunerIntentParse"]().parse(
            "trigger: x. Keep the jacket [1] and the hat [2].", "error",
            reference_boxes="[[4, 4, 20, 20]]", reference_1=image_batch(1, 32, 32, 0.5))


def test_save_never_overwrites_and_load_round_trips(nodes, pack, models_root):
    intent = nodes["IntentTunerIntentParse"]().parse(
        DESCRIPTION, "error", reference_boxes=BOXES, reference_1=image_batch(3, 64, 48, 0.3)
    )["result"][0]
    save = nodes["IntentTunerIntentSave"]()
    first = save.save(intent, "vincent/intent", True)["result"][0]
    second = save.save(intent, "vincent/intent", False)["result"][0]

    output = models_root.parent / "output" / "intents" / "vincent"
    assert first == str(output / "intent_00001.json")
    assert second == str(output / "intent_00002.json")
    names = nodes["IntentTunerIntentLoad"].INPUT_TYPES()["required"]["file"][0]
    assert names == ["output/intents/vincent/intent_00001.json",
                     "output/intents/vincent/intent_00002.json"]
    loaded = nodes["IntentTunerIntentLoad"]().load(names[0])["result"][0]
    assert loaded == intent
    assert nodes["IntentTunerIntentLoad"]().load(names[1])["result"][0].reference(1).crop() \
        is None


@pytest.mark.parametrize("prefix", ["../escape", "a/../../b", "bad*name", "C:/x", ""])
def test_save_refuses_prefixes_that_leave_the_folder(nodes, pack, prefix, models_root):
    intent = nodes["IntentTunerIntentParse"]().parse("trigger: x. Keep the face.", "error")[
        "result"][0]
    if prefix == "":  # empty falls back to the default name
        path = nodes["IntentTunerIntentSave"]().save(intent, prefix, True)["result"][0]
        assert path.endswith("intents/intent_00001.json")
        return
    with pytest.raises(lib(pack, "errors").InputError, match="filename_prefix"):
        nodes["IntentTunerIntentSave"]().save(intent, prefix, True)


def test_leading_slash_is_sanitised_into_the_intents_folder(nodes, models_root):
    intent = nodes["IntentTunerIntentParse"]().parse("trigger: x. Keep the face.", "error")[
        "result"][0]
    path = nodes["IntentTunerIntentSave"]().save(intent, "/etc/intent", True)["result"][0]
    assert path == str(models_root.parent / "output" / "intents" / "etc" / "intent_00001.json")


@pytest.mark.parametrize("name", ["output/intents/../../secrets.json", "/etc/passwd",
                                  "models/x.json", "output/intents/missing.json"])
def test_load_refuses_paths_outside_the_intent_folders(nodes, pack, name):
    with pytest.raises(lib(pack, "errors").InputError):
        nodes["IntentTunerIntentLoad"]().load(name)


def test_edit_node_applies_a_merge_patch(nodes):
    intent = nodes["IntentTunerIntentParse"]().parse("trigger: x. Keep the face. No hat.",
                                                     "error")["result"][0]
    edited, _, text = nodes["IntentTunerIntentEdit"]().edit(
        intent, '{"trigger_words": ["y"], "concepts": {"hat": null}}')["result"]
    assert edited.trigger_words == ["y"] and [c.name for c in edited.concepts] == ["face"]
    assert "Trigger: y" in text


def test_api_key_is_in_no_workflow_log_or_output_file(nodes, pack, models_root, monkeypatch,
                                                      caplog):
    """The key lives only in the environment: the LLM node stores the variable's NAME."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    lib(pack, "intent.llm_parse")._working_mode.clear()
    fake = FakeLLM(replies=[Reply("broken"), Reply(json.dumps(VALID))])  # a repair round too
    base_url = fake.start()
    try:
        widgets = {"base_url": base_url, "model": "gpt-test", "api_key_env": "OPENAI_API_KEY",
                   "timeout_s": 10.0}
        llm = nodes["IntentTunerLLMSettings"]().make(**widgets)[0]
        out = nodes["IntentTunerIntentParse"]().parse(
            DESCRIPTION, "error", reference_boxes=BOXES, reference_1=image_batch(3, 64, 48, .3),
            llm=llm, if_llm_fails="error")
        intent, _, summary = out["result"]
        saved = nodes["IntentTunerIntentSave"]().save(intent, "secret-test", True)["result"][0]
    finally:
        fake.stop()

    assert fake.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"  # it was used...
    workflow = {"1": {"class_type": "IntentTunerLLMSettings", "inputs": widgets},
                "2": {"class_type": "IntentTunerIntentParse",
                      "inputs": {"description": DESCRIPTION, "llm": ["1", 0]}}}
    assert KEY not in json.dumps(workflow)  # ...but is in no saved workflow,
    assert KEY not in repr(llm) and KEY not in json.dumps(llm.to_dict())
    assert KEY not in intent.to_json() and KEY not in summary
    assert KEY not in caplog.text  # no log line,
    for path in (models_root.parent / "output").rglob("*"):  # and no output file
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert saved
