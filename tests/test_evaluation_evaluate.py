"""evaluate(): the three metrics of a model from the plan's own prompts, with known-output
models and "generators" that draw what each prompt asks for (or ignore it)."""

from __future__ import annotations

import pytest

from intenttuner.evaluation.evaluate import EvalModels, evaluate
from intenttuner.evaluation.pairing import pair_images
from intenttuner.evaluation.prompts import PlanSettings, build_plan
from intenttuner.evaluation.types import EvalScores
from intenttuner.evaluation.types import Test as EvalTest  # not "Test*": pytest would collect it
from tests.evaluation_helpers import (
    ColourClip,
    FixedScorer,
    MarkerDetector,
    MeanColourEncoder,
    draw,
    intent,
    noise,
)

VINCENT = ("trigger: vin. Keep his face [1]. His hair colour should switch between red hair and "
           "blue hair. Never a necklace.")
FACE, HAIR, NECK = (20, 24, 44, 50), (16, 4, 48, 18), (22, 54, 42, 60)


def portrait(face, hair, necklace: bool, seed: int):
    image = draw(noise(64, 64, seed=seed), "face", FACE, face)
    image = draw(image, "hair", HAIR, hair)
    return draw(image, "necklace", NECK, "yellow") if necklace else image


def faithful(item):
    """A model that does what the intent asks: his red face, the prompted hair, no necklace."""
    hair = "blue" if item.value == "blue hair" else "red"
    return portrait("red", hair, necklace=False, seed=item.seed)


def careless(item):
    """A model that ignores the intent: a blue face, always red hair, always the necklace."""
    return portrait("blue", "red", necklace=True, seed=item.seed)


def run(generator, description=VINCENT, quality=None):
    the_intent = intent(description, [("red", (10, 10, 50, 50))])
    plan = build_plan(the_intent, PlanSettings(prompts_per_test=2, images_per_prompt=1))
    generated = pair_images(plan, [generator(item) for item in plan.items], plan.prompts())
    models = EvalModels(detector=MarkerDetector(), identity_encoder=MeanColourEncoder(),
                        clip=ColourClip(), quality=quality)
    return evaluate(generated, the_intent, models, label="lora"), plan


def scores_of(scores):
    return {name: result.score for name, result in scores.results.items()}


def test_a_faithful_model_scores_perfectly_and_a_careless_one_badly():
    good, _ = run(faithful)
    bad, _ = run(careless)
    assert good.label == "lora"
    assert scores_of(good) == {"stability": pytest.approx(1.0, abs=1e-6),
                               "controllability": 1.0, "leakage": 0.0}
    assert scores_of(bad) == {"stability": pytest.approx(0.0, abs=1e-6),
                              "controllability": 0.5, "leakage": 1.0}
    assert bad.results["leakage"].higher_is_better is False


def test_the_quality_scorer_reaches_stability():
    scorer = FixedScorer([10.0, 10.0])  # the plan's two stability images
    scores, plan = run(faithful, quality=scorer)
    assert scorer.calls == [len(plan.for_test(EvalTest.STABILITY))]
    stability = scores.results["stability"]
    assert stability.parts["quality"] == 1.0 and stability.score == pytest.approx(1.0)


def test_a_metric_that_does_not_apply_is_included_as_such():
    scores, _ = run(faithful, "trigger: vin. Keep his face [1].")
    assert set(scores.results) == {"stability", "controllability", "leakage"}
    assert scores.results["stability"].score == pytest.approx(1.0, abs=1e-6)
    for name in ("controllability", "leakage"):
        assert (scores.results[name].applicable, scores.results[name].score) == (False, None)


def test_scores_round_trip_as_json():
    scores, _ = run(careless)
    again = EvalScores.model_validate_json(scores.to_json())
    assert again == scores
    assert '"records"' not in scores.to_json(with_records=False)


@pytest.mark.parametrize("clip", [None, MeanColourEncoder()], ids=["no encoder", "DINO"])
def test_without_a_clip_an_intent_modifying_nothing_reports_controllability_as_not_applicable(
        clip):
    the_intent = intent("trigger: vin. Keep his face [1]. Never a necklace.",
                        [("red", (10, 10, 50, 50))])
    plan = build_plan(the_intent, PlanSettings(prompts_per_test=2, images_per_prompt=1))
    generated = pair_images(plan, [faithful(item) for item in plan.items], plan.prompts())
    models = EvalModels(detector=MarkerDetector(), identity_encoder=MeanColourEncoder(),
                        clip=clip)
    scores = evaluate(generated, the_intent, models, label="lora")
    controllability = scores.results["controllability"]
    assert (controllability.applicable, controllability.score) == (False, None)
    assert controllability.reason == "the intent modifies no concept with two or more values"
    assert scores_of(scores) == {"stability": pytest.approx(1.0, abs=1e-6),
                                 "controllability": None, "leakage": 0.0}
