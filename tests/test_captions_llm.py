"""The LLM caption refiner against an OpenAI-compatible server on loopback: answers used as is,
one repair round for the failed items only, and the offline rules whenever the LLM fails."""

from __future__ import annotations

import json
import logging
import socket
import unicodedata

import pytest

from intenttuner.captions.job import CaptionJob
from intenttuner.captions.refine_llm import refine_with_llm, summarise_intent
from intenttuner.captions.refine_offline import refine_offline
from intenttuner.captions.rules import CaptionRules
from intenttuner.intent.schema import Intent
from intenttuner.llm import TRUSTED_HOSTS_ENV, LLMSettings
from intenttuner.llm_chat import WORKING_MODES
from tests.dataset_helpers import sample_intent
from tests.fake_llm import FakeLLM, Reply

KEY = "sk-test-SECRET-0123456789abcdef"
SOURCE = ("a man with a beard wearing a black leather jacket and a silver necklace, standing "
          "on a street")
GOOD = {"1": "ohwx, a man, wearing a black leather jacket, standing on a street",
        "2": "ohwx, close-up of the face, a man",
        "3": "ohwx, close-up of the jacket, a man, wearing a black leather jacket"}


def make_intent(trigger: str = "ohwx") -> Intent:
    return sample_intent(trigger_words=(trigger,))


INTENT = make_intent()
RULES = CaptionRules.from_intent(INTENT)
JOBS = [
    CaptionJob("a.png", own=SOURCE, removed=["necklace"],
               hints={"jacket": ["black leather jacket"]}),
    CaptionJob("1_face/a_face.png", "keep", "face", own="a close up of a man's face with a beard",
               source=SOURCE, removed=["necklace"]),
    CaptionJob("2_jacket/a_jacket.png", "modify", "jacket", value="black leather jacket",
               own="a black leather jacket", source=SOURCE),
]


@pytest.fixture
def llm(monkeypatch):
    """The fake endpoint on loopback, with a key set that it must not receive (not listed)."""
    monkeypatch.setenv("IT_TEST_API_KEY", KEY)
    monkeypatch.delenv(TRUSTED_HOSTS_ENV, raising=False)
    WORKING_MODES.clear()
    fake = FakeLLM()
    base_url = fake.start()
    fake.settings = LLMSettings(base_url=base_url, model="test-model",
                                api_key_env="IT_TEST_API_KEY", timeout_s=5)
    yield fake
    fake.stop()


def answer(captions: dict[str, str]) -> str:
    return json.dumps({"captions": [{"id": i, "caption": c} for i, c in captions.items()]},
                      ensure_ascii=False)


def refine(fake: FakeLLM, jobs=JOBS, rules=RULES, **kwargs):
    return refine_with_llm(jobs, rules, fake.settings, intent_summary=summarise_intent(INTENT),
                           **kwargs)


def items(request: dict) -> list[dict]:
    return json.loads(request["body"]["messages"][1]["content"])["items"]


def repair_fix(request: dict) -> list[dict]:
    content = request["body"]["messages"][-1]["content"]
    return json.loads(content[content.index('{"fix"'):])["fix"]


def test_a_valid_answer_is_used_as_is(llm):
    llm.replies = [Reply(answer(GOOD))]

    refined = refine(llm)

    assert [r.caption for r in refined] == list(GOOD.values())
    assert {r.refiner for r in refined} == {"llm:test-model"}
    assert all(r.notes[0] == "written by the LLM" and not r.warnings for r in refined)
    assert len(llm.requests) == 1
    # ranked like offline parts, so the token limit can shorten it phrase by phrase
    assert [(p.text, p.modify) for p in refined[2].parts] == [
        ("close-up of the jacket", None), ("a man", None),
        ("wearing a black leather jacket", "jacket")]
    assert refined[2].parts[2].importance > refined[2].parts[0].importance


def test_the_request_carries_the_rules_and_the_jobs(llm):
    llm.replies = [Reply(answer(GOOD))]

    refine(llm)

    body = llm.requests[0]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    system = body["messages"][0]["content"]
    assert '"ohwx"' in system and "keep his face" in system
    deleted = next(line for line in system.splitlines() if line.startswith("- Never mention th"))
    kept = next(line for line in system.splitlines() if line.startswith("- Do not describe"))
    modified = next(line for line in system.splitlines() if line.startswith("- Describe each"))
    assert "necklace" in deleted and "pendant" in deleted
    assert "face" in kept and "beard" in kept
    assert "jacket" in modified and "'red wool coat'" in modified
    assert '"close-up of the face"' in system and '"close-up of the jacket"' in system
    assert items(llm.requests[0]) == [
        {"id": "1", "kind": "whole image", "caption": SOURCE, "source_caption": None,
         "known_states": {"jacket": ["black leather jacket"]}, "removed": ["necklace"]},
        {"id": "2", "kind": "crop of face", "caption": JOBS[1].own, "source_caption": SOURCE,
         "known_states": {}, "removed": ["necklace"]},
        {"id": "3", "kind": "crop of jacket", "caption": "a black leather jacket",
         "source_caption": SOURCE, "known_states": {"jacket": ["black leather jacket"]},
         "removed": []}]


def test_a_failed_caption_is_repaired_alone(llm):
    bad = dict(GOOD, **{"2": "ohwx, close-up of the face, a man, with a silver necklace"})
    llm.replies = [Reply(answer(bad)), Reply(answer({"2": "ohwx, close-up of the face, a man "
                                                          "with short hair"}))]

    refined = refine(llm)

    assert len(llm.requests) == 2
    repair = llm.requests[1]["body"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": answer(bad)}
    fix = repair_fix(llm.requests[1])
    assert [f["id"] for f in fix] == ["2"]
    assert fix[0]["problems"] == [
        "it mentions 'necklace', which must never appear ('with a silver necklace')"]
    assert refined[1].caption == "ohwx, close-up of the face, a man, with short hair"
    assert refined[1].refiner == "llm:test-model" and not refined[1].warnings
    assert "rewrote it once" in refined[1].notes[1] and "necklace" in refined[1].notes[1]
    assert [r.caption for r in refined[::2]] == [GOOD["1"], GOOD["3"]]


def test_a_caption_failing_twice_falls_back_to_the_offline_rules(llm):
    bad = dict(GOOD, **{"1": "ohwx, a man with a beard, wearing a jacket"})
    llm.replies = [Reply(answer(bad))]

    refined = refine(llm)

    assert len(llm.requests) == 2
    assert [f["id"] for f in repair_fix(llm.requests[1])] == ["1"]
    offline = refine_offline(JOBS[0], RULES)
    assert refined[0].refiner == "offline" and refined[0].caption == offline.caption
    warning = refined[0].warnings[-1]
    assert warning.startswith("the LLM's caption failed the checks twice (it describes the "
                              "kept 'face' ('with a beard')")
    assert "it must describe 'jacket' with its state" in warning
    assert warning.endswith("; used the offline rules")
    assert [r.refiner for r in refined[1:]] == ["llm:test-model"] * 2


def test_a_missing_id_is_asked_for_once_then_falls_back(llm):
    partial = {k: v for k, v in GOOD.items() if k != "3"}
    llm.replies = [Reply(answer(partial)), Reply(answer({"9": "ohwx, a man"}))]

    refined = refine(llm)

    assert repair_fix(llm.requests[1]) == [
        {"id": "3", "problems": ["the answer has no caption for this id"]}]
    assert refined[2].refiner == "offline"
    assert "no caption for this id" in refined[2].warnings[-1]
    assert [r.refiner for r in refined[:2]] == ["llm:test-model"] * 2


def test_invalid_json_is_repaired_once(llm):
    llm.replies = [Reply("Sure! {captions: oops"), Reply("```json\n" + answer(GOOD) + "\n```")]

    refined = refine(llm)

    assert [r.caption for r in refined] == list(GOOD.values())
    content = llm.requests[1]["body"]["messages"][-1]["content"]
    assert content.startswith("Your answer could not be used: the answer is not valid JSON")
    assert [f["id"] for f in repair_fix(llm.requests[1])] == ["1", "2", "3"]


def test_invalid_json_twice_falls_back_for_the_batch(llm):
    llm.replies = [Reply("not json at all")]

    refined = refine(llm)

    assert len(llm.requests) == 2
    assert [r.refiner for r in refined] == ["offline"] * 3
    assert [r.caption for r in refined] == [refine_offline(j, RULES).caption for j in JOBS]
    for r in refined:
        assert r.warnings[-1].startswith("the LLM could not caption this item (The LLM "
                                         "'test-model'")
        assert "unusable JSON twice" in r.warnings[-1] and "not valid JSON" in r.warnings[-1]


@pytest.mark.parametrize(("failure", "named"), [
    ("http500", "answered HTTP 500: The server had an error"),
    ("unreachable", "could not be reached"),
    ("slow", "did not answer within 0.5 s"),
])
def test_endpoint_failures_fall_back_with_a_warning(llm, caplog, failure, named):
    caplog.set_level(logging.DEBUG)
    settings = llm.settings
    if failure == "http500":
        llm.replies = [Reply(status=500, message="The server had an error")]
    elif failure == "slow":
        llm.replies = [Reply(answer(GOOD), delay=3)]
        settings = LLMSettings(base_url=settings.base_url, model="test-model",
                               api_key_env="IT_TEST_API_KEY", timeout_s=0.5)
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", model="test-model",
                               api_key_env="IT_TEST_API_KEY", timeout_s=5)

    refined = refine_with_llm(JOBS, RULES, settings, intent_summary="a man")

    assert len(llm.requests) == (0 if failure == "unreachable" else 1)  # no blind retries
    assert [r.refiner for r in refined] == ["offline"] * 3
    for r in refined:
        assert named in r.warnings[-1] and r.warnings[-1].endswith("used the offline rules")
    assert any(named in rec.getMessage() and rec.levelno == logging.WARNING
               for rec in caplog.records)
    assert KEY not in caplog.text


def test_a_non_ascii_trigger_survives(llm):
    intent = make_intent("Amélie")
    rules = CaptionRules.from_intent(intent)
    job = CaptionJob("a.png", own="a woman in a black leather jacket, a café",
                     hints={"jacket": ["black leather jacket"]})
    decomposed = unicodedata.normalize("NFD", "Amélie, a woman, in a black leather jacket, "
                                              "a café")
    llm.replies = [Reply(answer({"1": decomposed}))]

    refined = refine_with_llm([job], rules, llm.settings, intent_summary=summarise_intent(intent))

    assert refined[0].refiner == "llm:test-model"
    assert refined[0].caption == "Amélie, a woman, in a black leather jacket, a café"
    body = llm.requests[0]["body"]
    assert '"Amélie"' in body["messages"][0]["content"]
    assert items(llm.requests[0])[0]["caption"] == job.own


def test_jobs_go_in_batches(llm):
    jobs = [CaptionJob(f"{n}.png", own=f"a man standing in hall {n}") for n in range(10)]

    def echo(body: dict) -> str:
        return answer({item["id"]: "ohwx, " + item["caption"]
                       for item in json.loads(body["messages"][1]["content"])["items"]})

    llm.respond = echo

    refined = refine(llm, jobs=jobs, batch_size=4)

    assert [len(items(r)) for r in llm.requests] == [4, 4, 2]
    assert [r.caption for r in refined] == [f"ohwx, a man, standing in hall {n}"
                                            for n in range(10)]
    assert {r.refiner for r in refined} == {"llm:test-model"}


def test_the_loopback_server_gets_no_key(llm):
    llm.replies = [Reply(answer(dict(GOOD, **{"3": "ohwx, a jacket"}))), Reply(answer(GOOD))]

    refine(llm)

    assert len(llm.requests) == 2  # the repair went out the same way
    assert [r["headers"].get("authorization") for r in llm.requests] == [None, None]
    assert KEY not in json.dumps(llm.requests)


def test_a_listed_server_gets_the_key(llm, monkeypatch):
    monkeypatch.setenv(TRUSTED_HOSTS_ENV, "127.0.0.1")
    llm.replies = [Reply(answer(GOOD))]

    refine(llm)

    assert llm.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_batch_size_must_be_positive(llm):
    with pytest.raises(ValueError, match="batch_size 0"):
        refine(llm, batch_size=0)


def test_an_endpoint_that_times_out_is_not_asked_again_in_the_same_run(llm):
    """A timeout (or an unreachable server) would repeat for every batch: the remaining
    batches go to the offline rules at once instead of each waiting out the timeout."""
    jobs = [CaptionJob(f"{n}.png", own=f"a man standing in hall {n}") for n in range(10)]
    llm.replies = [Reply(answer(GOOD), delay=3)]
    settings = LLMSettings(base_url=llm.settings.base_url, model="test-model",
                           api_key_env="IT_TEST_API_KEY", timeout_s=0.5)

    refined = refine_with_llm(jobs, RULES, settings, intent_summary="a man", batch_size=4)

    assert len(llm.requests) == 1
    assert [r.refiner for r in refined] == ["offline"] * 10
    assert all("did not answer within 0.5 s" in r.warnings[-1] for r in refined)
