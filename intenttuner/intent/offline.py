"""The offline intent parser: a forgiving controlled language, no model needed.

It reads a description sentence by sentence and clause by clause:

- ``trigger: vincent`` → trigger word; otherwise a trigger phrasing ("use sks as the trigger")
  or the subject's name ("a man called Vincent", "my beagle Pepper", "Rex: ..."), see `names`.
  The named subject is what the trigger word learns, so it is not also a concept: "Keep
  Pepper's ears" is the concept "ears".
- ``domain: product`` or free text ("domain: anime OC", read by `domains` with a note; one it
  cannot place is guessed instead, never an error), else guessed from the subject sentence and
  the kept concepts.
- a clause with a *delete* cue ("remove", "no", "never", "without"...), a *modify* cue ("change",
  "adjustable", "switch between"...) or a *keep* cue ("keep", "consistent", "the same"...) yields
  one concept per listed noun phrase ("keep his face and beard" → face, beard). Negation flips
  cues: "don't change his face" is keep, "don't remove the glasses" is keep too.
- values: "between A and B", "from A to B", "either A or B", "(A / B)", "such as A or B".
- ``[n]`` binds reference box n to the noun phrase or value just before it; an ``[n]`` with no
  such box is an error.

It reads English only: a description (or a sentence) in another language is not read with
English word lists, which would make garbage concepts; it goes to ``unplaced`` with a note
suggesting the LLM (see `language`). Nothing is dropped silently: a clause it cannot place goes
to ``Intent.unplaced`` with the reason, and every assumption (a default value, the default
trigger, how a domain was read) goes to ``Intent.notes``.

This module is the entry point and assembles the intent; the steps live beside it:
`sentences` (sentences and clauses), `cues` (which operation a clause asks for), `phrases`
(noun phrases, references and values), `names` (the subject's name), `classify` (granularity,
detector phrase, default values, domain), `domains` (the user's domain words), `language`
(is it English) and `lexicon` (the word lists).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from . import lexicon as lx
from . import notes
from .classify import classify, complete_value, default_values, domain_from_name, guess_domain
from .cues import has_strong_cue, is_context, operation_of, subject_of
from .language import description_language, foreign_language
from .names import Name, absorb, cut_detached, names_in, only_common_words
from .phrases import REFERENCE, Draft, concepts_in
from .schema import Domain, Intent, Operation, ReferenceBox
from .sentences import clauses, normalise, sentences

_DIRECTIVE = re.compile(r"\b(trigger words?|trigger|token|domain)\s*(?::|=|\bis\b)\s*",
                        re.IGNORECASE)
# A foreign sentence this short may be a name or a quoted title: it is read as English.
_FOREIGN_SENTENCE_WORDS = 4


@dataclass
class _State:
    """What the sentences read so far have established."""

    triggers: list[str] = field(default_factory=list)  # from "trigger: ..."
    domain_text: str = ""  # what "domain: ..." said
    namings: list[Name] = field(default_factory=list)  # see names.names_in
    drafts: list[Draft] = field(default_factory=list)
    context: list[str] = field(default_factory=list)  # clauses saying who/what is trained
    unplaced: list[str] = field(default_factory=list)  # "<clause> (<why>)"
    foreign: list[str] = field(default_factory=list)  # the language of each foreign sentence


def parse_offline(description: str, references: Sequence[ReferenceBox] = ()) -> Intent:
    """Parse ``description`` into a validated Intent (see the module docstring)."""
    text = normalise(description)
    if not text:
        raise InputError("The intent description is empty. Describe what to keep, change and "
                         "remove, e.g. 'Keep his face. Hair colour adjustable. No necklace.'")
    _check_reference_numbers(text, references)
    state = _State()
    parts = sentences(text)
    language = description_language(parts)
    if language:  # read nothing with English word lists, lose nothing: all of it is unplaced
        for sentence in parts:
            _directive(sentence, state)
        state.unplaced.append(f"{text} ({notes.foreign_reason(language)})")
        return _build(description, references, state, [notes.not_english(language)])
    for i, sentence in enumerate(parts):
        _parse_sentence(sentence, state, first=i == 0)
    return _build(description, references, state, [])


def _check_reference_numbers(text: str, references: Sequence[ReferenceBox]) -> None:
    """Every [n] written must be a box: one bound to no concept (in a sentence nothing was read
    from) would otherwise vanish without a word."""
    for n in dict.fromkeys(int(m) for m in REFERENCE.findall(text)):
        if not 1 <= n <= len(references):
            exist = (f"only {len(references)} reference box(es) exist, [1] to "
                     f"[{len(references)}]" if references else "no reference boxes were given")
            raise InputError(f"The description refers to [{n}], but {exist}. Draw box {n} on a "
                             f"reference image, or take [{n}] out of the description.")


def _parse_sentence(sentence: str, state: _State, *, first: bool) -> None:
    sentence = _directive(sentence, state)
    if not sentence:
        return
    language = foreign_language(sentence, min_words=_FOREIGN_SENTENCE_WORDS)
    if language:
        state.unplaced.append(f"{sentence} ({notes.foreign_reason(language)})")
        state.foreign.append(language)
        return
    found = names_in(sentence, first=first)
    said, sentence = sentence, cut_detached(sentence, found)
    previous = ""  # the last concept named in this sentence, for "its colour"
    for clause in clauses(sentence):
        operation = operation_of(clause)
        if operation is Operation.DELETE:  # "Remove the Rolex watch": not the subject
            found = [n for n in found if n.names[0].lower() not in clause.lower()]
        if operation is None:
            # A clause of a sentence that names the subject describes it ("My beagle Pepper").
            if is_context(clause) or found:
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
    if found:
        state.namings += found
        state.context.append(said)  # it says who the subject is: domain evidence


def _directive(sentence: str, state: _State) -> str:
    """Apply "trigger: x" / "domain: y" anywhere in the sentence; return what is left. A value
    ends where an instruction starts ("trigger: zara, keep her face")."""
    found = [m for m in _DIRECTIVE.finditer(sentence) if not _remark(m, sentence)]
    if not found:
        return sentence
    left = [sentence[:found[0].start()].strip(" ,;")]
    if only_common_words(left[0]):
        left = []  # "The trigger: x" leaves no clause behind
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(sentence)
        key = match.group(1).lower()
        # "domain: pose/action" is one domain; "trigger: pepper/salt" two trigger words
        separators = r"[,;]" if key == "domain" else r",|;|/|\band\b"
        value, rest = _split_value(sentence[match.end():end], separators)
        left.append(rest)
        if key == "domain":
            state.domain_text = value.strip(" ,;\"'")
        else:
            state.triggers += [w.strip(" \"'") for w in re.split(separators, value)
                               if w.strip(" \"'")]
    return ", ".join(p for p in left if p)


def _remark(match: re.Match, sentence: str) -> bool:
    """"The default trigger is fine": "is" followed by ordinary words is a remark about the
    trigger, not a directive naming it."""
    if not match.group(0).rstrip().lower().endswith("is"):
        return False
    value = re.split(r"[,;.]", sentence[match.end():], maxsplit=1)[0]
    return only_common_words(value)


def _split_value(text: str, separators: str) -> tuple[str, str]:
    """(the directive's value, the instruction after it): the value ends before the first part
    that holds an operation cue."""
    parts = re.split(f"({separators})", text)
    for i in range(0, len(parts), 2):
        if has_strong_cue(parts[i]):
            return "".join(parts[:max(i - 1, 0)]), "".join(parts[i:]).strip(" ,;")
    return text, ""


def _build(description: str, references: Sequence[ReferenceBox], state: _State,
           found: list[str]) -> Intent:
    subject = _subject(state)
    triggers = state.triggers or list(subject[0].names if subject else ())
    if not triggers:
        triggers = [lx.DEFAULT_TRIGGER]
        found.append(notes.no_trigger(lx.DEFAULT_TRIGGER))
    if state.foreign:
        found.append(notes.foreign_sentences(state.foreign[0], len(state.foreign)))
    names = [*state.triggers, *(n for s in subject for n in s.names)]
    drafts = _absorb_subject(state.drafts, names, [s.noun for s in subject if s.noun],
                             triggers, found)
    concepts = [_concept(d, found) for d in _merge(drafts)]
    domain = _domain(state, concepts, description, subject, found)
    used = {n for c in concepts for n in c["references"] + [r for v in c["values"]
                                                            for r in v["references"]]}
    found += [notes.unbound_reference(ref.index) for ref in references if ref.index not in used]
    return Intent.from_data({
        "description": description, "trigger_words": triggers, "domain": domain.value,
        "concepts": concepts, "references": [r.model_dump() for r in references],
        "unplaced": state.unplaced, "notes": found, "parser": "offline",
    }, what="the parsed intent")


def _subject(state: _State) -> list[Name]:
    """The namings of the subject: the first trigger phrasing and the first name (the trigger
    is the phrasing's word, else that name). Later names are other people or things ("her
    sister Yumi should not appear") and stay concepts."""
    explicit = [n for n in state.namings if n.explicit]
    named = [n for n in state.namings if not n.explicit]
    return explicit[:1] + named[:1]


def _absorb_subject(drafts: list[Draft], names: list[str], nouns: list[str],
                    triggers: list[str], found: list[str]) -> list[Draft]:
    """The drafts without the named subject (see names.absorb). A draft that was only the
    subject is dropped (noted), unless a box is bound to it: then it is the subject's noun."""
    kept = []
    for draft in drafts:
        name = absorb(draft.name, names, nouns)
        if not name and not draft.references:
            note = notes.subject_absorbed(triggers, draft.source)
            found += [] if note in found else [note]
            continue
        draft.name = name or (nouns[0].lower() if nouns else draft.name)
        kept.append(draft)
    return kept


def _domain(state: _State, concepts: list[dict], description: str, subject: list[Name],
            found: list[str]) -> Domain:
    """The domain written after "domain:" (read through `domains`), else the guess."""
    named = any(not n.explicit for n in state.namings)
    if state.domain_text:
        domain, note = domain_from_name(state.domain_text, named=named)
        if domain is not None:
            found += [note] if note else []
            return domain
    guessed = guess_domain(state.context, concepts, description, named=named,
                           subject_nouns=tuple(n.noun for n in subject if n.noun))
    if state.domain_text:
        found.append(notes.unknown_domain(state.domain_text, guessed))
    return guessed


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
