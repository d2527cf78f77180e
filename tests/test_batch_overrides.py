"""--set / --sweep on an API prompt: which node a name means, which inputs take values, how
values are read by their /object_info type, and the runs a sweep expands into."""

from __future__ import annotations

import copy
import re

import pytest

from intenttuner.batch.overrides import expand, parse_override
from intenttuner.errors import InputError
from tests.batch_fake_server import OBJECT_INFO, workflow


def parse(text: str, flag: str = "--set", prompt: dict | None = None):
    return parse_override(text, flag, prompt or workflow(), OBJECT_INFO)


@pytest.mark.parametrize("text, node_id", [
    ("1.width=8", "1"),  # an id
    ("Scores A.stability=0.3", "3"),  # a title
    ("FakeScores.label=x", "3"),  # a type only one node has
    ("Evaluation Report.title=x", "4"),
])
def test_a_node_is_named_by_id_title_or_unique_type(text, node_id):
    assert parse(text).node_id == node_id


def test_an_id_wins_over_a_title_and_a_title_over_a_type():
    prompt = workflow()
    prompt["5"]["_meta"]["title"] = "1"  # node 5 titled like node 1's id
    prompt["6"]["_meta"]["title"] = "EmptyImage"  # a SaveImage titled like another type
    assert parse("1.width=8", prompt=prompt).node_id == "1"
    assert parse("EmptyImage.filename_prefix=x", prompt=prompt).node_id == "6"


def test_ambiguous_title_and_type_list_the_nodes():
    with pytest.raises(InputError) as title:
        parse("Canvas.width=8")
    message = str(title.value)
    assert "2 nodes have the title 'Canvas'" in message
    assert "1 (EmptyImage, 'Canvas')" in message and "5 (EmptyImage, 'Canvas')" in message
    with pytest.raises(InputError, match=r"2 nodes have the type 'SaveImage': 2 \(SaveImage, "
                                         r"'Save Image'\), 6 \(SaveImage, 'Save Image'\)"):
        parse("SaveImage.filename_prefix=x", "--sweep")


def test_a_missing_node_is_named_with_the_nodes_there_are():
    with pytest.raises(InputError) as error:
        parse("KSampler.steps=4")
    message = str(error.value)
    assert message.startswith("--set KSampler.steps=4: the workflow has no node 'KSampler'")
    assert "3 (FakeScores, 'Scores A')" in message and "4 (IntentTunerEvaluationReport, " \
        "'Evaluation Report')" in message


def test_a_missing_input_lists_the_inputs_of_the_node():
    with pytest.raises(InputError, match=r"--sweep 1.depth=3,4: node 1 \(EmptyImage, 'Canvas'\) "
                                         r"has no input 'depth'; its inputs: width, height, "
                                         r"batch_size, color\."):
        parse("1.depth=3,4", "--sweep")


def test_a_connection_is_not_a_value():
    with pytest.raises(InputError, match=r"input 'images' of node 2 .* is a IMAGE connection, "
                                         r"not a value\. Inputs that take a value: "
                                         r"filename_prefix"):
        parse("2.images=x")
    with pytest.raises(InputError, match="input 'image' of node 3 .* is a IMAGE connection"):
        parse("FakeScores.image=x")  # optional inputs are inputs too


@pytest.mark.parametrize("text, expected", [
    ("1.width=8", 8),
    ("1.width= 8 ", 8),
    ("FakeScores.stability=0.25", 0.25),
    ("FakeScores.stability=1", 1.0),
    ("FakeScores.measure_leakage=no", False),
    ("FakeScores.measure_leakage=TRUE", True),
    ("FakeScores.sampler=dpmpp_2m", "dpmpp_2m"),  # legacy combo
    ("FakeScores.scheduler=karras", "karras"),  # v3 combo
    ("FakeScores.label=a, b = c", "a, b = c"),  # a --set value keeps commas and '='
])
def test_values_are_read_by_the_input_type(text, expected):
    value = parse(text).values[0]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text, message", [
    ("1.width=abc", "'abc' is not a whole number (input 'width' of node 1 (EmptyImage, "
                    "'Canvas') is INT)"),
    ("1.width=2.5", "'2.5' is not a whole number"),
    ("1.width=0", "value 0 is below min 1 — set a value from 1 to 16384 (input 'width'"),
    ("FakeScores.stability=1.5", "value 1.5 is above max 1.0"),
    ("FakeScores.stability=nan", "'nan' is not a number"),
    ("FakeScores.measure_leakage=maybe", "'maybe' is not true or false"),
    ("FakeScores.sampler=heun", "'heun' is not a choice of input 'sampler' of node 3 "
                                "(FakeScores, 'Scores A'): euler, dpmpp_2m."),
    ("FakeScores.scheduler=exponential", "not a choice of input 'scheduler' of node 3 "
                                         "(FakeScores, 'Scores A'): normal, karras."),
])
def test_a_bad_value_names_the_input_and_what_it_takes(text, message):
    with pytest.raises(InputError) as error:
        parse(text)
    assert message in str(error.value)


@pytest.mark.parametrize("text", ["width=3", "1.width", ".width=3", "1.=3"])
def test_a_malformed_override_shows_the_form(text):
    with pytest.raises(InputError, match="write NODE.INPUT=VALUE"):
        parse(text)


def test_sweep_values_must_be_there_and_distinct():
    with pytest.raises(InputError, match="an empty value"):
        parse("1.width=8,,16", "--sweep")
    with pytest.raises(InputError, match="an empty value"):
        parse("1.width=", "--sweep")
    with pytest.raises(InputError, match="a value is given twice"):
        parse("1.width=8,8", "--sweep")


def test_dots_in_titles_and_input_names():
    prompt = workflow()
    prompt["3"]["_meta"]["title"] = "Scores v1.5"
    prompt["3"]["inputs"]["lora.strength"] = 1.0  # a v3 dynamic input: "<group>.<input>"
    assert parse("Scores v1.5.stability=0.1", prompt=prompt).node_id == "3"
    override = parse("3.lora.strength=0.5", prompt=prompt)
    assert (override.node_id, override.input, override.values) == ("3", "lora.strength", (0.5,))


def test_a_sweep_is_the_product_of_its_values_with_the_sets_in_every_run():
    prompt = workflow()
    before = copy.deepcopy(prompt)
    sets = [parse("Scores A.label=intent lora", prompt=prompt)]
    sweeps = [parse("FakeScores.stability=0.2,0.8", "--sweep", prompt),
              parse("1.width=8,16,32", "--sweep", prompt)]
    plans = expand(prompt, sets, sweeps)
    assert prompt == before  # the workflow itself is not changed
    assert [p.run_id for p in plans] == [
        "run-01_FakeScores.stability=0.2_1.width=8", "run-02_FakeScores.stability=0.2_1.width=16",
        "run-03_FakeScores.stability=0.2_1.width=32", "run-04_FakeScores.stability=0.8_1.width=8",
        "run-05_FakeScores.stability=0.8_1.width=16",
        "run-06_FakeScores.stability=0.8_1.width=32"]
    assert plans[4].values == {"FakeScores.stability": "0.8", "1.width": "16"}
    for plan in plans:
        inputs = plan.prompt["1"]["inputs"], plan.prompt["3"]["inputs"]
        assert inputs[0]["width"] == int(plan.values["1.width"])
        assert inputs[1]["stability"] == float(plan.values["FakeScores.stability"])
        assert inputs[1]["label"] == "intent lora"
        unchanged = {k: v for k, v in plan.prompt.items() if k not in ("1", "3")}
        assert unchanged == {k: v for k, v in before.items() if k not in ("1", "3")}
    again = expand(prompt, sets, sweeps)
    assert [p.run_id for p in again] == [p.run_id for p in plans]  # stable from call to call


def test_without_sweeps_there_is_one_run():
    prompt = workflow()
    (plan,) = expand(prompt, [parse("1.width=8", prompt=prompt)], [])
    assert plan.run_id == "run-01" and plan.values == {} and plan.prompt["1"]["inputs"]["width"] == 8


def test_run_ids_are_safe_file_names():
    prompt = workflow()
    prompt["3"]["_meta"]["title"] = "Scores / A: ünïcode"
    sweep = parse("Scores / A: ünïcode.label=a/b,../c d,x" + "y" * 80, "--sweep", prompt)
    ids = [plan.run_id for plan in expand(prompt, [], [sweep])]
    assert len(set(ids)) == 3
    for run_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9._=+-]+", run_id) and ".." not in run_id
        assert len(run_id) <= 120
    assert ids[0] == "run-01_Scores-A-n-code.label=a-b"


def test_one_input_cannot_be_given_twice():
    prompt = workflow()
    with pytest.raises(InputError, match="1.width is set twice"):
        expand(prompt, [parse("1.width=8", prompt=prompt)],
               [parse("1.width=8,16", "--sweep", prompt)])
    with pytest.raises(InputError, match="set twice"):  # the same input under two names
        expand(prompt, [parse("Scores A.label=a", prompt=prompt),
                        parse("FakeScores.label=b", prompt=prompt)], [])
