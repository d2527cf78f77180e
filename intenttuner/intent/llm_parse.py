"""Parsing an intent with an LLM behind any OpenAI-compatible endpoint, or a local one.

The LLM gets a system prompt that defines the intent schema with few-shot examples across
domains, the description and the list of reference boxes. Its answer is requested as structured
output through `intenttuner.llm_chat.complete` — a strict JSON schema where the endpoint supports
it, else JSON mode, else plain text with JSON extracted — and validated like any other intent.
An invalid answer gets exactly one repair round trip (the validation errors are sent back); a
second invalid answer is an error that quotes what the endpoint said. Every endpoint failure
(unreachable, timeout, HTTP 401 / 429 / 5xx, refusal) becomes an `LLMError` naming the endpoint
and what to do.

A local model (Load Local LLM) gets the same prompt, the schema spelled out in it, and the same
validation and repair round trip (see `llm_chat`).

The API key is read from the environment variable named in `LLMSettings` and sent only where
`LLMSettings.api_key` allows (loopback servers get none unless listed as trusted); it is never
logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from ..errors import InputError, LLMError
from ..llm_chat import WORKING_MODES, ChatLLM, complete, extract_json
from .schema import Domain, Granularity, Intent, Operation, ReferenceBox

log = logging.getLogger(__name__)

_working_mode = WORKING_MODES  # the shared memory of what each endpoint supports (tests clear it)

_VALUE = {"type": "object", "additionalProperties": False,
          "required": ["text", "references"],
          "properties": {"text": {"type": "string"},
                         "references": {"type": "array", "items": {"type": "integer"}}}}
# What the LLM fills in (strict-mode compatible: every field required, no extra fields).
OUTPUT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["trigger_words", "domain", "concepts", "unplaced"],
    "properties": {
        "trigger_words": {"type": "array", "items": {"type": "string"}},
        "domain": {"type": "string", "enum": [d.value for d in Domain]},
        "concepts": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "phrase", "granularity", "operation", "references", "values"],
            "properties": {
                "name": {"type": "string"},
                "phrase": {"type": "string"},
                "granularity": {"type": "string", "enum": [g.value for g in Granularity]},
                "operation": {"type": "string", "enum": [o.value for o in Operation]},
                "references": {"type": "array", "items": {"type": "integer"}},
                "values": {"type": "array", "items": _VALUE},
            }}},
        "unplaced": {"type": "array", "items": {"type": "string"}},
    },
}

SYSTEM_PROMPT = """\
You turn a person's description of how they want to fine-tune a text-to-image model into an \
intent specification. Answer with one JSON object and nothing else, with these fields:

- trigger_words: the word(s) that will summon the subject: a name the user gives ("a man called \
Vincent" -> ["Vincent"]) or an explicit "trigger: x". If none is given use ["ohwx"].
- domain: one of portrait (a real person), character (2D/3D/anime/cartoon character), product, \
style (painting or illustration style), pose (a pose or action), object (other objects, \
animals), scene (places), other.
- concepts: one entry per thing the user wants kept, changed or removed:
  - name: short lower-case label ("face", "hair colour", "superhero landing pose").
  - phrase: what an open-vocabulary object detector should look for. For an attribute, the \
object that carries it ("hair" for hair colour); for an instance, the thing itself; for \
imagery, the name.
  - granularity: attribute (a property: hair colour, material), instance (a thing you could \
box: face, jacket, necklace, logo), imagery (a whole-image quality: lighting, painting style, \
pose, background blur).
  - operation: keep (reproduce it faithfully), modify (text should control it), delete (it must \
never appear). "Don't change X" means keep; "never X", "no X", "without X" mean delete.
  - references: the numbers n of the [n] marks written right after this concept.
  - values: only for modify: two or more contrasting states text should switch between, each \
{"text", "references"}. Use the user's own states when given ("between the leather jacket [1] \
and the striped jacket [2]"); otherwise propose two clear, common opposites (hair colour: \
"black hair", "blonde hair"). Empty for keep and delete.
- unplaced: sentences that give an instruction you cannot turn into a concept. Sentences that \
only say who or what is trained are not unplaced.

Only use [n] numbers that appear in the description. Do not invent concepts the user did not \
mention."""

_EXAMPLES = [
    ("Train a model of a man called Vincent. Keep his face consistent. He should be able to "
     "switch between the black leather jacket [1] and the striped jacket [2]. His hair colour "
     "should be adjustable. Never give him a necklace.\nReference boxes: [1] on image 1, [2] on "
     "image 2.",
     {"trigger_words": ["Vincent"], "domain": "portrait", "unplaced": [], "concepts": [
         {"name": "face", "phrase": "face", "granularity": "instance", "operation": "keep",
          "references": [], "values": []},
         {"name": "jacket", "phrase": "jacket", "granularity": "instance",
          "operation": "modify", "references": [],
          "values": [{"text": "black leather jacket", "references": [1]},
                     {"text": "striped jacket", "references": [2]}]},
         {"name": "hair colour", "phrase": "hair", "granularity": "attribute",
          "operation": "modify", "references": [],
          "values": [{"text": "black hair", "references": []},
                     {"text": "blonde hair", "references": []}]},
         {"name": "necklace", "phrase": "necklace", "granularity": "instance",
          "operation": "delete", "references": [], "values": []}]}),
    ("I want my anime girl Mika with her red ribbon [1] always the same; her outfit can vary. "
     "No watermarks.\nReference boxes: [1] on image 1.",
     {"trigger_words": ["Mika"], "domain": "character", "unplaced": [], "concepts": [
         {"name": "red ribbon", "phrase": "red ribbon", "granularity": "instance",
          "operation": "keep", "references": [1], "values": []},
         {"name": "outfit", "phrase": "outfit", "granularity": "instance",
          "operation": "modify", "references": [],
          "values": [{"text": "school uniform", "references": []},
                     {"text": "summer dress", "references": []}]},
         {"name": "watermark", "phrase": "watermark", "granularity": "instance",
          "operation": "delete", "references": [], "values": []}]}),
    ("Teach it the superhero landing pose. Anyone can do the pose. Keep the low camera angle, "
     "and the background should be changeable. My cat is called Tom.\nReference boxes: none.",
     {"trigger_words": ["ohwx"], "domain": "pose",
      "unplaced": ["My cat is called Tom."], "concepts": [
         {"name": "superhero landing pose", "phrase": "person in superhero landing pose",
          "granularity": "imagery", "operation": "keep", "references": [], "values": []},
         {"name": "person", "phrase": "person", "granularity": "instance",
          "operation": "modify", "references": [],
          "values": [{"text": "a woman in armour", "references": []},
                     {"text": "an old man in a suit", "references": []}]},
         {"name": "low camera angle", "phrase": "low camera angle", "granularity": "imagery",
          "operation": "keep", "references": [], "values": []},
         {"name": "background", "phrase": "background", "granularity": "imagery",
          "operation": "modify", "references": [],
          "values": [{"text": "city street background", "references": []},
                     {"text": "desert background", "references": []}]}]}),
    ("trigger: lumiere. Product shots of our perfume: the bottle shape and gold cap [1] must "
     "not change, the colour of the liquid should be adjustable, remove the price sticker "
     "[2].\nReference boxes: [1] on image 1, [2] on image 1.",
     {"trigger_words": ["lumiere"], "domain": "product", "unplaced": [], "concepts": [
         {"name": "bottle shape", "phrase": "bottle", "granularity": "attribute",
          "operation": "keep", "references": [], "values": []},
         {"name": "gold cap", "phrase": "gold cap", "granularity": "instance",
          "operation": "keep", "references": [1], "values": []},
         {"name": "liquid colour", "phrase": "liquid", "granularity": "attribute",
          "operation": "modify", "references": [],
          "values": [{"text": "amber liquid", "references": []},
                     {"text": "clear blue liquid", "references": []}]},
         {"name": "price sticker", "phrase": "price sticker", "granularity": "instance",
          "operation": "delete", "references": [2], "values": []}]}),
    ("Learn the style of these ink wash paintings: keep the loose brushwork and the muted "
     "palette, any subject.\nReference boxes: none.",
     {"trigger_words": ["ohwx"], "domain": "style", "unplaced": [], "concepts": [
         {"name": "ink wash painting style", "phrase": "ink wash painting style",
          "granularity": "imagery", "operation": "keep", "references": [], "values": []},
         {"name": "loose brushwork", "phrase": "loose brushwork", "granularity": "imagery",
          "operation": "keep", "references": [], "values": []},
         {"name": "muted palette", "phrase": "muted palette", "granularity": "imagery",
          "operation": "keep", "references": [], "values": []},
         {"name": "subject", "phrase": "subject", "granularity": "instance",
          "operation": "modify", "references": [],
          "values": [{"text": "mountain landscape", "references": []},
                     {"text": "bamboo grove", "references": []}]}]}),
]

_REPAIR = ("Your answer is not a valid intent: {errors}\nAnswer again with the corrected JSON "
           "object only.")


def parse_with_llm(description: str, references: Sequence[ReferenceBox], settings: ChatLLM,
                   mode: str = "auto") -> Intent:
    """Parse ``description`` with the LLM in ``settings`` (see the module docstring)."""
    if not description.strip():
        raise InputError("The intent description is empty.")
    messages = _messages(description, references)
    answer = _ask(settings, messages, mode)
    try:
        return _to_intent(answer, description, references, settings)
    except InputError as first:
        log.info("LLM answer invalid (%s); asking for a repair", str(first).splitlines()[0])
        messages += [{"role": "assistant", "content": answer},
                     {"role": "user", "content": _REPAIR.format(errors=first)}]
    answer = _ask(settings, messages, mode)
    try:
        return _to_intent(answer, description, references, settings)
    except InputError as second:
        raise LLMError(
            f"The LLM '{settings.model}' at {settings.base_url} answered with an invalid intent "
            f"twice (the second time after being shown its errors): {second}\nIts last answer "
            f"began: {answer[:300]!r}\nTry a stronger model, or disconnect the LLM to use the "
            "offline parser."
        ) from None


def _messages(description: str, references: Sequence[ReferenceBox]) -> list[dict]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for user, answer in _EXAMPLES:
        messages += [{"role": "user", "content": user},
                     {"role": "assistant", "content": json.dumps(answer)}]
    boxes = ", ".join(f"[{r.index}] on image {r.image + 1}" + (f" ('{r.label}')" if r.label
                                                                 else "")
                      for r in references) or "none"
    messages.append({"role": "user", "content": f"{description.strip()}\nReference boxes: "
                                                f"{boxes}."})
    return messages


def _ask(settings: ChatLLM, messages: list[dict], mode: str) -> str:
    return complete(settings, messages, schema=OUTPUT_SCHEMA, schema_name="intent", mode=mode)


def _to_intent(answer: str, description: str, references: Sequence[ReferenceBox],
               settings: ChatLLM) -> Intent:
    data = extract_json(answer)
    if not isinstance(data, dict):
        raise InputError("the answer is not a JSON object")
    missing = [k for k in OUTPUT_SCHEMA["required"] if k not in data]
    if missing:
        raise InputError(f"the answer lacks the field(s) {', '.join(missing)}")
    concepts = data["concepts"]
    if isinstance(concepts, list):  # anything else is reported by the schema validation
        for concept in concepts:
            if isinstance(concept, dict):
                concept.setdefault("source", "")
    return Intent.from_data({
        "description": description, "trigger_words": data["trigger_words"],
        "domain": data["domain"], "concepts": concepts,
        "references": [r.model_dump() for r in references],
        "unplaced": data["unplaced"], "notes": [], "parser": f"llm:{settings.model}",
    }, what="the LLM's intent")
