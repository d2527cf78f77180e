"""Evaluation Prompts' plan: which prompts and seeds each test generates from, for the intents a
user writes (the spec's Vincent, and intents missing a test), in every domain."""

from __future__ import annotations

import re

import pytest

from intenttuner.errors import InputError
from intenttuner.evaluation.contexts import wording
from intenttuner.evaluation.prompts import (
    SEED_SPACE,
    PlanSettings,
    build_plan,
    value_clause,
    with_article,
)
from intenttuner.evaluation.types import EvalPlan, intent_fingerprint
from intenttuner.evaluation.types import Test as EvalTest  # pytest would collect "Test"
from intenttuner.intent.parse import parse_intent
from intenttuner.intent.schema import Concept, ConceptValue, Domain, Intent

SPEC_VINCENT = ("Train a model of a man called Vincent. Keep his face consistent. He should be "
                "able to switch between the black leather jacket and the striped jacket. His hair "
                "colour should be adjustable. Never give him a necklace.")


def concept(name, operation, granularity="instance", values=(), phrase=None) -> Concept:
    return Concept(name=name, phrase=phrase or name, granularity=granularity,
                   operation=operation, values=[ConceptValue(text=v) for v in values])


def make_intent(*concepts: Concept, domain="portrait", trigger="Vincent") -> Intent:
    return Intent(description="test", trigger_words=[trigger], domain=domain,
                  concepts=list(concepts))


def vincent() -> Intent:
    return make_intent(
        concept("face", "keep"),
        concept("jacket", "modify", values=["black leather jacket", "striped jacket"]),
        concept("hair colour", "modify", "attribute", ["black hair", "blonde hair"], "hair"),
        concept("necklace", "delete"))


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_vincent_plan_has_each_test_with_its_prompts_and_seeds():
    plan = build_plan(vincent(), PlanSettings(prompts_per_test=3, images_per_prompt=2, seed=7))

    stability = plan.for_test(EvalTest.STABILITY)
    control = plan.for_test(EvalTest.CONTROLLABILITY)
    leakage = plan.for_test(EvalTest.LEAKAGE)
    assert (len(stability), len(control), len(leakage)) == (6, 2 * 2 * 6, 6)
    assert plan.items == [*stability, *control, *leakage]  # grouped by test, in that order
    assert [i.id for i in stability] == [f"stability-{k:03d}" for k in range(6)]
    assert [i.id for i in control][-1] == "controllability-023"
    assert len({i.id for i in plan.items}) == len(plan.items)
    assert all(i.concept is None and i.value is None for i in stability)
    assert {(i.concept, i.value) for i in control} == {
        ("jacket", "black leather jacket"), ("jacket", "striped jacket"),
        ("hair colour", "black hair"), ("hair colour", "blonde hair")}
    assert {i.concept for i in leakage} == {"necklace"}
    assert [i.seed for i in stability] == list(range(7, 13))
    assert len({i.context for i in stability}) == 3  # three distinct contexts, two seeds each
    assert plan.trigger == "Vincent" and plan.notes == []
    assert plan.intent_fingerprint == intent_fingerprint(vincent())
    assert plan.settings == {"prompts_per_test": 3, "images_per_prompt": 2, "seed": 7}
    assert plan.prompts() == [i.prompt for i in plan.items]
    assert plan.seeds() == [i.seed for i in plan.items]


def test_values_of_a_concept_are_paired_same_contexts_and_seeds_only_the_value_differs():
    plan = build_plan(vincent(), PlanSettings(prompts_per_test=4, images_per_prompt=2, seed=3))
    control = plan.for_test(EvalTest.CONTROLLABILITY)
    for name, (first, second) in (("jacket", ("black leather jacket", "striped jacket")),
                                  ("hair colour", ("black hair", "blonde hair"))):
        a = [i for i in control if i.concept == name and i.value == first]
        b = [i for i in control if i.concept == name and i.value == second]
        assert len(a) == len(b) == 8
        assert [(i.context, i.seed) for i in a] == [(i.context, i.seed) for i in b]
        assert [i.prompt.replace(first, second) for i in a] == [i.prompt for i in b]
        assert all(first in i.prompt and second not in i.prompt for i in a)


def test_prompts_read_naturally_for_attribute_and_instance_values():
    control = build_plan(vincent()).for_test(EvalTest.CONTROLLABILITY)
    prompts = {i.value: i.prompt for i in control}
    assert prompts["black leather jacket"].startswith(
        "a photo of Vincent wearing a black leather jacket, ")
    assert prompts["blonde hair"].startswith("a photo of Vincent with blonde hair, ")
    assert build_plan(vincent()).for_test(EvalTest.LEAKAGE)[0].prompt == "a photo of Vincent"


def test_no_context_names_a_concept_and_leakage_never_names_the_deleted_one():
    plan = build_plan(vincent(), PlanSettings(prompts_per_test=32))
    concept_words = {"face", "jacket", "leather", "striped", "hair", "blonde", "necklace"}
    assert all(not words_of(i.context) & concept_words for i in plan.items)
    assert all("necklace" not in i.prompt for i in plan.items)
    assert all(not words_of(i.prompt) & concept_words for i in plan.for_test(EvalTest.STABILITY))


def test_contexts_avoid_the_words_of_values_and_whole_image_concepts_use_framings():
    # Rex's background switches between a beach and a forest: a place context ("on the
    # beach", "with a city in the background") would prescribe the very thing under test.
    rex = make_intent(concept("fur", "keep", "attribute"),
                      concept("background", "modify", "imagery", ["beach", "forest"]),
                      domain="object", trigger="Rex")
    plan = build_plan(rex, PlanSettings(prompts_per_test=32))
    stability = plan.for_test(EvalTest.STABILITY)
    assert all(not words_of(i.prompt) & {"beach", "forest", "background"} for i in stability)
    assert len({i.context for i in stability}) > 8
    views = wording(Domain.OBJECT).views
    for item in plan.for_test(EvalTest.CONTROLLABILITY):
        assert item.context in views
        assert item.prompt == f"a picture of Rex, {item.value}, {item.context}"


def test_a_kept_whole_image_concept_keeps_stability_to_framings_and_says_so():
    intent = make_intent(concept("face", "keep"), concept("soft lighting", "keep", "imagery"),
                         domain="portrait", trigger="zara")
    plan = build_plan(intent)
    assert {i.context for i in plan.for_test(EvalTest.STABILITY)} <= set(wording(Domain.PORTRAIT).views)
    assert any("framings" in n and "'soft lighting'" in n for n in plan.notes)


@pytest.mark.parametrize("drop, note", [
    ("keep", "no kept concept: stability is not applicable"),
    ("modify", "no modified concept with two or more values: controllability is not applicable"),
    ("delete", "no deleted concept: delete leakage is not applicable"),
])
def test_a_test_with_nothing_to_measure_is_left_out_with_a_note(drop, note):
    kept = [c for c in vincent().concepts if c.operation.value != drop]
    plan = build_plan(make_intent(*kept))
    test = {"keep": EvalTest.STABILITY, "modify": EvalTest.CONTROLLABILITY, "delete": EvalTest.LEAKAGE}[drop]
    assert plan.for_test(test) == []
    assert plan.notes == [note]
    assert all(plan.for_test(t) for t in EvalTest if t is not test)


def test_a_modified_concept_without_values_is_skipped_with_a_note():
    intent = make_intent(concept("face", "keep"), concept("tattoo", "modify"))
    plan = build_plan(intent)
    assert plan.for_test(EvalTest.CONTROLLABILITY) == []
    assert any("'tattoo' has no values to switch between" in n for n in plan.notes)


@pytest.mark.parametrize("concepts", [(), (concept("tattoo", "modify"),)])
def test_an_intent_with_nothing_to_evaluate_is_refused_naming_it(concepts):
    with pytest.raises(InputError, match="'Vincent' has no kept, modified or deleted concept"):
        build_plan(make_intent(*concepts))


def test_the_plan_is_deterministic_and_round_trips_through_json():
    settings = PlanSettings(prompts_per_test=5, images_per_prompt=3, seed=11)
    first = build_plan(vincent(), settings).model_dump_json()
    assert build_plan(vincent(), settings).model_dump_json() == first
    assert EvalPlan.from_json(first).model_dump_json() == first


def test_the_parsed_spec_intent_gives_the_same_plan_as_the_hand_built_one():
    parsed = parse_intent(SPEC_VINCENT)
    ours, theirs = build_plan(parsed), build_plan(vincent())
    assert [(i.test, i.prompt, i.seed, i.concept, i.value) for i in ours.items] == \
           [(i.test, i.prompt, i.seed, i.concept, i.value) for i in theirs.items]


def test_when_the_intent_names_every_framing_they_are_used_anyway_with_a_note():
    angles = concept("camera angle", "modify", "imagery",
                     ["close front side view", "above low angle three quarter behind macro shot"])
    plan = build_plan(make_intent(angles, domain="product", trigger="lumiere"))
    contexts = dict.fromkeys(i.context for i in plan.for_test(EvalTest.CONTROLLABILITY))
    assert list(contexts) == list(wording(Domain.PRODUCT).views[:4])
    assert any("every neutral context of 'camera angle' names a word" in n for n in plan.notes)


def test_more_prompts_than_contexts_repeat_contexts_with_new_seeds():
    plan = build_plan(make_intent(concept("face", "keep"), domain="scene", trigger="room1"),
                      PlanSettings(prompts_per_test=32, images_per_prompt=1))
    stability = plan.for_test(EvalTest.STABILITY)
    assert len(stability) == 32
    assert len({i.seed for i in stability}) == 32
    distinct = len({i.context for i in stability})
    assert distinct < 32 and any(f"{distinct} distinct contexts for 32 prompts" in n
                                 for n in plan.notes)


def test_each_deleted_concept_gets_its_own_seeds_for_the_same_prompts():
    intent = make_intent(concept("watermark", "delete"), concept("signature", "delete"),
                         domain="character", trigger="mika")
    leakage = build_plan(intent, PlanSettings(prompts_per_test=3)).for_test(EvalTest.LEAKAGE)
    mark = [i for i in leakage if i.concept == "watermark"]
    sign = [i for i in leakage if i.concept == "signature"]
    assert [i.prompt for i in mark] == [i.prompt for i in sign]
    assert not {i.seed for i in mark} & {i.seed for i in sign}
    assert mark[0].prompt == "a picture of mika"  # a character may be drawn: no "photo"


def test_seeds_wrap_at_ksamplers_maximum():
    plan = build_plan(vincent(), PlanSettings(prompts_per_test=1, images_per_prompt=2,
                                              seed=SEED_SPACE - 1))
    assert plan.for_test(EvalTest.STABILITY)[1].seed == 0
    assert all(0 <= i.seed < SEED_SPACE for i in plan.items)


@pytest.mark.parametrize("domain", list(Domain))
def test_every_domain_writes_well_formed_distinct_prompts_naming_the_trigger(domain):
    intent = make_intent(
        concept("logo", "keep"),
        concept("hat", "modify", values=["red hat", "blue hat"]),
        concept("lighting", "modify", "imagery", ["soft light", "harsh light"]),
        concept("watermark", "delete"), domain=domain.value, trigger="ohwx")
    plan = build_plan(intent, PlanSettings(prompts_per_test=8, images_per_prompt=1))
    for item in plan.items:
        assert "ohwx" in item.prompt
        assert not re.search(r" ,|,,|, *$|  |^ | $", item.prompt), item.prompt
    for test in EvalTest:
        prompts = [i.prompt for i in plan.for_test(test) if i.value in (None, "red hat")]
        assert len(set(prompts)) == len(prompts) == 8, (test, prompts)


def test_style_prompts_make_the_trigger_the_style_of_a_varied_subject():
    intent = make_intent(concept("brushwork", "keep", "imagery"), domain="style", trigger="aqz")
    stability = build_plan(intent).for_test(EvalTest.STABILITY)
    assert all(i.prompt == f"a picture of {i.context} in the style of aqz" for i in stability)
    assert len({i.context for i in stability}) == 4


@pytest.mark.parametrize("phrase, expected", [
    ("black leather jacket", "a black leather jacket"), ("orange cap", "an orange cap"),
    ("casual t-shirt and jeans", "a casual t-shirt and jeans"), ("dress", "a dress"),
    ("red shoes", "red shoes"), ("glasses", "glasses"), ("black hair", "black hair"),
    ("armour", "armour"), ("the hat", "the hat"), ("2 earrings", "2 earrings"),
])
def test_with_article(phrase, expected):
    assert with_article(phrase) == expected


def test_value_clause_depends_on_the_concept_so_values_stay_paired():
    expression = concept("expression", "modify", "attribute", ["smiling", "serious expression"],
                         "face")
    assert value_clause(expression, "smiling", True) == ", smiling"
    assert value_clause(expression, "serious expression", True) == ", serious expression"
    cap = concept("cap", "modify", values=["gold cap", "silver cap"])
    assert value_clause(cap, "gold cap", person=False) == " with a gold cap"
    assert value_clause(cap, "gold cap", person=True) == " wearing a gold cap"


@pytest.mark.parametrize("field, value", [
    ("prompts_per_test", 0), ("prompts_per_test", 33), ("images_per_prompt", 0),
    ("images_per_prompt", 17), ("seed", -1), ("seed", SEED_SPACE), ("prompts_per_test", True),
    ("images_per_prompt", 2.0),
])
def test_settings_out_of_range_are_refused_naming_the_field(field, value):
    with pytest.raises(InputError, match=f"^{field} must be a whole number"):
        PlanSettings(**{field: value})
