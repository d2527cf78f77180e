"""The intent nodes as ComfyUI calls them: IMAGE tensors in, INTENT + preview IMAGE out; save,
load and edit; and the API key kept out of every workflow, log line and file."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from pathlib import Path

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


@pytest.mark.parametrize(("name", "message"), [
    ("output/intents/../../secrets.json", "is not allowed: use a plain name"),
    ("/etc/passwd", "is not allowed: use a plain name"),
    ("models/x.json", "must start with output/intents/ or input/intents/"),
    ("output/intents/missing.json", "does not exist"),
])
def test_load_refuses_paths_outside_the_intent_folders(nodes, pack, name, message, models_root):
    with pytest.raises(lib(pack, "errors").InputError, match=f"'{re.escape(name)}' {message}"):
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
    monkeypatch.setenv("INTENTTUNER_LLM_TRUSTED_HOSTS", base_url.split("/")[2])  # send the key
    try:
        widgets = {"base_url": base_url, "model": "gpt-test", "api_key_env": "OPENAI_API_KEY",
                   "timeout_s": 10.0}
        llm = nodes["IntentTunerLLMSettings"]().make(**widgets)[0]
        out = nodes["IntentTunerIntentParse"]().parse(
            DESCRIPTION, "error", reference_boxes=BOXES, reference_1=image_batch(3, 64, 48, .3),
            llm=llm, if_llm_fails="error")
        intent, _, summary = out["result"]
        saved = nodes["IntentTunerIntentSave"]().save(intent, "secret-test", True)
    finally:
        fake.stop()

    # it was used...
    assert [r["headers"]["authorization"] for r in fake.requests] == [f"Bearer {KEY}"] * 2
    # ...but is in nothing the nodes produced: the LLM output, the parse's outputs and UI,
    assert KEY not in repr(llm) and KEY not in json.dumps(llm.to_dict())
    assert KEY not in intent.to_json() and KEY not in summary
    assert KEY not in json.dumps(out["ui"]) and KEY not in json.dumps(saved)
    assert KEY not in caplog.text  # no log line,
    files = [p for p in (models_root.parent / "output").rglob("*") if p.is_file()]
    assert Path(saved["result"][0]) in files  # the saved intent among them
    for path in files:  # and no output file
        assert KEY.encode() not in path.read_bytes(), path


def test_a_key_typed_into_the_llm_node_is_refused_without_echoing_it(nodes, pack):
    """What keeps keys out of saved workflows: a widget value that is a key is refused, and
    the error ComfyUI shows (and logs) does not repeat it."""
    with pytest.raises(lib(pack, "errors").InputError, match="NAME of an environment") as info:
        nodes["IntentTunerLLMSettings"]().make("http://127.0.0.1:1/v1", "m", KEY, 10.0)
    assert KEY not in str(info.value)


def _simple_intent(nodes):
    return nodes["IntentTunerIntentParse"]().parse("trigger: x. Keep the face.", "error")[
        "result"][0]


def test_save_skips_a_file_that_exists_and_leaves_it_untouched(nodes, models_root):
    folder = models_root.parent / "output" / "intents"
    folder.mkdir(parents=True)
    existing = folder / "intent_00001.json"
    existing.write_bytes(b"someone else's file")

    path = nodes["IntentTunerIntentSave"]().save(_simple_intent(nodes), "intent", True)[
        "result"][0]

    assert path == str(folder / "intent_00002.json")
    assert existing.read_bytes() == b"someone else's file"


def test_parallel_saves_never_clobber_each_other(nodes, pack, models_root):
    intents = [nodes["IntentTunerIntentParse"]().parse(f"trigger: t{i}. Keep the face.",
                                                       "error")["result"][0] for i in range(8)]
    paths: list[str] = []
    barrier = threading.Barrier(len(intents))

    def save(intent):
        barrier.wait()  # all threads look for a free number at the same moment
        paths.append(nodes["IntentTunerIntentSave"]().save(intent, "race", False)["result"][0])

    threads = [threading.Thread(target=save, args=(i,)) for i in intents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(set(paths)) == len(intents)
    schema = lib(pack, "intent.schema")
    triggers = sorted(schema.Intent.load(p).trigger_words[0] for p in paths)
    assert triggers == sorted(i.trigger_words[0] for i in intents)  # each file is whole


def test_load_lists_a_placeholder_that_says_what_to_do_when_nothing_is_saved(nodes, pack,
                                                                              models_root):
    load = nodes["IntentTunerIntentLoad"]
    (choices, _), = load.INPUT_TYPES()["required"].values()
    assert choices == [load.NOTHING_SAVED]
    assert "run Intent Save first" in load.NOTHING_SAVED and "input/intents" in \
        load.NOTHING_SAVED

    message = load.VALIDATE_INPUTS(load.NOTHING_SAVED)  # instead of "Value not in list"
    assert isinstance(message, str) and "run a workflow with Intent Save first" in message
    shared = load.VALIDATE_INPUTS("output/intents/intent_00001.json")  # a shared workflow's
    assert shared.startswith("intent file 'output/intents/intent_00001.json' does not exist, "
                             "and no intent is saved yet: run a workflow with Intent Save")
    with pytest.raises(lib(pack, "errors").InputError, match="No intent is saved yet: run a "
                                                             "workflow with Intent Save first"):
        load().load(load.NOTHING_SAVED)

    nodes["IntentTunerIntentSave"]().save(_simple_intent(nodes), "intent", True)
    (choices, _), = load.INPUT_TYPES()["required"].values()
    assert choices == ["output/intents/intent_00001.json"]  # the placeholder is gone
    assert load.VALIDATE_INPUTS(choices[0]) is True
    stale = load.VALIDATE_INPUTS("output/intents/from_another_machine.json")
    assert "does not exist" in stale and "Pick a saved intent" in stale


def test_edit_drops_the_no_values_note_once_values_are_given(nodes):
    intent = nodes["IntentTunerIntentParse"]().parse(
        "Keep the face. Hair colour adjustable. The jacket can change. Keep the hat [1].",
        "error", reference_boxes="[[0, 0, 9, 9], [2, 2, 12, 12]]",
        reference_1=image_batch(1, 32, 32, 0.5))["result"][0]
    assert any(n.startswith("'hair colour': no values given; assuming") for n in intent.notes)
    assert any(n.startswith("'jacket': no values given, so it cannot") for n in intent.notes)
    assert any(n.startswith("No trigger word given") for n in intent.notes)
    assert any(n.startswith("Reference box [2] is not bound") for n in intent.notes)
    values = [{"text": "red hair", "references": []}, {"text": "grey hair", "references": [2]}]

    edited, _, text = nodes["IntentTunerIntentEdit"]().edit(intent, json.dumps({
        "trigger_words": ["vin"], "concepts": {"hair colour": {"values": values}}}))["result"]

    assert [v.text for v in edited.concepts[1].values] == ["red hair", "grey hair"]
    assert not any("'hair colour'" in n for n in edited.notes)
    assert "hair colour': no values" not in text  # the preview text follows
    assert not any(n.startswith("No trigger word given") for n in edited.notes)
    assert not any(n.startswith("Reference box [2]") for n in edited.notes)  # now bound
    assert any(n.startswith("'jacket': no values given") for n in edited.notes)  # still true


def test_edit_that_takes_values_away_says_the_concept_cannot_be_probed(nodes):
    intent = nodes["IntentTunerIntentParse"]().parse(
        "trigger: x. change: hair colour (red hair / black hair).", "error")["result"][0]
    assert intent.notes == []

    edited = nodes["IntentTunerIntentEdit"]().edit(
        intent, '{"concepts": {"hair colour": {"values": []}}}')["result"][0]

    assert [n for n in edited.notes if n.startswith("'hair colour'")] == [
        "'hair colour': no values given, so it cannot be probed. Add some, e.g. "
        "'hair colour (A / B)'."]


def test_edit_keeps_notes_the_patch_sets_itself(nodes):
    intent = nodes["IntentTunerIntentParse"]().parse("Hair colour adjustable.", "error")[
        "result"][0]
    edited = nodes["IntentTunerIntentEdit"]().edit(
        intent, '{"trigger_words": ["y"], "notes": ["checked by hand"]}')["result"][0]
    assert edited.notes == ["checked by hand"]


def test_llm_fallback_note_is_a_sentence_in_the_preview(nodes, pack):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = nodes["IntentTunerLLMSettings"]().make(f"http://127.0.0.1:{port}/v1", "gpt-x",
                                                 "OPENAI_API_KEY", 5.0)[0]
    text = nodes["IntentTunerIntentParse"]().parse(DESCRIPTION, "error", llm=llm,
                                                   reference_boxes=BOXES,
                                                   reference_1=image_batch(3, 64, 48, .3),
                                                   if_llm_fails="offline")["result"][2]
    note = next(line for line in text.splitlines() if "offline parser" in line)
    assert note.startswith(f"Note: The LLM 'gpt-x' at http://127.0.0.1:{port}/v1 failed, so "
                           "the offline parser was used instead. The LLM's error: ")
    assert "offline parser was:" not in text


def test_concept_detect_declares_torchvision(nodes, pack, monkeypatch):
    import importlib.util

    detect = nodes["IntentTunerConceptDetect"]
    assert [(p.module, p.pip) for p in detect.requires()] == [("torchvision", "torchvision")]

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torchvision" else real(name, *a))
    nodes_pkg = sys.modules[f"{pack.__name__}.nodes"]
    assert [p.pip for p in nodes_pkg._missing_packages(detect)] == ["torchvision"]
    with pytest.raises(ImportError, match=r"Concept Detect needs the Python package "
                                          r"'torchvision'.*pip install torchvision"):
        detect().detect([image_batch(1, 8, 8, 0.5)], [None], [None], [0.3], [0.2])
