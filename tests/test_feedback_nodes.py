"""Rate Images and Load Feedback as ComfyUI calls them (the pack loaded as ComfyUI loads it,
every input a list for Rate Images): prompts one per line, one for all or one per batch, the
gallery's entries, IS_CHANGED following the marks, and the sets Load Feedback offers. (The
gallery in the real frontend: tests/test_rate_images_browser.py.)"""

from __future__ import annotations

import json

import pytest
import torch

from tests.test_evaluation_nodes import lib, node


def batch(*colours) -> torch.Tensor:
    """An IMAGE batch of 16x12 images, one flat colour (RGB in [0, 1]) each."""
    return torch.stack([torch.tensor(c, dtype=torch.float32).expand(12, 16, 3) for c in colours])


RED, GREEN, BLUE = (0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9)


@pytest.fixture
def rate(pack, models_root):
    return node(pack, "RateImages")


def input_error(pack):
    return lib(pack, "errors").InputError


def test_the_nodes_schemas(pack):
    rate, load = (pack.NODE_CLASS_MAPPINGS[f"IntentTuner{n}"] for n in ("RateImages",
                                                                         "LoadFeedback"))
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["IntentTunerRateImages"] == "Rate Images"
    assert rate.CATEGORY == load.CATEGORY == "IntentTuner/Feedback"
    assert rate.OUTPUT_NODE and rate.INPUT_IS_LIST
    assert rate.RETURN_TYPES == load.RETURN_TYPES == ("IT_FEEDBACK", "STRING")
    required = rate.INPUT_TYPES()["required"]
    assert required["prompts"][1]["forceInput"] and required["feedback_set"][1]["default"] == \
        "my_ratings"


def test_a_batch_with_one_prompt_per_line_fills_the_gallery(pack, rate):
    out = rate.rate([batch(RED, GREEN, BLUE)], ["a red box\n\n a green box \na blue box"],
                    ["my ratings"], seeds=[11, 12, 13])
    fs, summary = out["result"]
    entries = out["ui"]["it_rate"]
    assert out["ui"]["it_rate_set"] == ["my_ratings"] and fs.name == "my_ratings"
    assert [e["prompt"] for e in entries] == ["a red box", "a green box", "a blue box"]
    assert [e["seed"] for e in entries] == [11, 12, 13]
    assert all(e["mark"] is None and e["type"] == "output" for e in entries)
    output = lib(pack, "runtime").get_runtime().output_dir()
    assert all((output / e["subfolder"] / e["filename"]).is_file() for e in entries)
    assert "3 image(s) to rate (3 new)" in summary and "3 unmarked" in summary
    assert out["ui"]["text"] == [summary]

    feedback = lib(pack, "reward.feedback_set")
    feedback.set_mark(fs, entries[0]["image"], "good")
    again = rate.rate([batch(RED, GREEN, BLUE)], ["a red box\na green box\na blue box"],
                      ["my_ratings"])
    assert [e["image"] for e in again["ui"]["it_rate"]] == [e["image"] for e in entries]
    assert again["ui"]["it_rate"][0]["mark"] == "good"  # the mark survives a re-run
    assert "(0 new)" in again["result"][1]


def test_one_prompt_for_all_and_one_prompt_per_batch(rate):
    one = rate.rate([batch(RED, GREEN)], ["a box"], ["s"])["ui"]["it_rate"]
    assert [e["prompt"] for e in one] == ["a box", "a box"]
    per_batch = rate.rate([batch(RED, GREEN), batch(BLUE)], ["two boxes", "one box"], ["s"],
                          seeds=[1, 2])["ui"]["it_rate"]
    assert [(e["prompt"], e["seed"]) for e in per_batch] == [("two boxes", 1), ("two boxes", 1),
                                                             ("one box", 2)]
    twice = rate.rate([batch(RED, RED)], ["same"], ["s"])["ui"]["it_rate"]
    assert len(twice) == 1  # the same image with the same prompt is one example


@pytest.mark.parametrize(("prompts", "seeds", "message"), [
    (["a\nb"], None, "3 image\\(s\\) in 1 batch\\(es\\) but 2 prompts"),
    ([None], None, "needs the images' prompts"),
    (["a"], [1, 2], "but 2 seeds"),
])
def test_counts_that_do_not_match_are_refused(pack, rate, prompts, seeds, message):
    with pytest.raises(input_error(pack), match=message):
        rate.rate([batch(RED, GREEN, BLUE)], prompts, ["s"], seeds=seeds)


def test_is_changed_follows_the_marks_only(pack, rate):
    cls = type(rate)
    before = cls.IS_CHANGED(feedback_set=["s"], images=None, prompts=None)
    out = rate.rate([batch(RED)], ["p"], ["s"])
    assert cls.IS_CHANGED(feedback_set=["s"]) == before  # adding images: no re-run needed
    lib(pack, "reward.feedback_set").set_mark(out["result"][0], out["ui"]["it_rate"][0]["image"],
                                              "bad")
    marked = cls.IS_CHANGED(feedback_set=["s"])
    assert marked != before and cls.IS_CHANGED(feedback_set=["s"]) == marked
    assert cls.IS_CHANGED(feedback_set=["../bad"]) == ""


def test_load_feedback_offers_the_sets_and_loads_one(pack, rate):
    cls = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadFeedback"]
    assert cls.INPUT_TYPES()["required"]["feedback_set"][0] == [cls.NOTHING]
    assert "no feedback yet" in cls.VALIDATE_INPUTS(cls.NOTHING)
    with pytest.raises(input_error(pack), match="queue Rate Images"):
        cls().load(cls.NOTHING)

    rated = rate.rate([batch(RED, GREEN)], ["a\nb"], ["mine"])
    assert cls.INPUT_TYPES()["required"]["feedback_set"][0] == ["mine"]
    assert cls.VALIDATE_INPUTS("mine") is True
    assert "No feedback set or training run named 'other'" in cls.VALIDATE_INPUTS("other")
    before = cls.IS_CHANGED("mine")
    lib(pack, "reward.feedback_set").set_mark(rated["result"][0],
                                              rated["ui"]["it_rate"][1]["image"], "good")
    assert cls.IS_CHANGED("mine") != before
    fs, summary = cls().load("mine")["result"]
    assert [m.mark for m in fs.marked()] == ["good"] and "1 good, 0 bad, 1 unmarked" in summary
    lines = (fs.folder / "feedback.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["prompt"] == "b"
