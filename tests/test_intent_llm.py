"""The LLM intent parser against an OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import logging
import re
import socket

import pytest

from intenttuner.errors import InputError, LLMError
from intenttuner.intent import llm_parse
from intenttuner.intent.parse import parse_intent
from intenttuner.llm import TRUSTED_HOSTS_ENV, LLMSettings
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
def untrusted_llm(monkeypatch):
    """The fake endpoint on loopback, with a key set that the machine's owner did not allow
    it to get (INTENTTUNER_LLM_TRUSTED_HOSTS does not list it)."""
    monkeypatch.setenv("IT_TEST_API_KEY", KEY)
    monkeypatch.delenv(TRUSTED_HOSTS_ENV, raising=False)
    llm_parse._working_mode.clear()  # no memory of other tests' endpoints
    fake = FakeLLM()
    base_url = fake.start()
    fake.port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    fake.settings = LLMSettings(base_url=base_url, model="test-model",
                                api_key_env="IT_TEST_API_KEY", timeout_s=5)
    yield fake
    fake.stop()


@pytest.fixture
def llm(untrusted_llm, monkeypatch):
    """The fake endpoint, listed as trusted so the key is sent to it."""
    monkeypatch.setenv(TRUSTED_HOSTS_ENV, f"127.0.0.1:{untrusted_llm.port}")
    return untrusted_llm


def authorization(fake: FakeLLM) -> list[str | None]:
    """The Authorization header of every request the fake server received."""
    return [r["headers"].get("authorization") for r in fake.requests]


def test_valid_structured_answer_becomes_the_intent(llm, images):
    llm.replies = [Reply(json.dumps(VALID))]

    intent = parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    assert intent.parser == "llm:test-model"
    assert intent.trigger_words == ["vincent"]
    assert [(c.name, c.operation.value) for c in intent.concepts] == [
        ("face", "keep"), ("jacket", "modify"), ("necklace", "delete")]
    assert [v.references for v in intent.concepts[1].values] == [[1], [2]]
    assert [r.crop().size for r in intent.references] == [(20, 20), (20, 20)]
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
    assert intent.notes[0].startswith(f"The LLM 'm' at http://127.0.0.1:{port}/v1 failed, so "
                                      "the offline parser was used instead. The LLM's error: ")
    assert "could not be reached" in intent.notes[0]
    assert [c.name for c in intent.concepts] == ["face", "jacket", "necklace"]


def test_api_key_is_never_logged(llm, images, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, including openai's and httpx's
    llm.replies = [Reply("garbage"), Reply(json.dumps(VALID))]

    parse_intent(DESCRIPTION, images, BOXES, llm.settings)

    assert authorization(llm) == [f"Bearer {KEY}"] * 2  # the key was read and sent twice...
    assert any("asking for a repair" in r.getMessage() for r in caplog.records)  # ...logged...
    assert KEY not in caplog.text  # ...but never the key


@pytest.mark.parametrize(("base_url", "env", "trusted", "outcome"), [
    ("http://evil.example/v1", "OPENAI_API_KEY", "", "refused"),  # a workflow cannot redirect
    ("https://api.openai.com/v1", "OPENAI_API_KEY", "", "sent"),  # the key's own provider
    ("https://api.openai.com/v1", "GROQ_API_KEY", "", "refused"),  # ...but not another's
    ("http://localhost:8080/v1", "GROQ_API_KEY", "", "withheld"),  # loopback: no key...
    ("http://127.0.0.5:8080/v1", "GROQ_API_KEY", "", "withheld"),  # (all of 127/8)
    ("http://[::1]:8080/v1", "GROQ_API_KEY", "", "withheld"),
    ("http://localhost:8080/v1", "GROQ_API_KEY", "localhost", "sent"),  # ...unless listed
    ("http://localhost:8080/v1", "GROQ_API_KEY", "localhost:8080", "sent"),
    ("http://localhost:8080/v1", "GROQ_API_KEY", "localhost:9999", "withheld"),  # other port
    ("http://localhost:8080/v1", "GROQ_API_KEY", "127.0.0.1", "withheld"),  # other name
    ("http://[::1]:8080/v1", "GROQ_API_KEY", "[::1]:8080", "sent"),
    ("http://gpu-box.lan:8000/v1", "LOCAL_API_KEY", "gpu-box.lan, other", "sent"),  # listed
    ("http://gpu-box.lan:8000/v1", "LOCAL_API_KEY", "gpu-box.lan:9000", "refused"),
])
def test_keys_only_go_where_the_machine_owner_allows(monkeypatch, base_url, env, trusted,
                                                     outcome):
    monkeypatch.setenv(env, KEY)
    monkeypatch.setenv(TRUSTED_HOSTS_ENV, trusted)
    settings = LLMSettings(base_url=base_url, model="m", api_key_env=env)
    if outcome == "refused":
        with pytest.raises(LLMError, match=f"Not sending {env} to .*{TRUSTED_HOSTS_ENV}"):
            settings.api_key()
    else:
        assert settings.api_key() == (KEY if outcome == "sent" else None)
        assert settings.key_withheld() is (outcome == "withheld")


def test_untrusted_loopback_server_receives_no_key(untrusted_llm, images):
    untrusted_llm.replies = [Reply(json.dumps(VALID))]

    intent = parse_intent(DESCRIPTION, images, BOXES, untrusted_llm.settings)

    assert intent.parser == "llm:test-model"  # local servers need no key...
    assert authorization(untrusted_llm) == [None]  # ...and get none, not even a placeholder
    assert KEY not in json.dumps(untrusted_llm.requests)


@pytest.mark.parametrize("listed", ["127.0.0.1", "127.0.0.1:{port}", " other.host , 127.0.0.1"])
def test_listed_loopback_server_receives_the_key(untrusted_llm, images, monkeypatch, listed):
    monkeypatch.setenv(TRUSTED_HOSTS_ENV, listed.format(port=untrusted_llm.port))
    untrusted_llm.replies = [Reply(json.dumps(VALID))]

    parse_intent(DESCRIPTION, images, BOXES, untrusted_llm.settings)

    assert authorization(untrusted_llm) == [f"Bearer {KEY}"]


def test_loopback_server_listed_on_another_port_receives_no_key(untrusted_llm, images,
                                                                monkeypatch):
    monkeypatch.setenv(TRUSTED_HOSTS_ENV, f"127.0.0.1:{untrusted_llm.port + 1}")
    untrusted_llm.replies = [Reply(json.dumps(VALID))]

    parse_intent(DESCRIPTION, images, BOXES, untrusted_llm.settings)

    assert authorization(untrusted_llm) == [None]


def test_401_from_an_untrusted_loopback_server_says_to_list_it(untrusted_llm, images):
    untrusted_llm.replies = [Reply(status=401, message="Missing bearer token")]

    with pytest.raises(LLMError) as info:
        parse_intent(DESCRIPTION, images, BOXES, untrusted_llm.settings)

    message = str(info.value)
    assert f"add 127.0.0.1:{untrusted_llm.port} to the {TRUSTED_HOSTS_ENV}" in message
    assert "IT_TEST_API_KEY is set but was not sent" in message
    assert "HTTP 401: Missing bearer token" in message
    assert KEY not in message
    assert authorization(untrusted_llm) == [None]


def test_without_a_key_no_other_variable_is_sent(untrusted_llm, images, monkeypatch):
    """The openai client reads OPENAI_API_KEY (and OPENAI_ADMIN_KEY) by itself when given no
    key; neither may reach an endpoint that was meant to get none."""
    monkeypatch.delenv("IT_TEST_API_KEY")
    others = {"OPENAI_API_KEY": "sk-other-" + "x" * 40, "OPENAI_ADMIN_KEY": "sk-admin-" + "y" * 40}
    for name, value in others.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(TRUSTED_HOSTS_ENV, "127.0.0.1")
    untrusted_llm.replies = [Reply(json.dumps(VALID))]

    parse_intent(DESCRIPTION, images, BOXES, untrusted_llm.settings)

    assert authorization(untrusted_llm) == [None]
    sent = json.dumps(untrusted_llm.requests)
    assert not [name for name, value in others.items() if value in sent]


@pytest.mark.parametrize("entry", ["127.0.0.1:http", "[::1]:x"])
def test_bad_trusted_host_entries_are_named(monkeypatch, entry):
    monkeypatch.setenv("IT_TEST_API_KEY", KEY)
    monkeypatch.setenv(TRUSTED_HOSTS_ENV, f"ok.example, {entry}")
    settings = LLMSettings(base_url="http://127.0.0.1:1/v1", model="m",
                           api_key_env="IT_TEST_API_KEY")
    with pytest.raises(InputError, match=f"entry '{re.escape(entry)}' has no valid port"):
        settings.api_key()


@pytest.mark.parametrize("env", ["HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "PATH", "openai_api_key"])
def test_only_api_key_variables_can_be_named(env):
    with pytest.raises(InputError, match="ending in _API_KEY"):
        LLMSettings(base_url="http://127.0.0.1:1/v1", model="m", api_key_env=env)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:99999/v1", "http://127.0.0.1:port/v1"])
def test_a_bad_port_is_refused_when_the_settings_are_made(base_url):
    with pytest.raises(InputError, match=f"'{re.escape(base_url)}' has an invalid port"):
        LLMSettings(base_url=base_url, model="m")
