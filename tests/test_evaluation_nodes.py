"""The evaluation nodes as ComfyUI calls them: Evaluation Prompts' list outputs, the score nodes
with every input a list (INPUT_IS_LIST) and one image batch per prompt, the chain of scores of
one model, and Evaluation Report with its saved JSON. Tiny real models through the loader
nodes; known-output stand-ins (tests/evaluation_helpers.py) where a number must be exact."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from intenttuner.tiny import TINY_BUILDERS
from tests.evaluation_helpers import ColourClip

VINCENT = ("trigger: vincent. Keep his face [1]. His hair colour can change between red hair "
           "and blue hair. Never a necklace.")
BOXES = '[{"image": 0, "box": [8, 8, 40, 40]}]'


def lib(pack, name: str):
    """The pack's own copy of library module ``intenttuner.<name>`` (the nodes' types)."""
    return sys.modules[f"{pack.__name__}.intenttuner.{name}"]


def node(pack, name: str):
    return pack.NODE_CLASS_MAPPINGS[f"IntentTuner{name}"]()


def make_intent(pack, text: str = VINCENT):
    reference = torch.rand((1, 48, 48, 3), generator=torch.Generator().manual_seed(5))
    return node(pack, "IntentParse").parse(text, "error", reference_boxes=BOXES,
                                           reference_1=reference)["result"][0]


def make_plan(pack, intent, prompts_per_test: int = 1, images_per_prompt: int = 2):
    prompts, seeds, plan, summary = node(pack, "EvaluationPrompts").make(
        intent, prompts_per_test, images_per_prompt, 7)["result"]
    return prompts, seeds, plan, summary


def generate(plan, seed: int = 0) -> list[torch.Tensor]:
    """What VAE Decode hands on after KSampler ran once per prompt: one (1, H, W, 3) batch per
    plan item, of two sizes (the pairing keeps each image's own)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.rand((1, 64, 96, 3) if k % 2 else (1, 48, 80, 3), generator=g)
            for k in range(len(plan.items))]


def tiny(pack, models_root, family: str) -> str:
    """The widget value of the tiny model of ``family``, written into its models folder."""
    folder = models_root / lib(pack, "families").FAMILIES[family].folder
    return TINY_BUILDERS[family](folder).relative_to(folder).as_posix()


@pytest.fixture
def models(pack, models_root):
    clip = node(pack, "LoadImageEncoder").load(tiny(pack, models_root, "image_encoder"), "auto")[0]
    return {
        "detector": node(pack, "LoadDetector").load(tiny(pack, models_root, "detector"),
                                                    "auto")[0],
        "dino": node(pack, "LoadIdentityEncoder").load(tiny(pack, models_root,
                                                            "identity_encoder"), "auto")[0],
        "clip": clip,
        "quality": node(pack, "LoadQualityScorer").load(tiny(pack, models_root, "aesthetic"),
                                                        clip)[0],
    }


def test_prompts_and_seeds_are_lists_paired_with_the_plan_items(pack):
    prompts_node = node(pack, "EvaluationPrompts")
    assert prompts_node.OUTPUT_IS_LIST == (True, True, False, False)
    intent = make_intent(pack)
    out = prompts_node.make(intent, 2, 3, 7)
    prompts, seeds, plan, summary = out["result"]

    assert prompts == [item.prompt for item in plan.items]
    assert seeds == [item.seed for item in plan.items]
    assert len(prompts) == len(plan.items) == 3 * (2 + 2 * 2 + 2)  # keep, 2 values, delete
    assert all(isinstance(s, int) for s in seeds) and len(set(seeds)) > 1
    first = summary.splitlines()[0]
    assert first.startswith(f"{len(prompts)} image(s) to generate for 'vincent'")
    assert f"  seed {seeds[-1]}  {prompts[-1]}" in summary
    assert out["ui"]["text"] == [summary]


def test_a_test_left_out_is_noted_and_an_intent_without_concepts_refused(pack):
    _, _, plan, summary = make_plan(pack, make_intent(pack, "trigger: vincent. Keep his face."))
    assert {item.test.value for item in plan.items} == {"stability"}
    assert plan.notes and all(f"Note: {n}" in summary for n in plan.notes)
    input_error = lib(pack, "errors").InputError
    empty = lib(pack, "intent.schema").Intent(description="vincent", trigger_words=["vincent"],
                                              domain="portrait")
    with pytest.raises(input_error, match="no kept, modified or deleted concept"):
        make_plan(pack, empty)


def test_three_score_nodes_chain_into_the_report(pack, models_root, models):
    intent = make_intent(pack)
    prompts, _, plan, _ = make_plan(pack, intent)
    images = generate(plan)
    common = dict(images=images, plan=[plan], intent=[intent], prompts=prompts)

    stability = node(pack, "StabilityScore").score(
        label=["intent LoRA"], detector=[models["detector"]], identity_encoder=[models["dino"]],
        quality_weight=[0.2], box_threshold=[0.0], quality_scorer=[models["quality"]],
        reference_images=[images[0]], **common)
    scores, score, breakdown, preview = stability["result"]
    result = json.loads(breakdown)
    assert result["metric"] == "stability" and "records" not in result
    assert result["models"]["identity_encoder"] == models["dino"].arch
    # The face has reference box [1]: stability applies, found or not (not found counts 0).
    assert result["applicable"] is True and 0.0 <= score <= 1.0 and score == result["score"]
    assert preview.ndim == 4 and preview.shape[0] == 1 and preview.shape[-1] == 3
    assert stability["ui"]["images"] == []  # outside ComfyUI the preview output carries it
    assert stability["ui"]["text"][0].startswith("Stability")
    stability_items = plan.for_test(lib(pack, "evaluation.types").Test.STABILITY)
    assert {r.item for r in scores.results["stability"].records} == {
        item.id for item in stability_items}

    scores = node(pack, "ControllabilityScore").score(
        label=[""], clip=[models["clip"]], box_threshold=[0.0], detector=[models["detector"]],
        scores=[scores], **common)["result"][0]
    scores, leak_score, breakdown, _ = node(pack, "DeleteLeakage").score(
        label=["intent LoRA"], detector=[models["detector"]], box_threshold=[0.0],
        reference_threshold=[0.75], image_encoder=[models["clip"]], scores=[scores],
        **common)["result"]
    assert scores.label == "intent LoRA"
    assert list(scores.results) == ["stability", "controllability", "leakage"]
    assert 0.0 <= leak_score <= 1.0 and json.loads(breakdown)["higher_is_better"] is False

    plain = node(pack, "ControllabilityScore").score(
        label=["plain LoRA"], clip=[models["clip"]], box_threshold=[0.3], **common)["result"][0]
    report = node(pack, "EvaluationReport")
    out = report.report(scores, "Vincent: plain vs intent", run_3=plain)
    image, text = out["result"]
    assert image.ndim == 4 and image.shape[0] == 1
    table = json.loads(text)["table"]
    assert [row["label"] for row in table] == ["intent LoRA", "plain LoRA"]
    assert table[1]["stability"] is None and table[1]["missing"]["stability"] == "not run"
    saved = models_root.parent / "output" / "intenttuner" / "evaluations"
    assert [p.name for p in saved.iterdir()] == ["vincent_plain_vs_intent_00001.json"]
    assert (saved / "vincent_plain_vs_intent_00001.json").read_text() == text
    report.report(scores, "Vincent: plain vs intent")
    report.report(plain, "")
    assert sorted(p.name for p in saved.iterdir()) == [
        "report_00001.json", "vincent_plain_vs_intent_00001.json",
        "vincent_plain_vs_intent_00002.json"]


def test_stability_also_takes_a_clip_image_encoder(pack, models_root, models):
    intent = make_intent(pack, "trigger: vincent. Keep his face [1].")
    prompts, _, plan, _ = make_plan(pack, intent, images_per_prompt=1)
    scores = node(pack, "StabilityScore").score(
        images=generate(plan), plan=[plan], intent=[intent], label=[""],
        detector=[models["detector"]], identity_encoder=[models["clip"]], quality_weight=[0.2],
        box_threshold=[0.0])["result"][0]
    assert scores.label == "model"
    assert scores.results["stability"].models["identity_encoder"] == models["clip"].arch
    assert "quality" not in scores.results["stability"].models


def colour_batches(plan, swap: bool = False) -> list[torch.Tensor]:
    """Controllability images filled with the colour their value names (or the other one)."""
    colours = {"red hair": (1.0, 0.0, 0.0), "blue hair": (0.0, 0.0, 1.0)}
    if swap:
        colours = {"red hair": colours["blue hair"], "blue hair": colours["red hair"]}
    return [torch.tensor(colours.get(item.value, (0.5, 0.5, 0.5))).expand(1, 32, 32, 3).clone()
            for item in plan.items]


@pytest.mark.parametrize(("swap", "expected"), [(False, 1.0), (True, 0.0)])
def test_controllability_scores_each_image_against_its_own_prompt(pack, swap, expected):
    # a colour-reading CLIP stand-in: exact only if the node pairs image i with item i
    intent = make_intent(pack)
    prompts, _, plan, _ = make_plan(pack, intent, prompts_per_test=2)
    scores, score, breakdown, _ = node(pack, "ControllabilityScore").score(
        images=colour_batches(plan, swap), plan=[plan], intent=[intent], label=["x"],
        clip=[ColourClip()], box_threshold=[0.3], prompts=prompts)["result"]
    assert score == expected
    directions = json.loads(breakdown)["concepts"]
    assert {(d["target"], d["accuracy"]) for d in directions} == {("red hair", expected),
                                                                  ("blue hair", expected)}


def test_a_metric_that_does_not_apply_scores_minus_one(pack):
    intent = make_intent(pack, "trigger: vincent. Keep his face [1].")
    _, _, plan, _ = make_plan(pack, intent)
    out = node(pack, "ControllabilityScore").score(
        images=generate(plan), plan=[plan], intent=[intent], label=[""], clip=[ColourClip()],
        box_threshold=[0.3])
    scores, score, breakdown, preview = out["result"]
    assert score == -1.0
    assert json.loads(breakdown)["applicable"] is False
    assert scores.results["controllability"].score is None
    assert out["ui"]["text"][0].startswith("Controllability: not applicable")
    assert preview.shape[0] == 1


def test_bad_pairing_and_chains_are_refused(pack):
    input_error = lib(pack, "errors").InputError
    intent = make_intent(pack)
    prompts, _, plan, _ = make_plan(pack, intent)
    score = node(pack, "ControllabilityScore").score
    common = dict(plan=[plan], intent=[intent], clip=[ColourClip()], box_threshold=[0.3])

    with pytest.raises(input_error, match="one image batch per prompt"):
        score(images=colour_batches(plan)[:-1], label=[""], **common)
    wrong = [*prompts[:-1], "a photo of someone else"]
    with pytest.raises(input_error, match=f"prompt {len(prompts) - 1} is"):
        score(images=colour_batches(plan), label=[""], prompts=wrong, **common)
    other = make_intent(pack, "trigger: vincent. Keep his face [1]. Never a hat.")
    with pytest.raises(input_error, match="another intent"):
        score(images=colour_batches(plan), label=[""], **{**common, "intent": [other]})

    first = score(images=colour_batches(plan), label=["lora A"], **common)["result"][0]
    with pytest.raises(input_error, match="'lora A'.*'lora B'"):
        score(images=colour_batches(plan), label=["lora B"], scores=[first], **common)
    with pytest.raises(input_error, match="already hold a controllability score"):
        score(images=colour_batches(plan), label=["lora A"], scores=[first], **common)


def test_report_refuses_duplicate_labels_before_saving(pack, models_root):
    scores_type = lib(pack, "evaluation.types").EvalScores
    input_error = lib(pack, "errors").InputError
    with pytest.raises(input_error, match="'same'"):
        node(pack, "EvaluationReport").report(scores_type(label="same"), "t",
                                              run_2=scores_type(label="same"))
    assert not (models_root.parent / "output").exists()
