"""The prompt-adaptation nodes as ComfyUI calls them (every input a list): Prompt Adapt with the
tiny Promptist and an intent, its backend errors; Prompt Reward on one image batch per prompt
with known-output stand-ins, so the numbers are exact; Train Prompt Adapter writing a new
adapter folder, never over an old one."""

from __future__ import annotations

import pytest
import torch

from tests.evaluation_helpers import COLOURS, ColourClip, FixedScorer
from tests.test_evaluation_nodes import lib, make_intent, node, tiny

MILO = ("Train my character milo, trigger word milo. Keep his face [1]. His hair colour can be "
        "black, blonde, red or blue. Never give him a necklace.")


@pytest.fixture
def adapter(pack, models_root):
    name = tiny(pack, models_root, "prompt_adapter")
    return node(pack, "LoadPromptAdapter").load(name, "auto")[0]


def short_generation(monkeypatch, pack):
    """A random model never ends its rewrite early: 6 new tokens keep the tests fast."""
    import sys

    family = sys.modules[f"{pack.__name__}.intenttuner.families.prompt_adapter"]
    monkeypatch.setitem(family.GENERATION, "max_new_tokens", 6)


def test_prompt_adapt_keeps_the_list_aligned_and_the_intent(pack, adapter, monkeypatch):
    short_generation(monkeypatch, pack)
    intent = make_intent(pack, MILO)
    prompts = ["milo with blonde hair, in a park", "", "a photo of milo's face"]
    out = node(pack, "PromptAdapt").adapt(prompts, adapter=[adapter], intent=[intent],
                                          batch_size=[2])
    adapted, report = out["result"]
    assert len(adapted) == 3 and adapted[1] == ""  # the empty item passes through, in place
    for plain, rewrite in ((prompts[0], adapted[0]), (prompts[2], adapted[2])):
        words = rewrite.lower().replace(",", " ").replace("'s", "").split()
        assert "milo" in words, (plain, rewrite)  # the trigger survives (repaired if need be)
        assert "necklace" not in words
    assert "blonde" in adapted[0] and "hair" in adapted[0]
    assert out["ui"]["text"] == [report]
    assert report.startswith("Adapted 2 of 3 prompt(s) with promptist:promptist-tiny-random"), \
        report
    assert "- prompt 2: empty: passed through unchanged" in report, report


def test_prompt_adapt_needs_exactly_one_backend(pack, adapter):
    errors = lib(pack, "errors")
    with pytest.raises(errors.InputError, match="needs a rewriter"):
        node(pack, "PromptAdapt").adapt(["a cat"])
    with pytest.raises(errors.InputError, match="both an adapter and an llm"):
        node(pack, "PromptAdapt").adapt(["a cat"], adapter=[adapter], llm=[object()])


class QualityStandIn(FixedScorer):
    """A quality scorer with its own CLIP, as Load Quality Scorer outputs it."""

    def __init__(self, scores, encoder):
        super().__init__(scores)
        self.encoder = encoder


def batch(colour: str, count: int = 1) -> torch.Tensor:
    """``count`` solid images of ``colour`` as one (B, H, W, 3) batch, as VAE Decode gives."""
    rgb = torch.tensor(COLOURS[colour], dtype=torch.float32).clamp(0, 1)
    return rgb.expand(count, 16, 16, 3).clone()


def test_prompt_reward_scores_each_prompts_batch_and_previews(pack):
    clip = ColourClip()
    # plain images, then adapted ones, in prompt order: gains 2-1 = +1 and 1-3 = -2
    quality = QualityStandIn([1.0, 1.0, 3.0, 3.0, 2.0, 2.0, 1.0, 1.0], clip)
    out = node(pack, "PromptReward").score(
        ["red", "blue"], ["red, vivid", "blue, vivid"],
        [batch("red", 2), batch("blue", 2)], [batch("red", 2), batch("red", 2)], [quality])
    reward, text, preview = out["result"]
    # prompt 1: adapted images are red, as asked (cosine 1: no penalty) -> +1
    # prompt 2: adapted images are red for "blue" (cosine of red with blue) -> -2 + penalty
    cosine = float(torch.nn.functional.cosine_similarity(
        torch.tensor(COLOURS["red"], dtype=torch.float32),
        torch.tensor(COLOURS["blue"], dtype=torch.float32), dim=0))
    penalty = min(20 * cosine - 5.6, 0.0)
    assert reward == pytest.approx((1.0 + (-2.0 + penalty)) / 2, abs=1e-5)
    assert quality.calls == [8]  # every image scored in one call
    assert preview.shape[0] == 1 and preview.shape[-1] == 3
    assert out["ui"]["text"] == [text]  # (ui images are saved by ComfyUI's runtime only)


def test_prompt_reward_refuses_batches_of_other_seeds(pack):
    clip = ColourClip()
    with pytest.raises(lib(pack, "errors").InputError, match="same seeds"):
        node(pack, "PromptReward").score(["red"], ["red, vivid"], [batch("red", 2)],
                                         [batch("red", 1)], [QualityStandIn([0.0] * 3, clip)])


def test_train_prompt_adapter_saves_a_new_adapter_and_never_overwrites(pack, adapter,
                                                                       models_root):
    pairs = "a cat => a cat, soft light\n# a comment\na dog\t=> a dog, studio photo"
    train = node(pack, "TrainPromptAdapter")
    trained, name, report = train.train(adapter, pairs, "my/adapter", 2, 1e-3, 2, 0)["result"]
    assert name == "my_adapter"  # the widget's name is made safe, inside the folder
    folder = models_root / "prompt_adapters" / name
    assert (folder / "model.safetensors").is_file()
    assert trained.metadata["pairs"] == 2 and trained.metadata["base"] == adapter.name
    assert "2 pair" in report, report
    again = train.train(adapter, pairs, "my/adapter", 1, 1e-3, 2, 0)["result"]
    assert again[1] == "my_adapter_00002"  # numbered like ComfyUI's saves, the first kept
    assert (folder / "model.safetensors").is_file()
    with pytest.raises(lib(pack, "errors").InputError, match="Line 1"):
        train.train(adapter, "no separator here", "x", 1, 1e-3, 1, 0)
