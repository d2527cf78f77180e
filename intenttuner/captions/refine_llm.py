"""The LLM caption refiner: an OpenAI-compatible endpoint (or a local model, Load Local LLM)
rewrites captions under the intent's rules, and the same checks as the offline refiner's judge
every answer.

Jobs go in batches (one request per batch, not per item). The system prompt states the rules
explicitly — trigger words first and exactly as given; the delete concepts (and what was painted
out of an item) never mentioned; the keep concepts, with their terms, not described (the trigger
absorbs them); each modify concept the item shows described with its state; a crop merged with
its source image's caption and framed as "close-up of the <phrase>"; short comma-separated
phrases — and the user message is the batch as JSON items. The answer is structured output
(`llm_chat.complete`): ``{"captions": [{"id", "caption"}]}``.

Every caption is checked with `check_caption`; an item whose caption fails (or is missing) gets
exactly one repair request, listing only the failed items with their problems. What fails again
falls back to `refine_offline` with a warning; so does a whole batch when the endpoint fails
(unreachable, timeout, HTTP error, refusal, unusable JSON twice): the captions stage never fails
because the LLM did. A passing caption is split into phrases ranked by `score_parts`, so the
token limit shortens it phrase by phrase like an offline one.
"""

from __future__ import annotations

import json
import logging

from ..errors import InputError, LLMError, LLMUnavailableError
from ..intent.schema import Intent, Operation
from ..llm_chat import ChatLLM, complete, extract_json
from .checks import check_caption, known_states
from .job import FRAMING, CaptionJob, Part, Refined
from .refine_offline import FRAMED, refine_offline, score_parts
from .rules import CaptionRules, ConceptTerms
from .text import Phrase, normalise, split_phrases, strip_close_up, words

log = logging.getLogger(__name__)

MAX_WORDS = 60  # asked of the LLM; the token limit is enforced later (`tokens.fit_tokens`)
OUTPUT_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["captions"],
    "properties": {"captions": {"type": "array", "items": {
        "type": "object", "additionalProperties": False, "required": ["id", "caption"],
        "properties": {"id": {"type": "string"}, "caption": {"type": "string"}}}}},
}
_REPAIR = ("{unusable}These captions break the rules. Write only these items again, fixing the "
           "problems listed for each id, and answer with the JSON object {{\"captions\": "
           "[{{\"id\", \"caption\"}}]}} for these ids only:\n{fix}")


def refine_with_llm(jobs: list[CaptionJob], rules: CaptionRules, settings: ChatLLM, *,
                    intent_summary: str, batch_size: int = 8, mode: str = "auto"
                    ) -> list[Refined]:
    """One `Refined` per job, in order (see the module docstring). ``intent_summary`` is a
    short text of the intent for the prompt (`summarise_intent`)."""
    if batch_size < 1:
        raise InputError(f"LLM caption batch_size {batch_size} must be 1 or more.")
    system = system_prompt(rules, intent_summary)
    refined: list[Refined] = []
    unavailable: LLMUnavailableError | None = None
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        if unavailable is None:
            try:
                refined += _refine_batch(batch, rules, settings, system, mode)
                continue
            except LLMUnavailableError as exc:  # asking again would only wait out a timeout
                log.warning("LLM unavailable, the offline rules caption the remaining %d "
                            "item(s): %s", len(jobs) - start, exc)
                unavailable = exc
        refined += [_offline(job, rules, f"the LLM could not caption this item ({unavailable}); "
                                         "used the offline rules") for job in batch]
    return refined


def summarise_intent(intent: Intent, limit: int = 600) -> str:
    """The intent in a few lines for the caption prompt: the subject and the user's words."""
    description = " ".join(intent.description.split())
    if len(description) > limit:
        description = description[:limit].rsplit(" ", 1)[0] + " ..."
    return (f"The model learns a {intent.domain.value} subject summoned by the trigger words "
            f"'{', '.join(intent.trigger_words)}'. The user asked for: \"{description}\"")


def system_prompt(rules: CaptionRules, intent_summary: str) -> str:
    """The explicit caption rules for this intent."""
    trigger = rules.trigger
    lines = [
        "You write the captions of a training set for fine-tuning a text-to-image model. "
        + intent_summary.strip(),
        "",
        "Rules for every caption:",
        f"- Begin with the trigger words exactly as given: \"{trigger}\", then a comma. Never "
        "translate, respell or recase them; keep non-ASCII letters as they are.",
        "- Never mention anything an item lists under \"removed\": it was painted out of that "
        "image.",
    ]
    deleted = rules.by_operation(Operation.DELETE)
    if deleted:
        lines.append("- Never mention these, not even as absent (\"no necklace\" is a mention): "
                     + "; ".join(_listed(c) for c in deleted) + ".")
    kept = rules.by_operation(Operation.KEEP)
    if kept:
        lines.append("- Do not describe these nor their parts (the trigger words absorb "
                     "whatever the caption leaves unsaid): " + "; ".join(_listed(c) for c in kept)
                     + ".")
    modified = rules.by_operation(Operation.MODIFY)
    if modified:
        lines.append("- Describe each of these that the item shows, with its state, in a phrase "
                     "that names it (use the item's known_states when it has them): "
                     + "; ".join(f"{c.name} (states such as "
                                 + ", ".join(f"'{v}'" for v in c.values) + ")"
                                 if c.values else c.name for c in modified) + ".")
    framed = [c for c in rules.concepts if c.operation is not Operation.DELETE]
    lines += [
        "- An item of kind \"crop of <concept>\" is a close-up cut from a larger image: right "
        "after the trigger words write its framing ("
        + "; ".join(f"crop of {c.name}: \"{FRAMING.format(phrase=c.phrase or c.name)}\""
                    for c in framed)
        + "), then merge its caption with its source_caption, keeping only what the crop shows.",
        "- Write short comma-separated phrases (\"a man\", \"black leather jacket\", \"standing "
        "on a street\"): no sentences, nothing about \"the image\" or \"the photo\"; at most "
        f"{MAX_WORDS} words.",
        "",
        "The user sends {\"items\": [...]}, each with an id, its kind (\"whole image\" or \"crop "
        "of <concept>\"), the captioner's caption, the source_caption of a crop's image, the "
        "known_states of modify concepts, and what was removed. Answer with one JSON object and "
        "nothing else: {\"captions\": [{\"id\": \"<the item's id>\", \"caption\": \"...\"}]}, one "
        "entry per item.",
    ]
    return "\n".join(lines)


def job_item(item_id: str, job: CaptionJob) -> dict:
    """How one job is shown to the LLM."""
    return {"id": item_id, "kind": f"crop of {job.concept}" if job.is_crop else "whole image",
            "caption": job.own, "source_caption": job.source if job.is_crop else None,
            "known_states": known_states(job), "removed": list(job.removed)}


def _listed(concept: ConceptTerms) -> str:
    terms = sorted({" ".join(t) for t in concept.terms} - {concept.name})  # a stable prompt
    return f"{concept.name} (also: {', '.join(terms)})" if terms else concept.name


def _refine_batch(batch: list[CaptionJob], rules: CaptionRules, settings: ChatLLM,
                  system: str, mode: str) -> list[Refined]:
    jobs = {str(i + 1): job for i, job in enumerate(batch)}
    items = {"items": [job_item(i, job) for i, job in jobs.items()]}
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": json.dumps(items, ensure_ascii=False)}]
    try:
        answer = _ask(settings, messages, mode)
        captions, problems, unusable = _read(answer, jobs, rules)
        first_problems = dict(problems)
        if problems:
            log.info("LLM captions failed the checks for %d of %d item(s); asking for a repair",
                     len(problems), len(jobs))
            fix = [{"id": i, "problems": p} for i, p in problems.items()]
            messages += [{"role": "assistant", "content": answer},
                         {"role": "user", "content": _REPAIR.format(
                             unusable=f"Your answer could not be used: {unusable}. " if unusable
                             else "", fix=json.dumps({"fix": fix}, ensure_ascii=False))}]
            answer = _ask(settings, messages, mode)
            again, problems, still = _read(answer, {i: jobs[i] for i in problems}, rules)
            if unusable and still:
                raise LLMError(
                    f"The LLM '{settings.model}' at {settings.base_url} answered with unusable "
                    f"JSON twice (the second time after being shown the error): {still}. Its "
                    f"last answer began: {answer[:200]!r}")
            if still:  # the repair was unusable: each failed item keeps its first problems
                problems = {i: [*first_problems[i], f"then {still}"] for i in problems}
            captions.update(again)
    except LLMUnavailableError:
        raise
    except LLMError as exc:
        log.warning("LLM captions for %d item(s) failed, using the offline rules: %s",
                    len(batch), exc)
        return [_offline(job, rules, f"the LLM could not caption this item ({exc}); used the "
                                     "offline rules") for job in batch]
    return [_from_llm(captions[i], job, rules, settings, first_problems.get(i))
            if i in captions else
            _offline(job, rules, "the LLM's caption failed the checks twice ("
                     + "; ".join(problems[i]) + "); used the offline rules")
            for i, job in jobs.items()]


def _ask(settings: ChatLLM, messages: list[dict], mode: str) -> str:
    return complete(settings, messages, schema=OUTPUT_SCHEMA, schema_name="captions", mode=mode)


def _read(answer: str, jobs: dict[str, CaptionJob], rules: CaptionRules
          ) -> tuple[dict[str, str], dict[str, list[str]], str | None]:
    """The captions that pass (id -> caption), the problems of the others (id -> problems), and
    why the whole answer is unusable (None when it is not)."""
    try:
        data = extract_json(answer)
    except InputError as exc:
        return {}, {i: [str(exc)] for i in jobs}, str(exc)
    entries = data.get("captions") if isinstance(data, dict) else data  # a bare list will do
    if not isinstance(entries, list):
        why = "the answer is not a JSON object {\"captions\": [...]}"
        return {}, {i: [why] for i in jobs}, why
    answered: dict[str, object] = {}
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("id")) in jobs:
            answered.setdefault(str(entry["id"]), entry.get("caption"))
    captions: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for i, job in jobs.items():
        caption = answered.get(i)
        if i not in answered:
            problems[i] = ["the answer has no caption for this id"]
        elif not isinstance(caption, str) or not caption.strip():
            problems[i] = ["the caption is empty or not text"]
        else:
            caption = normalise(caption)
            found = check_caption(caption, job, rules)
            if found:
                problems[i] = found
            else:
                captions[i] = caption
    return captions, problems, None


def _from_llm(caption: str, job: CaptionJob, rules: CaptionRules, settings: ChatLLM,
              repaired: list[str] | None) -> Refined:
    """A passing caption as ranked parts after the trigger (the crop's framing first)."""
    refined = Refined(rules.trigger, refiner=f"llm:{settings.model}",
                      notes=["written by the LLM"])
    if repaired:
        refined.notes.append("the LLM rewrote it once after the checks found: "
                             + "; ".join(repaired))
    phrases = split_phrases(caption[len(rules.trigger):])
    concept = rules.concept(job.concept) if job.is_crop and job.concept else None
    if job.is_crop and job.concept:
        phrases = [p for p in (_unframed(p, concept) for p in phrases) if p is not None]
        if phrases:
            phrases[0] = Phrase(phrases[0].text, 0, 0)  # the subject leads once framed
    refined.parts = score_parts(phrases, job, rules, refined.notes)
    if job.is_crop and job.concept:
        phrase = concept.phrase if concept else job.concept
        refined.parts.insert(0, Part(FRAMING.format(phrase=phrase), FRAMED))
    return refined


def _unframed(phrase: Phrase, concept: ConceptTerms | None) -> Phrase | None:
    """A crop's phrase without a close-up framing; None when it was the framing alone (the
    canonical framing is put first instead)."""
    text = strip_close_up(phrase.text)
    if text == phrase.text:
        return phrase
    text_words = words(text)
    if not text_words or (concept is not None and concept.mentioned_in(text_words)
                          and not concept.attribute_words(text_words)):
        return None
    return Phrase(text, phrase.sentence, phrase.position)


def _offline(job: CaptionJob, rules: CaptionRules, warning: str) -> Refined:
    refined = refine_offline(job, rules)
    refined.warnings.append(warning)
    return refined
