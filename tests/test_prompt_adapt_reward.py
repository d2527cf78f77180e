"""The prompt reward: aesthetic gain + min(20 x CLIP - 5.6, 0), checked to the last digit with
known-output models (`ColourClip` sees an image as its mean colour and a text as the colour it
names, `FixedScorer` gives each image the score it is told), so every cosine is a cosine
between two colours computed apart from the code under test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from intenttuner import runtime
from intenttuner.errors import InputError
from intenttuner.prompt_adapt.reward import (
    PENALTY_THRESHOLD,
    generate_and_reward,
    prompt_reward,
    relevance_penalty,
    render_reward,
)
from tests.evaluation_helpers import ColourClip, FixedScorer, cosine, rgb, solid

RED = rgb("red")
# Colours whose cosine with red is 0.31623 / exactly 0.28 / 0.24254: either side of the
# threshold (and on it), where the penalty starts.
ABOVE, AT, BELOW = (80, 240, 0), (70, 240, 0), (60, 240, 0)
EXACT = {"abs": 1e-6, "rel": 0}  # float32 embeddings: a cosine is good to ~1e-7


def paper(c: float) -> float:
    """The paper's penalty, written out apart from the module."""
    return min(20 * c - 5.6, 0.0)


def test_the_penalty_is_clipped_at_0_28():
    assert PENALTY_THRESHOLD == pytest.approx(0.28)
    assert relevance_penalty(0.28) == 0.0
    assert relevance_penalty(0.3) == 0.0
    assert relevance_penalty(1.0) == 0.0
    assert relevance_penalty(0.27) == pytest.approx(-0.2)
    assert relevance_penalty(0.0) == pytest.approx(-5.6)
    assert relevance_penalty(-1.0) == pytest.approx(-25.6)


def test_exact_arithmetic_over_several_images_per_prompt():
    clip = ColourClip()
    # Scores in the order the images are scored: every plain image, then every adapted one.
    scorer = FixedScorer([5.0, 6.0, 4.0, 4.5, 6.5, 7.0, 4.0, 5.5])
    report = prompt_reward(
        ["a red apple", "a blue car"],
        ["a red apple, highly detailed", "a blue car, studio light"],
        [[solid("white"), solid("cyan")], [solid("white"), solid("white")]],
        [[solid(RED), solid(BELOW)], [solid("blue"), solid("green")]],
        scorer, clip)
    first, second = report.items
    below = cosine(RED, BELOW)
    assert below == pytest.approx(0.242536, abs=1e-6)
    assert (first.index, first.images) == (1, 2)
    assert first.aesthetic_plain == pytest.approx(5.5, **EXACT)
    assert first.aesthetic_adapted == pytest.approx(6.75, **EXACT)
    assert first.gain == pytest.approx(1.25, **EXACT)
    assert first.relevance == pytest.approx((1 + below) / 2, **EXACT)
    assert first.penalty == pytest.approx((0 + paper(below)) / 2, **EXACT)  # -0.374644
    assert first.reward == pytest.approx(1.25 + paper(below) / 2, **EXACT)
    # blue vs green: cosine 0, the full -5.6 on half the images
    assert second.gain == pytest.approx(0.5, **EXACT)
    assert second.relevance == pytest.approx(0.5, **EXACT)
    assert second.penalty == pytest.approx(-2.8, **EXACT)
    assert second.reward == pytest.approx(-2.3, **EXACT)
    assert report.mean_gain == pytest.approx(0.875, **EXACT)
    assert report.mean_relevance == pytest.approx((first.relevance + 0.5) / 2, **EXACT)
    assert report.mean_penalty == pytest.approx((first.penalty - 2.8) / 2, **EXACT)
    assert report.mean_reward == pytest.approx((first.reward - 2.3) / 2, **EXACT)
    assert report.helped == 1
    assert (report.quality_name, report.clip_name) == ("fixed", "colour-clip")
    # one batched call each: all 8 images scored, the 4 adapted ones embedded, 2 texts
    assert scorer.calls == [8]
    assert clip.calls == [4]
    assert clip.text_calls == [["a red apple", "a blue car"]]


@pytest.mark.parametrize("colour", [RED, ABOVE, AT, BELOW, rgb("blue"), rgb("yellow")])
def test_penalty_either_side_of_the_threshold(colour):
    report = prompt_reward(["a red rose"], ["a red rose, bokeh"], [[solid("white")]],
                           [[solid(colour)]], FixedScorer([3.0, 3.25]), ColourClip())
    item = report.items[0]
    c = cosine(RED, colour)
    assert item.relevance == pytest.approx(c, **EXACT)
    assert item.penalty == pytest.approx(paper(c), abs=1e-5)
    if c >= 0.28 + 1e-6:
        assert item.penalty == 0.0  # clipped: exactly nothing, not a small negative
    else:
        assert item.penalty < 0 or c == pytest.approx(0.28)
    assert item.reward == pytest.approx(0.25 + paper(c), abs=1e-5)
    assert report.helped == (item.reward > 0)


def test_the_numbers_below_the_threshold_are_the_papers():
    item = prompt_reward(["a red rose"], ["a red rose"], [[solid("white")]], [[solid(BELOW)]],
                         FixedScorer([3.0, 3.0]), ColourClip()).items[0]
    assert item.penalty == pytest.approx(-0.749287, abs=1e-6)  # 20 x 0.2425356 - 5.6
    blue = prompt_reward(["a red rose"], ["a red rose"], [[solid("white")]],
                         [[solid("blue")]], FixedScorer([3.0, 3.0]), ColourClip()).items[0]
    assert (blue.relevance, blue.penalty, blue.reward) == pytest.approx((0.0, -5.6, -5.6))


class SharedScorer:
    """An AestheticScorer-shaped scorer built on the given CLIP: its predictor scores an
    embedding as 10 x its red component."""

    name = "shared"

    def __init__(self, encoder):
        self.encoder = encoder
        self.predictor = self
        self.embedded: list[int] = []

    def score_embeddings(self, vectors):
        self.embedded.append(len(vectors))
        return 10 * torch.as_tensor(vectors, dtype=torch.float32)[:, 0]

    def score_images(self, pils, batch_size=32):
        raise AssertionError("the shared embeddings should have been scored")


def test_a_scorer_on_the_same_clip_embeds_every_image_once():
    clip = ColourClip()
    scorer = SharedScorer(clip)
    report = prompt_reward(["a red kite"], ["a red kite, golden hour"],
                           [[solid("blue"), solid("white")]], [[solid(RED), solid("yellow")]],
                           scorer, clip)
    item = report.items[0]
    assert clip.calls == [4] and scorer.embedded == [4]
    white = 1 / np.sqrt(3)
    assert item.aesthetic_plain == pytest.approx((0 + 10 * white) / 2, **EXACT)
    assert item.aesthetic_adapted == pytest.approx((10 + 10 / np.sqrt(2)) / 2, **EXACT)
    assert item.relevance == pytest.approx((1 + 1 / np.sqrt(2)) / 2, **EXACT)
    assert item.penalty == 0.0


def test_a_lone_image_is_a_group_of_one():
    report = prompt_reward("a red cup", "a red cup, macro", [solid("white")], [solid(RED)],
                           FixedScorer([2.0, 4.0]), ColourClip())
    assert report.items[0].images == 1
    assert report.items[0].reward == pytest.approx(2.0, **EXACT)


@pytest.mark.parametrize(("plain", "adapted", "plain_images", "adapted_images", "message"), [
    (["a red cup", "a blue cup"], ["a red cup, 8k"], [[1], [1]], [[1]],
     "2 plain prompt(s) but 1 adapted"),
    (["a red cup"], ["a red cup, 8k"], [[1], [1]], [[1]], "2 group(s) of plain images for 1"),
    (["a red cup"], ["a red cup, 8k"], [[1, 1]], [[1]],
     "Prompt 1 has 2 plain image(s) but 1 adapted: generate both with the same seeds list"),
    (["a red cup"], ["a red cup, 8k"], [[1]], [[]], "Prompt 1 has no adapted images"),
    (["a red cup", 3], ["a red cup, 8k", "x"], [[1], [1]], [[1], [1]],
     "Plain prompt 2 is a int, not a text"),
    ([], [], [], [], "No plain prompts to reward"),
    (["", " "], ["", " "], [[], []], [[], []], "No plain prompts to reward"),
    (["a red cup"], ["a red cup, 8k"], [[1]], [["not an image"]],
     "The adapted images of prompt 1 include a str, not a PIL image"),
])
def test_mismatches_are_refused(plain, adapted, plain_images, adapted_images, message):
    def images(groups):
        return [[solid(RED) if g == 1 else g for g in group] for group in groups]

    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prompt_reward(plain, adapted, images(plain_images), images(adapted_images),
                      FixedScorer([]), ColourClip())


def test_empty_plain_prompts_are_left_out_and_said():
    clip = ColourClip()
    scorer = FixedScorer([1.0, 3.0, 2.0, 5.0])
    report = prompt_reward(["a red cup", "", "a blue cup"], ["a red cup, 8k", "", "a blue cup"],
                           [[solid("white")], [], [solid("white")]],
                           [[solid(RED)], [], [solid("blue")]], scorer, clip)
    assert [item.index for item in report.items] == [1, 3]
    assert [item.reward for item in report.items] == pytest.approx([2.0 - 1.0, 5.0 - 3.0])
    assert report.skipped == [2]
    assert clip.text_calls == [["a red cup", "a blue cup"]] and clip.calls == [2]
    assert ("Left out: prompt(s) 2, empty (no text for CLIP to compare the images with)"
            in report.summary().splitlines())
    calls = []
    generate_and_reward(lambda p, s: calls.append(p) or solid(RED), ["a red cup", "  "],
                        ["a red cup, 8k", "  "], [1], FixedScorer([1.0, 1.0]), ColourClip())
    assert calls == ["a red cup", "a red cup, 8k"]


def test_generate_and_reward_uses_the_same_seeds_for_both_prompts():
    calls = []
    colours = {"a red fox": "white", "a red fox, oil painting": "red",
               "a blue bird": "white", "a blue bird, macro photo": "green"}

    def generate(prompt, seed):
        calls.append((prompt, seed))
        return solid(colours[prompt])

    scorer = FixedScorer([1.0] * 6 + [2.0] * 6)
    plain = ["a red fox", "a blue bird"]
    adapted = ["a red fox, oil painting", "a blue bird, macro photo"]
    report = generate_and_reward(generate, plain, adapted, [7, 8, 9], scorer, ColourClip())
    assert calls == [(p, s) for pair in zip(plain, adapted, strict=True) for p in pair
                     for s in (7, 8, 9)]
    for p, a in zip(plain, adapted, strict=True):
        assert [s for q, s in calls if q == p] == [s for q, s in calls if q == a]
    assert [item.images for item in report.items] == [3, 3]
    assert [item.reward for item in report.items] == pytest.approx([1.0, 1.0 - 5.6])


def test_an_unchanged_prompt_is_not_generated_twice():
    calls = []

    def generate(prompt, seed):
        calls.append((prompt, seed))
        return solid(RED)

    report = generate_and_reward(generate, ["a red hat"], ["a red hat"], [1, 2],
                                 FixedScorer([4.0, 5.0, 4.0, 5.0]), ColourClip())
    assert calls == [("a red hat", 1), ("a red hat", 2)]
    assert report.items[0].gain == 0.0 and report.items[0].reward == 0.0


def test_generate_and_reward_refuses_bad_seeds_and_outputs(models_root):
    with pytest.raises(InputError, match="list of integer seeds"):
        generate_and_reward(lambda p, s: solid(RED), ["a red hat"], ["a red hat, 8k"], [],
                            FixedScorer([]), ColourClip())
    with pytest.raises(InputError, match=r"returned a list; it must return one PIL image"):
        generate_and_reward(lambda p, s: [solid(RED)], ["a red hat"], ["a red hat, 8k"], [1],
                            FixedScorer([]), ColourClip())


def test_cancel_stops_generation(models_root, monkeypatch):
    calls = []

    def interrupted():
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(runtime.get_runtime(), "check_interrupted", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_and_reward(lambda p, s: calls.append(s) or solid(RED), ["a red hat"],
                            ["a red hat, 8k"], [1, 2, 3], FixedScorer([]), ColourClip())
    assert calls == [1, 2]


def report_of_two():
    return prompt_reward(["a red apple", "a blue car"], ["a red apple, 8k", "a blue car, 8k"],
                         [[solid("white")], [solid("white")]],
                         [[solid(RED)], [solid("green")]],
                         FixedScorer([5.0, 5.0, 6.0, 5.5]), ColourClip())


def test_summary_and_dict():
    report = report_of_two()
    lines = report.summary().splitlines()
    assert lines[0] == ("Prompt reward of 2 rewrite(s), 1 image(s) each: mean -2.050 "
                        "(aesthetic gain +0.750, relevance penalty -2.800, relevance 0.500); "
                        "1 of 2 helped")
    assert lines[1].startswith("reward = aesthetic(adapted) - aesthetic(plain) + min(20 x CLIP")
    assert lines[2] == "  1  reward +1.000 = gain +1.000 (5.00 -> 6.00) + penalty +0.000"
    assert lines[3] == "     a red apple  =>  a red apple, 8k"
    assert lines[4].startswith("  2  reward -5.100 = gain +0.500 (5.00 -> 5.50) + penalty "
                               "-5.600 (relevance 0.000 < 0.28: drifts")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["mean_reward"] == pytest.approx(-2.05)
    assert [item["reward"] for item in data["items"]] == pytest.approx([1.0, -5.1])
    assert data["penalty_threshold"] == pytest.approx(0.28)


def test_render_is_an_rgb_table_with_the_outcome_coloured():
    from intenttuner.evaluation.preview import BAD, GOOD

    image = render_reward(report_of_two())
    assert image.mode == "RGB" and image.width >= 640
    pixels = np.asarray(image).reshape(-1, 3)
    assert (pixels == GOOD).all(axis=1).any()  # the helped prompt's reward
    assert (pixels == BAD).all(axis=1).any()  # the drifting one's penalty and reward
    taller = render_reward(prompt_reward(["a red apple"] * 5, ["a red apple, 8k"] * 5,
                                         [[solid("white")]] * 5, [[solid(RED)]] * 5,
                                         FixedScorer([1.0] * 10), ColourClip()))
    assert taller.height == image.height + 3 * 26
    cut = render_reward(prompt_reward(["a red apple"] * 5, ["a red apple, 8k"] * 5,
                                      [[solid("white")]] * 5, [[solid(RED)]] * 5,
                                      FixedScorer([1.0] * 10), ColourClip()), max_rows=2)
    assert cut.height == image.height + 18  # two rows and the "showing the first" note
