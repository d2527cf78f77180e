"""Turning a training set's items and their raw captions into `CaptionJob`s.

An item's job carries what the rules need beyond its own caption: for a crop, the caption of the
whole image it was cut from (its ``source_name``'s original item); for a whole image, what its
crops know about each modify concept (the value detection matched for a crop, and the phrases of
the crops' captions that describe the concept), because a small concept ("hair" in a full-body
shot) is often missed by the captioner at full size but seen in the close-up.
"""

from __future__ import annotations

from ..augment.types import ORIGINAL_GROUP
from ..dataset.training_set import TrainingItem, TrainingSet
from ..intent.schema import Operation
from .job import CaptionJob
from .rules import CaptionRules, ConceptTerms
from .text import collapse_repeats, normalise, split_phrases, strip_close_up, words


def build_jobs(training_set: TrainingSet, items: list[TrainingItem], raw: dict[str, str],
               rules: CaptionRules) -> list[CaptionJob]:
    """One job per item of ``items``; ``raw`` maps every item's image path to its raw caption
    (items of the whole set, so sources and sibling crops are found)."""
    by_source: dict[str, list[TrainingItem]] = {}
    for item in training_set.items:
        if item.source_name is not None:
            by_source.setdefault(item.source_name, []).append(item)
    jobs = []
    for item in items:
        siblings = by_source.get(item.source_name, []) if item.source_name else []
        original = next((s for s in siblings if (s.operation or ORIGINAL_GROUP) == "original"),
                        None)
        operation = item.operation or "original"
        job = CaptionJob(key=item.image, operation=operation, concept=item.concept,
                         value=item.value, removed=list(item.removed),
                         own=raw.get(item.image, ""))
        if operation != "original" and original is not None:
            job.source = raw.get(original.image, "")
        if operation == "original":
            job.hints = _hints(siblings, raw, rules)
        jobs.append(job)
    return jobs


def _hints(siblings: list[TrainingItem], raw: dict[str, str],
           rules: CaptionRules) -> dict[str, list[str]]:
    """Modify concept -> states its crops in this source image show."""
    hints: dict[str, list[str]] = {}
    for crop in siblings:
        concept = rules.concept(crop.concept)
        if concept is None or concept.operation is not Operation.MODIFY:
            continue
        found = hints.setdefault(concept.name, [])
        if crop.value and crop.value not in found:
            found.append(crop.value)
        text, _ = collapse_repeats(normalise(raw.get(crop.image, "")))
        for phrase in split_phrases(text):
            described = concept.mentioned_in(phrase.words) and concept.attribute_words(
                phrase.words)
            state = _state_of(phrase.text, concept)
            if described and state not in found:
                found.append(state)
    return {name: states for name, states in hints.items() if states}


def _state_of(text: str, concept: ConceptTerms) -> str:
    """A crop caption's phrase as a state: the concept's noun phrase in it ("with long blonde
    hair" -> "long blonde hair"; "a close up of a person's blonde hair" -> "blonde hair"), so
    the crop's framing and owner do not end up in the whole image's caption."""
    text = strip_close_up(text) or text
    tokens, lower = text.split(), words(text)
    found = concept.locate(lower) if len(tokens) == len(lower) else None
    if found and concept.attribute_words(lower[found[0]:found[2]]):
        return " ".join(tokens[found[0]:found[2]])
    first = lower[0] if lower else ""
    if first in ("with", "wearing", "has", "having"):
        return text.split(" ", 1)[1] if " " in text else text
    return text
