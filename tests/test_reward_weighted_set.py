"""The weighted set of a reward fine-tune: marks (or a reward model's scores) become loss
weights that make the trainer's loss the paper's (1/N_gen) sum r_i L_i + beta (1/R) sum L_j,
zero-weight images are left out and counted, nothing is replaced, bad input is named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner.dataset.kohya_read import read_training_set
from intenttuner.errors import InputError
from intenttuner.reward import feedback_set as fsm
from intenttuner.reward.weighted_set import build_weighted_set, image_rewards
from intenttuner.training.lora_metadata import REWARD_SETTINGS
from tests.training_helpers import make_kohya_set

PROMPT = "ohwx, a photo"


def solid(value: int) -> Image.Image:
    return Image.fromarray(np.full((32, 32, 3), value, dtype=np.uint8))


def rated(marks: list[str | None], prompts=None):
    fs = fsm.rating_set("ratings")
    keys = fsm.add_images(fs, [solid(20 * i) for i in range(len(marks))],
                          prompts or [PROMPT] * len(marks))
    for key, mark in zip(keys, marks, strict=True):
        if mark:
            fsm.set_mark(fs, key, mark)
    return fs


class FakeReward:
    """A reward model stand-in (part A's API): P(good) = the image's brightness."""

    name = "fake"

    def check_encoder(self, encoder) -> None:
        return None

    def score_embeddings(self, image_emb, text_emb):
        return image_emb[:, 0]


class FakeEncoder:
    def embed_images(self, images, batch_size=32):
        return torch.tensor([[np.asarray(i).mean() / 255.0, 0.0] for i in images])

    def embed_texts(self, texts, batch_size=256):
        return torch.ones(len(texts), 2)


def original(tmp_path):
    return read_training_set(make_kohya_set(tmp_path / "orig", count=3, size=(32, 32),
                                            repeats=2))


def test_marks_become_the_papers_weights(models_root, tmp_path):
    fs = rated(["good", "good", "bad", None])
    result = build_weighted_set(fs, original(tmp_path), "subject-reward", "marks", beta=0.5,
                                provenance={"source_lora": "subject.safetensors"})
    items = result.training_set.items
    generated = [i for i in items if i.group == "generated"]
    originals = [i for i in items if i.group == "subject"]
    assert (len(generated), len(originals), result.left_out) == (2, 3, 1)  # unmarked: not used
    entries = sum(i.repeats for i in items)  # what the trainer draws from: 2 + 3 x 2
    assert entries == 8
    # Expected loss (1/entries) sum repeats * w * L: each good image 1/3 (3 marked), originals
    # beta * 1/3 each (their repeats are equal).
    assert all(i.loss_weight == pytest.approx(1.0 * entries / 3) for i in generated)
    assert all(i.loss_weight == pytest.approx(0.5 * entries / 6) for i in originals)
    assert all(i.caption == PROMPT for i in generated)
    settings = result.training_set.settings[REWARD_SETTINGS]
    assert settings["source_lora"] == "subject.safetensors" and settings["left_out"] == 1
    assert "/" not in settings["original_set"]
    assert "1 of weight 0 left out" in result.summary()
    assert any("only 2 image(s)" in w and "at least 8" in w for w in result.warnings)
    assert not any("every marked image" in w for w in result.warnings)  # one is bad
    again = build_weighted_set(fs, original(tmp_path), "subject-reward", "marks", beta=0)
    assert again.training_set.root.endswith("subject-reward_00002")  # never replaced
    assert {i.group for i in again.training_set.items} == {"generated"}


def test_reward_and_both_weightings_score_with_the_reward_model(models_root, tmp_path):
    fs = rated(["good", "bad", None, None])
    scored = image_rewards(fs, "reward", FakeReward(), FakeEncoder())
    assert [w.by for w in scored] == ["reward model"] * 4
    assert [round(w.reward, 3) for w in scored] == [0.0, 0.078, 0.157, 0.235]
    both = image_rewards(fs, "both", FakeReward(), FakeEncoder())
    assert [(w.by, round(w.reward, 3)) for w in both] == [
        ("mark", 1.0), ("mark", 0.0), ("reward model", 0.157), ("reward model", 0.235)]


def test_all_good_marks_train_with_a_warning(models_root, tmp_path):
    """All marks alike: all bad is refused (below), all good trains as plain fine-tuning on
    them, said in a warning; enough of them silence the too-few warning."""
    result = build_weighted_set(rated(["good"] * 8), original(tmp_path), "x", beta=1)
    assert result.kept == 8 and all(i.loss_weight > 0 for i in result.training_set.items)
    assert [w for w in result.warnings if "every marked image" in w and "bad ones" in w]
    assert not any("only" in w for w in result.warnings)
    assert "warning: every marked image" in result.summary()


def test_bad_input_is_named(models_root, tmp_path):
    with pytest.raises(InputError, match="marked good"):
        image_rewards(rated(["bad", "bad"]))
    with pytest.raises(InputError, match="reward model"):
        image_rewards(rated(["good"]), "reward")
    with pytest.raises(InputError, match="no prompt"):
        image_rewards(rated(["good", "bad"], prompts=[PROMPT, ""]))
    with pytest.raises(InputError, match="weighting"):
        image_rewards(rated(["good"]), "votes")
    with pytest.raises(InputError, match="beta"):
        build_weighted_set(rated(["good"]), original(tmp_path), "x", beta=-1)
