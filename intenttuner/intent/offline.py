"""The offline intent parser: a forgiving controlled language, no model needed.

It reads a description sentence by sentence and clause by clause:

- ``trigger: vincent`` / "a man called Vincent" → trigger word; ``domain: product`` → domain
  (otherwise guessed from the subject sentence and the kept concepts).
- a clause with a *delete* cue ("remove", "no", "never", "without"...), a *modify* cue ("change",
  "adjustable", "switch between"...) or a *keep* cue ("keep", "consistent", "the same"...) yields
  one concept per listed noun phrase ("keep his face and beard" → face, beard). Negation flips
  cues: "don't change his face" is keep, "don't remove the glasses" is keep too.
- values: "between A and B", "from A to B", "either A or B", "(A / B)", "such as A or B".
- ``[n]`` binds reference box n to the noun phrase or value just before it.

Nothing is dropped silently: a clause it cannot place goes to ``Intent.unplaced`` with the
reason, and every assumption (a default value, the default trigger) goes to ``Intent.notes``.

This module is the entry point and assembles the intent; the steps live beside it:
`sentences` (sentences and clauses), `cues` (which operation a clause asks for), `phrases`
(noun phrases, references and values), `classify` (granularity, detector phrase, default
values, domain) and `lexicon` (the word lists).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from . import lexicon as lx
from . import notes
from .classify import classify, complete_value, default_values, domain_from_name, guess_domain
from .cues import is_context, operation_of, subject_of
from .phrases import REFERENCE, Draft, concepts_in
from .schema import Domain, Intent, Operation, ReferenceBox
from .sentences import clauses, normalise, sentences

_DIRECTIVE = re.compile(r"\b(trigger words?|trigger|token|domain)\s*(?::|=|\bis\b)\s*",
                        re.IGNORECASE)
_TRIGGER_PHRASES = (r"\buse\s+[\"']?([\w\-]+)[\"']?\s+as\s+(?:the\s+|a\s+)?trigger",
                    r"\b(?:called|named|name is|known as)\s+(\"[^\"]+\"|'[^']+'|[\w\-]+)")


@dataclass
class _State:
    """What the sentences read so far have established."""

    triggers: list[str] = field(default_factory=list)
    domain: Domain | None = None  # set by "domain: ..."
    drafts: list[Draft] = field(default_factory=list)
    context: list[str] = field(default_factory=list)  # clauses saying who/what is trained
    unplaced: list[str] = field(default_factory=list)  # "<clause> (<why>)"


def parse_offline(description: str, references: Sequence[ReferenceBox] = ()) -> Intent:
    """Parse ``description`` into a validated Intent (see the module docstring)."""
    text = normalise(description)
    if not text:
        raise InputError("The intent description is empty. Describe what to keep, change and "
                         "remove, e.g. 'Keep his face. Hair colour adjustable. No necklace.'")
    state = _State()
    for sentence in sentences(text):
        _parse_sentence(sentence, state)
    return _build(description, references, state)


def _parse_sentence(sentence: str, state: _State) -> None:
    sentence = _directive(sentence, state)
    if not sentence:
        return
    _infer_trigger(sentence, state)
    previous = ""  # the last concept named in this sentence, for "its colour"
    for clause in clauses(sentence):
        operation = operation_of(clause)
        if operation is None:
            if is_context(clause):
                state.context.append(clause)
                # "Train the model on the superhero landing pose [1]": the referenced subject
                # itself is what the trigger word must absorb.
                if REFERENCE.search(clause):
                    state.drafts += concepts_in(subject_of(clause), Operation.KEEP, sentence,
                                                previous)
            else:
                state.unplaced.append(f"{clause} (no keep / change / remove word found)")
            continue
        drafts = concepts_in(clause, operation, sentence, previous)
        if not drafts:
            state.unplaced.append(f"{clause} (found nothing to {operation.value})")
        state.drafts.extend(drafts)
        previous = drafts[-1].name if drafts else previous


def _directive(sentence: str, state: _State) -> str:
    """Apply "trigger: x" / "domain: y" anywhere in the sentence; return what is left."""
    found = list(_DIRECTIVE.finditer(sentence))
    if not found:
        return sentence
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(sentence)
        key, value = match.group(1).lower(), sentence[match.end():end].strip(" ,;\"'")
        if key == "domain":
            state.domain = domain_from_name(value)
        else:
            state.triggers += [w.strip(" \"'") for w in re.split(r",|/|\band\b", value)
                               if w.strip(" \"'")]
    return sentence[:found[0].start()].strip(" ,;")


def _infer_trigger(sentence: str, state: _State) -> None:
    """"use X as the trigger" / "a man called X": X, unless a trigger is already known."""
    for pattern in _TRIGGER_PHRASES:
        match = re.search(pattern, sentence, flags=re.IGNORECASE)
        if match and not state.triggers:
            state.triggers.append(match.group(1).strip("\"'"))
            return


def _build(description: str, references: Sequence[ReferenceBox], state: _State) -> Intent:
    found: list[str] = []
    triggers = state.triggers
    if not triggers:
        triggers = [lx.DEFAULT_TRIGGER]
        found.append(notes.no_trigger(lx.DEFAULT_TRIGGER))
    concepts = [_concept(d, found) for d in _merge(state.drafts)]
    domain = state.domain or guess_domain(state.context, concepts, description)
    used = {n for c in concepts for n in c["references"] + [r for v in c["values"]
                                                            for r in v["references"]]}
    found += [notes.unbound_reference(ref.index) for ref in references if ref.index not in used]
    return Intent.from_data({
        "description": description, "trigger_words": triggers, "domain": domain.value,
        "concepts": concepts, "references": [r.model_dump() for r in references],
        "unplaced": state.unplaced, "notes": found, "parser": "offline",
    }, what="the parsed intent")


def _merge(drafts: list[Draft]) -> list[Draft]:
    """One draft per (name, operation): repeated mentions add references and values."""
    merged: dict[tuple[str, Operation], Draft] = {}
    for d in drafts:
        key = (d.name, d.operation)
        if key not in merged:
            merged[key] = d
            continue
        kept = merged[key]
        kept.references += [r for r in d.references if r not in kept.references]
        kept.values += [v for v in d.values if v[0] not in {k for k, _ in kept.values}]
    return list(merged.values())


def _concept(draft: Draft, found: list[str]) -> dict:
    """The concept's JSON data; a modify concept without values gets defaults (noted)."""
    granularity, phrase = classify(draft.name)
    values = [{"text": complete_value(t, granularity, phrase), "references": r}
              for t, r in draft.values]
    if draft.operation is Operation.MODIFY and not values:
        defaults = default_values(draft.name, phrase)
        if defaults:
            values = [{"text": t, "references": []} for t in defaults]
            found.append(notes.assumed_values(draft.name, defaults))
        else:
            found.append(notes.no_values(draft.name))
    return {"name": draft.name, "phrase": phrase, "granularity": granularity.value,
            "operation": draft.operation.value, "references": draft.references,
            "values": values, "source": draft.source}
