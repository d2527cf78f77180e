"""Picking a manifest entry that is not on disk while downloads are off: one error that names
every file still needed (the entry's and its requirements'), with source URL and target path."""

from __future__ import annotations

import pytest

from intenttuner import loading
from intenttuner.errors import OfflineError
from intenttuner.weights.manifest import load_manifest

HUB = "https://huggingface.co"
# The pinned sources of the original-checkpoint detector option and its BERT tokenizer, written
# out here rather than read from the manifest so a wrong URL in a message cannot go unnoticed.
CHECKPOINT_URL = (f"{HUB}/ShilongLiu/GroundingDINO/resolve/"
                  "a94c9b567a2a374598f05c584e96798a170c56fb/groundingdino_swint_ogc.pth")
BERT_BASE = (f"{HUB}/google-bert/bert-base-uncased/resolve/"
             "86b5e0934494bd15c9632b12f734a8a67f723594")
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "config.json")


@pytest.fixture
def offline(models_root, monkeypatch):
    """No downloads (conftest sets INTENTTUNER_OFFLINE) and the real Hub's URLs in messages."""
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return models_root


def _offline_message(name: str) -> str:
    with pytest.raises(OfflineError) as info:
        loading.load_model("detector", name)
    return str(info.value)


def test_missing_original_checkpoint_names_the_pth_and_every_tokenizer_file(offline):
    message = _offline_message("groundingdino_swint_ogc.pth")

    assert CHECKPOINT_URL in message
    assert str(offline / "grounding-dino" / "groundingdino_swint_ogc.pth") in message
    for name in TOKENIZER_FILES:
        assert f"{BERT_BASE}/{name}" in message
        assert str(offline / "bert-base-uncased" / name) in message
    assert "INTENTTUNER_OFFLINE" in message
    # The entry the user picked comes first, then what it needs.
    assert message.index("groundingdino_swint_ogc.pth") < message.index("vocab.txt")


def test_only_what_is_missing_is_listed(offline):
    tokenizer = load_manifest().get("bert-base-uncased-tokenizer")
    folder = offline / "bert-base-uncased"
    folder.mkdir()
    for file in tokenizer.files:  # complete by size, which is what counts as present
        (folder / file.name).write_bytes(b"\0" * file.size)

    message = _offline_message("groundingdino_swint_ogc.pth")

    assert CHECKPOINT_URL in message
    assert not any(f"{BERT_BASE}/{name}" in message for name in TOKENIZER_FILES)


def test_present_checkpoint_with_missing_tokenizer_names_only_the_tokenizer(offline):
    checkpoint = offline / "grounding-dino" / "groundingdino_swint_ogc.pth"
    checkpoint.parent.mkdir()
    size = load_manifest().get("groundingdino-swint-ogc").files[0].size
    with open(checkpoint, "wb") as f:  # sparse: the right size without writing 690 MB
        f.truncate(size)

    message = _offline_message("groundingdino_swint_ogc.pth")

    assert CHECKPOINT_URL not in message
    assert all(f"{BERT_BASE}/{name}" in message for name in TOKENIZER_FILES)
