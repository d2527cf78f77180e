"""The LLM intent parser against an OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from intenttuner.errors import LLMError
from intenttuner.intent import llm_parse
from intenttuner.intent.parse import parse_intent
from intenttuner.llm import LLMSettings
from tests.fake_llm import FakeLLM, Reply

KEY = "sk-test-SECRET-0123456789abcdef"
DESCRIPTION = ("Keep his face. He should switch between the leather jacket [1] and the "
               "striped jacket [2]. Never a necklace.")
BOXES = '[{"image": 0, "box": [0, 0, 20, 20]}, {"image": 0, "box": [10, 10, 30, 30]}]'

VALID = {
    "trigger_words": ["vincent"], "domain": "portrait", "unplaced": [],
    "concepts": [
        {"name": "face", "phrase": "face", "granularity": "instance", "operation": "keep",
         "references": [], "values": []},
        {"name": "jacket", "phrase": "jacket", "granularity": "instance", "operation": "modify",
         "references": [], "values": [{"text": "leather jacket", "references": [1]},
                                      {"text": "striped jacket", "references": [2]}]},
        {"name": "necklace", "phrase": "necklace", "granularity": "instance",
         "operation": "delete", "references": [], "values": []},
    ],
}


@pytest.fixture
def images():
    from PIL import Image

    return [Image.new("RGB", (40, 40), (200, 100, 50))]


@pytest.fixture
def llm(monkeypatch):
    monkeypatch.setenv("IT_TEST_API_KEY", KEY)
    llm_parse._working_mode.clear()  # no memory of other tests' endpoints
    fake = FakeLLM()
    base_url = fake.start()
    fake.settings = LLMSettings(base_url=base_url, model="test-model",
                                api_key_env="IT_TEST_API_KEY", timeout_s=5)
    yield fake
    fake.stop()


def test_valid_structured_answer_becomes_the_intent(llm, images):
    llm.replies = [Reply(json.dumps(VALID))]

    intent = parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    assert intent.parser == "llm:test-model"
    assert intent.trigger_words == ["vincent"]
    assert [(c.name, c.operation.value) for c in intent.concepts] == [
        ("face", "keep"), ("jacket", "modify"), ("necklace", "delete")]
    assert [v.references for v in intent.concepts[1].values] == [[1], [2]]
    assert len(intent.references) == 2 and intent.references[0].crop_png
    request = llm.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["body"]["response_format"]["type"] == "json_schema"
    assert request["body"]["response_format"]["json_schema"]["strict"] is True
    user = request["body"]["messages"][-1]["content"]
    assert DESCRIPTION in user and "[2] on image 1" in user
    assert sum(m["role"] == "assistant" for m in request["body"]["messages"]) >= 4  # few-shot


def test_invalid_json_is_repaired_in_one_round_trip(llm, images):
    llm.replies = [Reply("Sure! Here it is: {trigger_words: [vincent]"), Reply(
        "```json\n" + json.dumps(VALID) + "\n```")]

    intent = parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    assert [c.name for c in intent.concepts] == ["face", "jacket", "necklace"]
    assert len(llm.requests) == 2
    repair = llm.requests[1]["body"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! Here it is: {trigger_words: "
                                                          "[vincent]"}
    assert "not valid JSON" in repair[-1]["content"]


def test_invalid_answer_twice_is_a_clear_error(llm, images):
    llm.replies = [Reply("not json at all")]

    with pytest.raises(LLMError) as info:
        parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    message = str(info.value)
    assert "invalid intent twice" in message
    assert "'not json at all'" in message
    assert "offline parser" in message
    assert len(llm.requests) == 2


def test_schema_violations_are_named_in_the_repair_request(llm, images):
    broken = json.loads(json.dumps(VALID))
    broken["concepts"][0]["operation"] = "destroy"
    broken["concepts"][1]["values"][1]["references"] = [3]
    llm.replies = [Reply(json.dumps(broken)), Reply(json.dumps(VALID))]

    parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    repair = llm.requests[1]["body"]["messages"][-1]["content"]
    assert "concepts.0.operation" in repair


def test_reference_to_a_missing_box_is_refused_twice(llm, images):
    broken = json.loads(json.dumps(VALID))
    broken["concepts"][1]["values"][1]["references"] = [3]
    llm.replies = [Reply(json.dumps(broken))]

    with pytest.raises(LLMError, match=r"refers to \[3\], but only 2 reference box"):
        parse_intent(DESCRIPTION, images, BOXES, llm.settings)


def test_endpoint_without_json_schema_falls_back_to_json_mode(llm, images):
    llm.unsupported_formats = {"json_schema"}
    llm.replies = [Reply(json.dumps(VALID))]

    parse_intent(DESCRIPTION, images, BOXES, llm.settings)
    parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    # the second parse remembers what this endpoint supports
    assert llm.formats() == ["json_schema", "json_object", "json_object"]


def test_endpoint_without_any_structured_output_gets_plain_prompts(llm, images):
    llm.unsupported_formats = {"json_schema", "json_object"}
    llm.replies = [Reply(json.dumps(VALID))]

    parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    assert llm.formats() == ["json_schema", "json_object", None]


def test_slow_endpoint_times_out_with_a_clear_error(llm, images):
    llm.settings = LLMSettings(base_url=llm.settings.base_url, model="test-model",
                               api_key_env="IT_TEST_API_KEY", timeout_s=0.5)
    llm.replies = [Reply(json.dumps(VALID), delay=3)]

    with pytest.raises(LLMError, match=r"did not answer within 0.5 s"):
        parse_intent(DESCRIPTION, images, BOXES, llm.settings)


@pytest.mark.parametrize(("status", "message", "expected"), [
    (401, "Incorrect API key provided", r"rejected the API key \(HTTP 401: Incorrect API key"),
    (429, "You exceeded your current quota", r"rate-limiting or out of quota \(HTTP 429"),
    (500, "The server had an error", r"answered HTTP 500: The server had an error"),
    (503, "overloaded", r"answered HTTP 503: overloaded"),
    (404, "The model 'test-model' does not exist", r"HTTP 404: The model 'test-model'"),
])
def test_http_errors_say_what_the_endpoint_answered(llm, images, status, message, expected):
    llm.replies = [Reply(status=status, message=message)]

    with pytest.raises(LLMError, match=expected):
        parse_intent(DESCRIPTION, images, BOXES, llm.settings)
    assert len(llm.requests) == 1  # no blind retries


def test_missing_key_is_named_on_401(llm, images, monkeypatch):
    monkeypatch.delenv("IT_TEST_API_KEY")
    llm.replies = [Reply(status=401, message="Missing bearer token")]

    with pytest.raises(LLMError, match="IT_TEST_API_KEY is not set"):
        parse_intent(DESCRIPTION, images, BOXES, llm.settings)


def test_refusal_is_reported(llm, images):
    llm.replies = [Reply(None, refusal="I can't help with that.")]

    with pytest.raises(LLMError, match="refused to answer: I can't help with that"):
        parse_intent(DESCRIPTION, images, BOXES, llm.settings)


def test_unreachable_endpoint_is_reported(images, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=5)

    with pytest.raises(LLMError, match="could not be reached.*Is the server running"):
        parse_intent(DESCRIPTION, images, BOXES, settings)


def test_offline_fallback_is_used_and_noted_when_asked(images):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=5)

    intent = parse_intent("trigger: vincent. " + DESCRIPTION, images, BOXES, settings,
                          on_llm_failure="offline")

    assert intent.parser == "offline"
    assert intent.notes[0].startswith("The LLM could not be used")
    assert [c.name for c in intent.concepts] == ["face", "jacket", "necklace"]


def test_api_key_is_never_logged(llm, images, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, including openai's and httpx's
    llm.replies = [Reply("garbage"), Reply(json.dumps(VALID))]

    parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    assert caplog.records  # something was logged...
    assert KEY not in caplog.text  # ...but never the key


@pytest.mark.parametrize(("base_url", "env", "trusted", "allowed"), [
    ("http://evil.example/v1", "OPENAI_API_KEY", "", False),  # a workflow cannot redirect keys
    ("https://api.openai.com/v1", "OPENAI_API_KEY", "", True),  # the key's own provider
    ("https://api.openai.com/v1", "GROQ_API_KEY", "", False),  # ...but not another's
    ("http://localhost:8080/v1", "GROQ_API_KEY", "", True),  # loopback servers
    ("http://gpu-box.lan:8000/v1", "LOCAL_API_KEY", "gpu-box.lan, other", True),  # listed
])
def test_keys_only_go_where_the_machine_owner_allows(monkeypatch, base_url, env, trusted,
                                                     allowed):
    from intenttuner.llm import TRUSTED_HOSTS_ENV

    monkeypatch.setenv(env, KEY)
    monkeypatch.setenv(TRUSTED_HOSTS_ENV, trusted)
    settings = LLMSettings(base_url=base_url, model="m", api_key_env=env)
    if allowed:
        assert settings.api_key() == KEY
    else:
        with pytest.raises(LLMError, match=f"Not sending {env} to"):
            settings.api_key()


@pytest.mark.parametrize("env", ["HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "PATH", "openai_api_key"])
def test_only_api_key_variables_can_be_named(env):
    from intenttuner.errors import InputError

    with pytest.raises(InputError, match="ending in _API_KEY"):
        LLMSettings(base_url="http://127.0.0.1:1/v1", model="m", api_key_env=env)
