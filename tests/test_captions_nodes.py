"""Caption Refine as ComfyUI calls it (the pack loaded as ComfyUI loads it), with a tiny
random Florence-2 captioner and, for the LLM path, the loopback fake endpoint."""

from __future__ import annotations

import json

import pytest

from tests.dataset_helpers import module, sample_augmented, sample_intent
from tests.fake_llm import FakeLLM, Reply


def node(pack, name):
    return pack.NODE_CLASS_MAPPINGS[f"IntentTuner{name}"]


@pytest.fixture
def setup(pack, tmp_path):
    lib = f"{pack.__name__}.intenttuner"
    ts = module(lib, "dataset.kohya").write_training_set(
        sample_augmented(lib), sample_intent(lib), tmp_path / "sets", "set")
    tiny = module(lib, "tiny").TINY_BUILDERS["captioner"](tmp_path / "models")
    captioner = module(lib, "families").FAMILIES["captioner"].load(tiny)
    return lib, ts, captioner


def run(pack, ts, captioner, **overrides):
    inputs = {"detail": "detailed", "max_tokens": 77, "overwrite_user_edits": False,
              "recaption": False, "max_new_tokens": 12, "batch_size": 4, **overrides}
    return node(pack, "CaptionRefine")().refine(ts, captioner=captioner, **inputs)


def test_schema_is_explicit(pack):
    schema = node(pack, "CaptionRefine").INPUT_TYPES()
    for section in ("required", "optional"):
        for name, (_, options) in schema[section].items():
            assert options.get("tooltip"), name
    assert node(pack, "CaptionRefine").CATEGORY == "IntentTuner/Captions"


def test_the_node_captions_the_set_and_previews_it(pack, setup):
    _, ts, captioner = setup
    out = run(pack, ts, captioner)
    result, preview, report = out["result"]
    assert all(i.caption_source == "refined" for i in result.items)
    for item in result.items:
        text = (result.path / item.caption_file).read_text(encoding="utf-8").strip()
        assert text == item.caption and text.startswith("ohwx, man")
    assert preview.ndim == 4 and preview.shape[-1] == 3  # one IMAGE: the contact sheet
    assert "6 caption(s) refined; captioner ran on 6 image(s)" in report
    assert out["ui"]["text"] == [report]  # (previews are saved only inside ComfyUI)


def test_an_llm_that_fails_the_checks_falls_back_visibly(pack, setup, monkeypatch):
    lib, ts, captioner = setup
    monkeypatch.delenv("INTENTTUNER_LLM_TRUSTED_HOSTS", raising=False)
    fake = FakeLLM(replies=[Reply(json.dumps({"captions": [
        {"id": str(i), "caption": "a man with a gold necklace"} for i in range(1, 5)]}))])
    url = fake.start()
    try:
        settings = module(lib, "llm").LLMSettings(base_url=url, model="fake",
                                                  api_key_env="IT_TEST_API_KEY", timeout_s=5)
        result, _, report = run(pack, ts, captioner, llm=settings)["result"]
    finally:
        fake.stop()
    assert len(fake.requests) == 4  # 2 batches of 4 and 2, each asked once and repaired once
    assert "failed the checks twice" in report and "used the offline rules" in report
    assert all("necklace" not in i.caption for i in result.items)
