"""Adapting prompts with an LLM backend (the loopback FakeLLM as an endpoint, and a local chat
model): batches with the explicit rules and the intent's, rewrites checked against the intent,
one repair of an unusable answer, then the plain prompts of that batch kept with the reason."""

from __future__ import annotations

import json

import pytest

from intenttuner.errors import InputError, LLMError
from intenttuner.llm import TRUSTED_HOSTS_ENV, LLMSettings
from intenttuner.llm_chat import WORKING_MODES
from intenttuner.prompt_adapt.adapt import adapt_prompts
from intenttuner.prompt_adapt.llm_rewrite import OUTPUT_SCHEMA, rewrite_with_llm
from tests.fake_llm import FakeLLM, Reply
from tests.test_prompt_adapt import MILO, row


@pytest.fixture
def llm(monkeypatch):
    """The fake endpoint on loopback (no key: a loopback host that is not listed gets none)."""
    monkeypatch.delenv(TRUSTED_HOSTS_ENV, raising=False)
    WORKING_MODES.clear()
    fake = FakeLLM()
    fake.settings = LLMSettings(base_url=fake.start(), model="test-model",
                                api_key_env="IT_TEST_API_KEY", timeout_s=5)
    yield fake
    fake.stop()


def answer(*prompts: str) -> str:
    return json.dumps({"prompts": list(prompts)}, ensure_ascii=False)


def sent(request: dict) -> list[str]:
    return json.loads(request["body"]["messages"][1]["content"])["prompts"]


def styled(body: dict) -> Reply:
    """An LLM that styles each prompt it is sent."""
    return Reply(answer(*(p + ", soft light" for p in sent({"body": body}))))


def test_the_llm_rewrites_in_batches_with_the_rules(llm):
    llm.respond = styled

    result = adapt_prompts(["milo smiling", "", "milo in a forest", "a boy"], llm.settings,
                           MILO, batch_size=2)

    assert result.prompts == ["milo smiling, soft light", "", "milo in a forest, soft light",
                              "a boy, soft light"]
    assert result.backend == "llm:test-model"
    assert [sent(r) for r in llm.requests] == [["milo smiling", "milo in a forest"], ["a boy"]]
    body = llm.requests[0]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == OUTPUT_SCHEMA
    system = body["messages"][0]["content"].splitlines()
    assert system[0].startswith("You rewrite plain prompts for Stable Diffusion")
    assert "- Keep these trigger words verbatim wherever a prompt has them: \"milo\". Never " \
           "translate, respell or recase them, nor add them to a prompt that lacks them." in system
    assert ("- Never add these, nor anything of the kind (not even as absent: \"no necklace\" "
            "adds it): necklace (also: chain, choker, locket, pendant).") in system
    kept = next(line for line in system if line.startswith("- Where a prompt mentions"))
    assert kept.endswith("face (also: beard, bearded, cheeks, chin, clean-shaven, eye, "
                         "eyebrows, eyes, facial, freckled, freckles, goatee, lips, moustache, "
                         "moustached, mouth, mustache, mustached, nose, stubble, unshaven); "
                         "hair colour (also: bangs, braid, braids, bun, colour, curls, fringe, "
                         "hair, haircut, hairstyle, locks, ponytail), states such as "
                         "'black hair', 'blonde hair', 'red hair', 'blue hair'.")
    assert any("Write English" in line for line in system)
    assert any("at most 60 words" in line for line in system)


def test_without_an_intent_the_llm_gets_no_intent_rules(llm):
    llm.respond = styled

    assert adapt_prompts("a cat", llm.settings).prompts == ["a cat, soft light"]
    system = llm.requests[0]["body"]["messages"][0]["content"]
    assert "trigger" not in system and "Never add these" not in system


def test_llm_rewrites_are_checked_against_the_intent(llm):
    llm.replies = [Reply(answer("a boy with red hair, 4k", "milo smiling, soft light"))]

    result = adapt_prompts(["milo with blonde hair", "milo smiling"], llm.settings, MILO)

    assert [row(i) for i in result.items] == [
        (1, "milo with blonde hair", "milo, a boy with blonde hair, 4k", "repaired",
         ["put back 'blonde hair' for 'red hair' (hair colour)",
          "put the trigger word 'milo' in front"]),
        (2, "milo smiling", "milo smiling, soft light", "adapted", [])]


def test_the_llm_adapts_a_foreign_prompt_and_says_so(llm):
    llm.replies = [Reply(answer("a dog wearing glasses on a beach, golden hour"))]

    result = adapt_prompts("un chien avec des lunettes sur la plage", llm.settings)

    assert [row(i) for i in result.items] == [
        (1, "un chien avec des lunettes sur la plage",
         "a dog wearing glasses on a beach, golden hour", "adapted",
         ["written in French: the LLM was asked to answer in English"])]


def test_a_wrong_count_gets_one_repair(llm):
    llm.replies = [Reply(answer("a cat, 4k")), Reply(answer("a cat, 4k", "a dog, 4k"))]

    result = adapt_prompts(["a cat", "a dog"], llm.settings)

    assert result.prompts == ["a cat, 4k", "a dog, 4k"]
    assert len(llm.requests) == 2
    repair = llm.requests[1]["body"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": answer("a cat, 4k")}
    assert repair[-1]["content"] == (
        "Your answer could not be used: it has 1 prompt(s) for the 2 sent. Answer again with "
        "only the JSON object {\"prompts\": [...]} holding exactly 2 rewritten prompt(s), one "
        "string per prompt I sent, in the same order.")


def test_unusable_answers_twice_keep_the_plain_prompts_of_that_batch(llm):
    def respond(body):  # the cat's batch, asked or repaired, gets prose
        if sent({"body": body}) == ["a cat"]:
            return "Sure! Here are your prompts: a cat, 4k"
        return styled(body)
    llm.respond = respond

    result = adapt_prompts(["a cat", "a dog"], llm.settings, batch_size=1)

    assert [row(i) for i in result.items] == [
        (1, "a cat", "a cat", "kept",
         ["the LLM's answer was unusable twice: the answer is not valid JSON (Expecting value: "
          "line 1 column 1 (char 0)), then the answer is not valid JSON (Expecting value: line "
          "1 column 1 (char 0)); kept the plain prompt"]),
        (2, "a dog", "a dog, soft light", "adapted", [])]
    assert len(llm.requests) == 3  # the cat twice, the dog once


@pytest.mark.parametrize(("content", "why"), [
    ('{"prompts": ["a cat, 4k", 7]}', "the answer's prompts are not all strings"),
    ('{"rewrites": ["a cat, 4k"]}', 'the answer is not a JSON object {"prompts": [...]}'),
])
def test_answers_of_the_wrong_shape_are_unusable(llm, content, why):
    llm.replies = [Reply(content)]
    reasons: dict[int, str] = {}

    assert rewrite_with_llm(["a cat", "a dog"], llm.settings, None, reasons=reasons) == [None,
                                                                                         None]
    assert reasons == {0: f"the LLM's answer was unusable twice: {why}, then {why}",
                       1: f"the LLM's answer was unusable twice: {why}, then {why}"}


def test_a_bare_list_answer_will_do(llm):
    llm.replies = [Reply('["a cat, 4k"]')]

    assert rewrite_with_llm(["a cat"], llm.settings, None) == ["a cat, 4k"]


def test_llm_failures_propagate(llm):
    llm.replies = [Reply(status=500, message="model crashed")]

    with pytest.raises(LLMError, match="answered HTTP 500: model crashed"):
        adapt_prompts("a cat", llm.settings)


def test_rewrite_batch_size_is_checked(llm):
    with pytest.raises(InputError, match="^LLM prompt batch_size 0 must be 1 or more"):
        rewrite_with_llm(["a cat"], llm.settings, None, batch_size=0)


class LocalChat:
    """A local model (Load Local LLM): ``chat`` answers in plain text."""

    model = "tiny-chat"
    base_url = "models/LLM/tiny-chat (in-process)"

    def __init__(self):
        self.messages: list[list[dict]] = []

    def chat(self, messages, *, max_new_tokens=None, temperature=0.0) -> str:
        self.messages.append(messages)
        return "```json\n" + answer("a cat, soft light") + "\n```"


def test_a_local_llm_is_a_backend_too():
    local = LocalChat()

    result = adapt_prompts("a cat", local)

    assert (result.prompts, result.backend) == (["a cat, soft light"], "llm:tiny-chat")
    assert '"prompts"' in local.messages[0][0]["content"]  # the schema in its system prompt


# -- the real (tiny, random) adapter -------------------------------------------------------------
