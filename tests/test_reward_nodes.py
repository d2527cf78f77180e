"""Reward model nodes, as ComfyUI loads the pack: Train Reward Model on feedback sets (through
their ``marked()`` only), Load Reward Model, Reward Score; schemas with tooltips everywhere."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from intenttuner.imageio import pils_to_batch
from intenttuner.tiny import TINY_BUILDERS
from tests.reward_helpers import red_rule_examples

NODE_IDS = ("IntentTunerTrainRewardModel", "IntentTunerLoadRewardModel",
            "IntentTunerRewardScore")


@dataclass(frozen=True)
class Marked:  # the fields of feedback_set.MarkedImage the trainer reads
    path: Path
    image: str
    prompt: str | None
    mark: str | None
    source: str
    seed: int | None = None


class FakeFeedback:
    def __init__(self, items):
        self.items = items

    def marked(self):
        return [item for item in self.items if item.mark is not None]


@pytest.fixture(scope="module")
def feedback_sets(tmp_path_factory):
    """Two sets of marked image files (28 + 20 marks) and one unmarked image."""
    folder = tmp_path_factory.mktemp("sets")
    items = []
    for i, example in enumerate(red_rule_examples(49, seed=3)):
        path = folder / f"{i}.png"
        example.image.save(path)
        mark = None if i == 48 else ("good" if example.good else "bad")
        items.append(Marked(path, f"{i}.png", example.prompt, mark, "a" if i < 28 else "b"))
    return FakeFeedback(items[:28]), FakeFeedback(items[28:])


def node(pack, node_id):
    return pack.NODE_CLASS_MAPPINGS[node_id]


def input_error(pack):
    return sys.modules[f"{pack.__name__}.intenttuner.errors"].InputError


def test_nodes_are_registered_with_tooltips_everywhere(pack):
    for node_id in NODE_IDS:
        cls = node(pack, node_id)
        assert cls.CATEGORY == "IntentTuner/Feedback" and cls.DESCRIPTION
        inputs = cls.INPUT_TYPES()
        for section in inputs.values():
            for name, spec in section.items():
                assert spec[1].get("tooltip"), f"{node_id}.{name}"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
    train = node(pack, "IntentTunerTrainRewardModel").INPUT_TYPES()
    assert train["required"]["feedback"][0] == "IT_FEEDBACK"
    assert train["optional"]["feedback_2"][0] == "IT_FEEDBACK"
    assert train["required"]["image_encoder"][0] == "IT_IMAGE_ENCODER"
    assert node(pack, "IntentTunerTrainRewardModel").RETURN_TYPES == (
        "IT_REWARD_MODEL", "STRING", "IMAGE")


def test_train_load_and_score(pack, models_root, clip, feedback_sets):
    first, second = feedback_sets
    out = node(pack, "IntentTunerTrainRewardModel")().train(
        first, clip, "node model", epochs=5, aux_weight=0.5, held_out=0.2, seed=0,
        train_anyway=False, feedback_2=second)
    model, report, chart = out["result"]
    assert "of 48 marks (26 good, 22 bad)" in report  # both sets; the unmarked one left out
    assert (models_root / "reward_models" / "node_model.safetensors").is_file()
    assert chart.shape == (1, 400, 720, 3) and out["ui"]["text"] == [report]

    loader = node(pack, "IntentTunerLoadRewardModel")
    choices = loader.INPUT_TYPES()["required"]["model"][0]
    assert "node_model.safetensors" in choices
    loaded, info = loader().load("node_model.safetensors")
    assert "IntentTuner-Tiny-ViT.random (32 values)" in info
    assert "held-out accuracy" in info

    images = [e.image for e in red_rule_examples(4, seed=9)]
    batch = pils_to_batch(images)
    scorer = node(pack, "IntentTunerRewardScore")()
    one_for_all = scorer.score([batch], ["a circle"], [loaded], [clip])["result"]
    assert len(one_for_all[0]) == 4 and all(0 < s < 1 for s in one_for_all[0])
    per_line = scorer.score([batch], ["a circle\na square\na circle\na circle"], [model],
                            [clip])["result"]
    assert per_line[0][0] == pytest.approx(one_for_all[0][0], abs=1e-5)
    assert per_line[0][1] != pytest.approx(one_for_all[0][1], abs=1e-7)
    per_batch = scorer.score([batch[:2], batch[2:]], ["a circle", "a square"], [model],
                             [clip])["result"]
    assert per_batch[0][:2] == pytest.approx(one_for_all[0][:2], abs=1e-5)
    assert per_batch[2].shape[0] == 1 and "mean P(good)" in per_batch[1]
    with pytest.raises(input_error(pack), match="4 image.*3 prompts"):
        scorer.score([batch], ["a", "b", "c"], [model], [clip])
    with pytest.raises(input_error(pack), match="empty"):
        scorer.score([batch], [""], [model], [clip])


def test_score_refuses_another_encoder(pack, models_root, clip, tmp_path):
    from intenttuner.families.image_encoder import FAMILY as CLIP_FAMILY
    from intenttuner.tiny.image_encoder import make_tiny as make_tiny_clip

    folder = models_root / "reward_models"
    widget = TINY_BUILDERS["reward_model"](folder, encoder=clip).name
    model, _ = node(pack, "IntentTunerLoadRewardModel")().load(widget)
    other = CLIP_FAMILY.load(make_tiny_clip(tmp_path, seed=1))
    batch = pils_to_batch([e.image for e in red_rule_examples(2, seed=9)])
    with pytest.raises(input_error(pack), match="trained with image encoder"):
        node(pack, "IntentTunerRewardScore")().score([batch], ["a circle"], [model], [other])


def test_too_few_marks_are_refused_with_the_count_needed(pack, models_root, clip,
                                                         feedback_sets):
    first, _ = feedback_sets
    train = node(pack, "IntentTunerTrainRewardModel")()
    with pytest.raises(input_error(pack), match="at least 40 marks"):
        train.train(first, clip, "x", 5, 0.5, 0.2, 0, False)
    out = train.train(first, clip, "", 2, 0.5, 0.2, 0, True)
    assert "Warning: Too few marks" in out["result"][1] and "Not saved" in out["result"][1]
    assert not (models_root / "reward_models").exists() or \
        not any((models_root / "reward_models").iterdir())


def test_load_without_any_model_says_how_to_get_one(pack, models_root):
    loader = node(pack, "IntentTunerLoadRewardModel")
    choices = loader.INPUT_TYPES()["required"]["model"][0]
    assert choices == [sys.modules[f"{pack.__name__}.nodes.reward"].NONE_YET]
    with pytest.raises(input_error(pack), match="train one with Train Reward Model"):
        loader().load(choices[0])


def test_scores_match_the_library(pack, models_root, clip):
    from intenttuner.reward.score import score_images

    folder = models_root / "reward_models"
    widget = TINY_BUILDERS["reward_model"](folder, encoder=clip).name
    model, _ = node(pack, "IntentTunerLoadRewardModel")().load(widget)
    images = [e.image for e in red_rule_examples(3, seed=4)]
    scores = node(pack, "IntentTunerRewardScore")().score(
        [pils_to_batch(images)], ["a square"], [model], [clip])["result"][0]
    # the node converts the IMAGE batch to 8-bit images, as every node does
    expected = score_images(model, clip, images, ["a square"] * 3)
    torch.testing.assert_close(torch.tensor(scores), expected, atol=2e-3, rtol=0)
