"""One chat completion asking for structured output: from an OpenAI-compatible endpoint, or from
a local model run in-process.

`complete` takes either `LLMSettings` (an endpoint) or a `ChatModel` (a local model, e.g.
`intenttuner.families.local_llm.LocalLLM`). From an endpoint it requests the answer as a strict
JSON schema where the endpoint supports it, else in JSON mode, else as plain text (mode "auto"
tries them in that order, and remembers per endpoint and model which one worked, so later
requests skip the ones it rejected). Every endpoint failure (unreachable, timeout, HTTP 401 /
429 / 4xx / 5xx, refusal, empty answer) becomes an `LLMError` naming the endpoint and what to
do; HTTP 401 says which key was (not) sent and how to send the right one. A local model answers
in plain text, with the JSON schema spelled out in the system prompt; its failures are
`LLMError`s too. `extract_json` finds the JSON in an answer, fenced or wrapped in prose.

What to ask, and how to validate and repair an answer, is the caller's business (the intent
parser, the caption refiner): the same for both kinds. The API key is sent only where
`LLMSettings.api_key` allows and is never logged.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Protocol

from .errors import InputError, LLMError, LLMUnavailableError
from .llm import TRUSTED_HOSTS_ENV, LLMSettings

log = logging.getLogger(__name__)

MODES = ("json_schema", "json_object", "plain")  # tried in this order by mode "auto"
# (base_url, model) → the mode that worked; clear it to forget what endpoints support.
WORKING_MODES: dict[tuple[str, str], str] = {}
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|schema", re.IGNORECASE)
_SCHEMA_PROMPT = ("\n\nAnswer with the JSON value only (no prose, no code fence). It must "
                  "validate against this JSON schema:\n{schema}")


class ChatModel(Protocol):
    """A chat model run in-process (`intenttuner.families.local_llm.LocalLLM`)."""

    model: str  # its name in messages and in refiner/parser names ("llm:<model>")
    base_url: str  # where it runs, for messages, e.g. "models/LLM/<name> (in-process)"

    def chat(self, messages: list[dict], *, max_new_tokens: int | None = None,
             temperature: float = 0.0) -> str:
        """The assistant's answer to ``messages``; LLMError when it cannot answer."""
        ...


ChatLLM = LLMSettings | ChatModel  # what an LLM socket carries: an endpoint or a local model


def complete(settings: ChatLLM, messages: list[dict], *, schema: dict, schema_name: str,
             mode: str = "auto") -> str:
    """The answer's text to ``messages``; ``schema`` is the strict JSON schema of the answer
    (sent in mode json_schema). In mode "auto", fall back to weaker structured-output modes
    when the endpoint rejects one, and remember what worked for this endpoint and model. A
    local model (`ChatModel`) answers in mode "plain" (or "auto"), the schema in its prompt."""
    if not isinstance(settings, LLMSettings):
        return _complete_local(settings, messages, schema, mode)
    key = (settings.base_url, settings.model)
    if mode == "auto":
        candidates = MODES[MODES.index(WORKING_MODES.get(key, MODES[0])):]
    elif mode in MODES:
        candidates = (mode,)
    else:
        raise InputError(f"LLM output mode '{mode}' is not one of auto, {', '.join(MODES)}.")
    with settings.client() as client:
        for i, candidate in enumerate(candidates):
            try:
                answer = _request(client, settings, messages, candidate, schema, schema_name)
            except _FormatRejected as exc:
                if i + 1 < len(candidates):
                    log.info("endpoint rejected %s output (%s); trying %s", candidate, exc,
                             candidates[i + 1])
                    continue
                raise LLMError(f"{settings.base_url} rejected the request: {exc}") from None
            WORKING_MODES[key] = candidate
            return answer
    raise AssertionError("unreachable")


def extract_json(answer: str) -> object:
    """The JSON value in ``answer``: whole, inside a ``` fence, or the outermost {...} of an
    answer wrapped in prose. Raises InputError (for the caller's repair request) when there is
    none."""
    text = answer.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    elif not text.startswith(("{", "[")) and "{" in text:
        end = text.rfind("}")
        text = text[text.index("{"): end + 1 if end > 0 else len(text)]
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"the answer is not valid JSON ({exc})") from None


def _complete_local(model: ChatModel, messages: list[dict], schema: dict, mode: str) -> str:
    """A local model's answer: plain text, asked for with the schema appended to the system
    prompt (what an endpoint's json_schema mode enforces, a local model can only be shown)."""
    if mode not in ("auto", "plain"):
        raise InputError(f"LLM output mode '{mode}' is not available for the local LLM "
                         f"'{model.model}', which answers in plain text: use auto or plain.")
    described = _SCHEMA_PROMPT.format(schema=json.dumps(schema, separators=(",", ":")))
    if messages and messages[0].get("role") == "system":
        messages = [{**messages[0], "content": messages[0]["content"] + described},
                    *messages[1:]]
    else:
        messages = [{"role": "system", "content": described.strip()}, *messages]
    answer = model.chat(messages)
    if not answer.strip():
        raise LLMError(f"The local LLM '{model.model}' returned an empty answer.")
    return answer


class _FormatRejected(Exception):
    """HTTP 400 that names the structured-output request: try a weaker mode."""


def _request(client, settings: LLMSettings, messages: list[dict], mode: str, schema: dict,
             schema_name: str) -> str:
    import openai

    kwargs: dict = {"model": settings.model, "messages": messages,
                    "temperature": settings.temperature,
                    "extra_headers": settings.request_headers()}
    if mode == "json_schema":
        kwargs["response_format"] = {"type": "json_schema", "json_schema": {
            "name": schema_name, "strict": True, "schema": schema}}
    elif mode == "json_object":
        kwargs["response_format"] = {"type": "json_object"}
    where = f"The LLM endpoint {settings.base_url} (model '{settings.model}')"
    try:
        response = client.chat.completions.create(**kwargs)
    except openai.APITimeoutError:
        raise LLMUnavailableError(f"{where} did not answer within {settings.timeout_s:g} s. Raise the "
                       "timeout, use a smaller model, or check that the server is not "
                       "overloaded.") from None
    except openai.APIConnectionError as exc:
        raise LLMUnavailableError(f"{where} could not be reached ({_cause(exc)}). Is the server running "
                       "and the base_url right (it usually ends in /v1)?") from None
    except openai.AuthenticationError as exc:
        raise LLMUnavailableError(_unauthorised(settings, where, _message(exc))) from None
    except openai.RateLimitError as exc:
        raise LLMUnavailableError(f"{where} is rate-limiting or out of quota (HTTP 429: {_message(exc)}). "
                       "Wait and run again, or check the account's quota.") from None
    except openai.BadRequestError as exc:
        text = _message(exc)
        if mode != "plain" and _FORMAT_WORDS.search(text):
            raise _FormatRejected(text) from None
        raise LLMError(f"{where} refused the request (HTTP 400: {text}).") from None
    except openai.APIStatusError as exc:
        raise LLMError(f"{where} answered HTTP {exc.status_code}: {_message(exc)}. Try again "
                       "later or check the server's log.") from None
    return _content(response, where)


def _unauthorised(settings: LLMSettings, where: str, answer: str) -> str:
    """The message for HTTP 401: which key was (not) sent, and how to send the right one."""
    if settings.key_withheld():
        return (f"{where} asks for an API key (HTTP 401: {answer}). {settings.api_key_env} is "
                "set but was not sent, because keys go to loopback servers only when you allow "
                f"it: add {settings.trust_entry()} to the {TRUSTED_HOSTS_ENV} environment "
                "variable and restart ComfyUI.")
    if not settings.has_key():
        return (f"{where} asks for an API key (HTTP 401: {answer}). The environment variable "
                f"{settings.api_key_env} is not set: set it before starting ComfyUI.")
    return (f"{where} rejected the API key (HTTP 401: {answer}). Check the key in "
            f"{settings.api_key_env} and set it again before starting ComfyUI.")


def _content(response, where: str) -> str:
    if not getattr(response, "choices", None):
        raise LLMError(f"{where} returned no answer (no choices in the response).")
    message = response.choices[0].message
    refusal = getattr(message, "refusal", None)
    if refusal:
        raise LLMError(f"{where} refused to answer: {refusal}")
    if not message.content or not message.content.strip():
        raise LLMError(f"{where} returned an empty answer.")
    return message.content


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(getattr(exc, "message", exc))


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return str(cause or exc) or type(exc).__name__
