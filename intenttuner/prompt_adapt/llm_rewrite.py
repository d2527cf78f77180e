"""Prompt adaptation by an LLM: an OpenAI-compatible endpoint or a local model (Load Local LLM)
rewrites plain prompts for Stable Diffusion, told the intent's rules explicitly.

Prompts go in batches (one request per batch): the user message is ``{"prompts": [...]}`` and
the answer is structured output (`llm_chat.complete`), ``{"prompts": [...]}`` with as many
strings as were sent, in the same order. The order is all that ties an answer to its prompt,
so an answer with another count cannot be used: it (or one that is not JSON) gets exactly one
repair request, and when the repair is unusable too the batch's rewrites are None; the caller
keeps those plain prompts and says why. Endpoint failures (`LLMError`) propagate: adapting is
what the user asked for, and silently returning the plain prompts would hide a dead server.

Whether a rewrite keeps the intent is not judged here but by `preserve.check_rewrite`, the same
judge as for Promptist's rewrites.
"""

from __future__ import annotations

import json
import logging

from ..captions.rules import CaptionRules, ConceptTerms
from ..errors import InputError
from ..intent.schema import Operation
from ..llm_chat import ChatLLM, complete, extract_json
from ..runtime import get_runtime

log = logging.getLogger(__name__)

MAX_WORDS = 60  # asked of the LLM: CLIP reads 75 tokens, about 60 words of prompt
OUTPUT_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["prompts"],
    "properties": {"prompts": {"type": "array", "items": {"type": "string"}}},
}
_REPAIR = ("Your answer could not be used: {why}. Answer again with only the JSON object "
           "{{\"prompts\": [...]}} holding exactly {count} rewritten prompt(s), one string per "
           "prompt I sent, in the same order.")


def rewrite_with_llm(prompts: list[str], llm: ChatLLM, rules: CaptionRules | None, *,
                     batch_size: int = 8, reasons: dict[int, str] | None = None
                     ) -> list[str | None]:
    """One rewrite per prompt, in order; None for the prompts of a batch whose answers were
    unusable twice. ``reasons``, when given, receives 0-based index -> why for each None (the
    caller's note to the user). ``rules``: the intent's, or None for no intent."""
    if batch_size < 1:
        raise InputError(f"LLM prompt batch_size {batch_size} must be 1 or more.")
    system = system_prompt(rules)
    runtime = get_runtime()
    rewrites: list[str | None] = []
    with runtime.progress(len(prompts), "Adapting prompts (LLM)") as bar:
        for start in range(0, len(prompts), batch_size):
            runtime.check_interrupted()
            batch = prompts[start:start + batch_size]
            answer, why = _rewrite_batch(batch, llm, system)
            if answer is None:
                log.warning("the LLM's answers for prompts %d-%d were unusable twice (%s); "
                            "their plain prompts are kept", start + 1, start + len(batch), why)
                if reasons is not None:
                    reasons.update({start + i: why for i in range(len(batch))})
                rewrites += [None] * len(batch)
            else:
                rewrites += answer
            bar.update(len(batch))
    return rewrites


def system_prompt(rules: CaptionRules | None) -> str:
    """The explicit rewriting rules, with the intent's trigger words and concepts."""
    lines = [
        "You rewrite plain prompts for Stable Diffusion, a text-to-image model, into prompts it "
        "renders well.",
        "",
        "Rules for every rewrite:",
        "- Begin with the prompt's subject, as the prompt states it; then add style, lighting, "
        "composition and quality descriptors (\"soft studio lighting\", \"highly detailed\", "
        "\"sharp focus\").",
        "- Keep every subject word and every stated attribute (colours, materials, counts, "
        "actions, places): add detail, never drop or change what the prompt says.",
    ]
    if rules is not None:
        lines.append("- Keep these trigger words verbatim wherever a prompt has them: "
                     + ", ".join(f"\"{t}\"" for t in rules.trigger_words)
                     + ". Never translate, respell or recase them, nor add them to a prompt "
                     "that lacks them.")
        deleted = rules.by_operation(Operation.DELETE)
        if deleted:
            lines.append("- Never add these, nor anything of the kind (not even as absent: "
                         "\"no necklace\" adds it): " + "; ".join(_listed(c) for c in deleted)
                         + ".")
        kept = [c for c in rules.concepts if c.operation is not Operation.DELETE]
        if kept:
            lines.append("- Where a prompt mentions one of these, keep it with the attributes "
                         "the prompt gives it (\"blonde hair\" stays \"blonde hair\", never "
                         "another colour): " + "; ".join(_listed(c) for c in kept) + ".")
    lines += [
        "- Write English, whatever the prompt's language: translate it"
        + (" (but not the trigger words)." if rules is not None else "."),
        f"- Each rewrite is one line of comma-separated phrases, at most {MAX_WORDS} words: no "
        "sentences about \"the image\", no explanations, no quotes, no negative prompt.",
        "",
        "The user sends {\"prompts\": [...]}. Answer with one JSON object and nothing else: "
        "{\"prompts\": [\"...\", ...]}, exactly one rewrite per prompt, in the same order.",
    ]
    return "\n".join(lines)


def _listed(concept: ConceptTerms) -> str:
    """A concept with its other terms and states, so the LLM knows its synonyms too."""
    terms = sorted({" ".join(t) for t in concept.terms} - {concept.name})  # a stable prompt
    text = f"{concept.name} (also: {', '.join(terms)})" if terms else concept.name
    if concept.values:
        text += ", states such as " + ", ".join(f"'{v}'" for v in concept.values)
    return text


def _rewrite_batch(batch: list[str], llm: ChatLLM, system: str
                   ) -> tuple[list[str] | None, str]:
    """(the rewrites, "") or (None, why the answer was unusable even after one repair)."""
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": json.dumps({"prompts": batch},
                                                       ensure_ascii=False)}]
    answer = _ask(llm, messages)
    rewrites, why = _read(answer, len(batch))
    if rewrites is not None:
        return rewrites, ""
    log.info("the LLM's answer for %d prompt(s) is unusable (%s); asking for a repair",
             len(batch), why)
    messages += [{"role": "assistant", "content": answer},
                 {"role": "user", "content": _REPAIR.format(why=why, count=len(batch))}]
    rewrites, again = _read(_ask(llm, messages), len(batch))
    if rewrites is not None:
        return rewrites, ""
    return None, f"the LLM's answer was unusable twice: {why}, then {again}"


def _ask(llm: ChatLLM, messages: list[dict]) -> str:
    return complete(llm, messages, schema=OUTPUT_SCHEMA, schema_name="prompts")


def _read(answer: str, count: int) -> tuple[list[str] | None, str]:
    """(the rewrites, "") when ``answer`` holds ``count`` strings, else (None, why not)."""
    try:
        data = extract_json(answer)
    except InputError as exc:
        return None, str(exc)
    entries = data.get("prompts") if isinstance(data, dict) else data  # a bare list will do
    if not isinstance(entries, list):
        return None, "the answer is not a JSON object {\"prompts\": [...]}"
    if not all(isinstance(e, str) for e in entries):
        return None, "the answer's prompts are not all strings"
    if len(entries) != count:
        return None, f"it has {len(entries)} prompt(s) for the {count} sent"
    return [" ".join(e.split()) for e in entries], ""
