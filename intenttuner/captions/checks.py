"""The checks every refined caption must pass, whoever wrote it (the LLM's answers are checked
with them, and the offline refiner is tested against them):

- the trigger words come first;
- no delete concept (nor one painted out of the item) is mentioned;
- no phrase describes a keep concept (the crop's framing "close-up of the face" only names it);
- every modify concept the item is known to show is mentioned with a state ("blonde hair").
"""

from __future__ import annotations

from ..intent.schema import Operation
from .job import FRAMING, CaptionJob
from .rules import CaptionRules
from .text import split_phrases, words


def check_caption(caption: str, job: CaptionJob, rules: CaptionRules,
                  known: dict[str, list[str]] | None = None) -> list[str]:
    """What is wrong with ``caption`` for ``job`` (empty when it passes).

    ``known``: modify concept -> states known for this item (a crop's detected value,
    the hints); a concept listed there must be described. Without it, the job's own value and
    hints are used.
    """
    problems: list[str] = []
    starts = begins_with_trigger(caption, rules)
    if not starts:
        problems.append(f"it must begin with the trigger '{rules.trigger}'")
    body = caption[len(rules.trigger):] if starts else caption
    phrases = [p.text for p in split_phrases(body)]
    framing = _framing(job, rules)
    removed = {name.lower() for name in job.removed}
    for concept in rules.concepts:
        about = [p for p in phrases if concept.mentioned_in(words(p))]
        if concept.operation is Operation.DELETE or concept.name in removed:
            if about:
                problems.append(f"it mentions '{concept.name}', which must never appear "
                                f"('{about[0]}')")
        elif concept.operation is Operation.KEEP:
            modify = rules.by_operation(Operation.MODIFY)
            described = [p for p in about if p.lower() != framing
                         and not any(m.mentioned_in(words(p)) for m in modify)]
            if described:
                problems.append(f"it describes the kept '{concept.name}' ('{described[0]}'), "
                                "which the trigger word should absorb")
    states = known if known is not None else known_states(job)
    for name in states:
        concept = rules.concept(name)
        if concept is None or concept.operation is not Operation.MODIFY:
            continue
        if not any(concept.attribute_words(words(p)) for p in phrases
                   if concept.mentioned_in(words(p))):
            problems.append(f"it must describe '{concept.name}' with its state (e.g. "
                            f"'{states[name][0]}')" if states[name] else
                            f"it must describe '{concept.name}' with its state")
    return problems


def known_states(job: CaptionJob) -> dict[str, list[str]]:
    """Modify concept -> the states known for this item: a crop's detected value, a whole
    image's hints. A concept listed here must be described."""
    if job.is_crop:
        return {job.concept: [job.value]} if job.concept and job.value else {}
    return {name: list(hints) for name, hints in job.hints.items() if hints}


def begins_with_trigger(caption: str, rules: CaptionRules) -> bool:
    """Does ``caption`` begin with the trigger words as a whole ("ohwxyz" is not "ohwx")?"""
    trigger = rules.trigger.lower()
    head = caption[:len(trigger)].lower()
    rest = caption[len(trigger):len(trigger) + 1]
    return head == trigger and (not rest or not (rest.isalnum() or rest in "_-'"))


def _framing(job: CaptionJob, rules: CaptionRules) -> str:
    if not job.is_crop or not job.concept:
        return ""
    concept = rules.concept(job.concept)
    return FRAMING.format(phrase=concept.phrase if concept else job.concept).lower()
