"""The notes an intent carries (``Intent.notes``): what a parser assumed or could not do.

Every note is written here, so the texts stay uniform and the edit step can tell which notes an
edit made untrue: `after_edit` drops, for instance, "'hair colour': no values given; assuming
..." once an Intent Edit gives the hair colour its own values, and adds "no values" when an edit
leaves a modify concept without any. Notes about a concept start with ``'<name>': ``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .schema import Concept, Domain, Intent, Operation

_NO_TRIGGER = "No trigger word given"
_UNBOUND = re.compile(r"^Reference box \[(\d+)\] is not bound")
_DOMAIN = re.compile(r"^'.*' (?:read as domain|is not a domain)")  # what a domain edit undoes
_ABSORBED = "The trigger word "
_ENGLISH_ONLY = "The offline parser reads English only"
_CONNECT_LLM = "Connect an LLM (LLM Settings) to parse it, or write it in English."


def no_trigger(default: str) -> str:
    return (f"{_NO_TRIGGER}; using '{default}'. Write 'trigger: <word>', or name the subject "
            "('a man called Vincent', 'my dog Rex'), to choose one.")


def not_english(language: str) -> str:
    return f"{_ENGLISH_ONLY}; this description looks like {language}. {_CONNECT_LLM}"


def foreign_sentences(language: str, count: int) -> str:
    which = "this sentence looks" if count == 1 else f"these {count} sentences look"
    return (f"{_ENGLISH_ONLY}; {which} like {language} and {'was' if count == 1 else 'were'} "
            f"not parsed (see the unplaced list). {_CONNECT_LLM}")


def foreign_reason(language: str) -> str:
    """Why foreign text is unplaced (the part of an unplaced entry in brackets)."""
    return (f"looks like {language}; the offline parser reads English only: connect an LLM "
            "(LLM Settings) or write it in English")


def foreign_parts(language: str, count: int) -> str:
    which = "a part of a sentence looks" if count == 1 else f"{count} parts of sentences look"
    return (f"{_ENGLISH_ONLY}; {which} like {language} and {'was' if count == 1 else 'were'} "
            f"not parsed (see the unplaced list). {_CONNECT_LLM}")


def directive_remark(text: str, key: str) -> str:
    what = "domain" if key == "domain" else "trigger word"
    return f"'{text}' is read as a remark about the {what}, not as the {what} itself."


def subject_not_deleted(triggers: Iterable[str], source: str) -> str:
    words = ", ".join(f"'{t}'" for t in triggers)
    return (f"{_ABSORBED}{words} learns the named subject itself, so '{source}' removes no "
            "concept: the subject cannot be taken out of its own pictures.")


# Why a part of the description is unplaced (the part of an unplaced entry in brackets).
NO_CUE = "no keep / change / remove word found"
NOTHING_FOUND = ("no concept to keep, change or remove found in the whole description; name "
                 "one, e.g. 'keep the face' or 'no hat'")


def clash_reason(name: str, operation: str) -> str:
    return (f"'{name}' is also to {operation} in an earlier part; say which one you mean, e.g. "
            f"'the other {name}'")


def domain_read_as(value: str, domain: Domain, why: str = "") -> str:
    return f"'{value}' read as domain {domain.value}{f' ({why})' if why else ''}."


def unknown_domain(value: str, guessed: Domain) -> str:
    known = ", ".join(d.value for d in Domain)
    return (f"'{value}' is not a domain IntentTuner knows ({known}); using {guessed.value}, "
            "guessed from the description. Write 'domain: <one of those>' to choose.")


def subject_absorbed(triggers: Iterable[str], source: str) -> str:
    words = ", ".join(f"'{t}'" for t in triggers)
    return (f"{_ABSORBED}{words} learns the named subject itself, so '{source}' adds no "
            "concept of its own.")


def assumed_values(name: str, values: Iterable[str]) -> str:
    return f"'{name}': no values given; assuming {' / '.join(values)} for captions and probes."


def no_values(name: str) -> str:
    return (f"'{name}': no values given, so it cannot be probed. Add some, e.g. "
            f"'{name} (A / B)'.")


def unbound_reference(n: int) -> str:
    return (f"Reference box [{n}] is not bound to any concept; write [{n}] after the concept it "
            "shows.")


def llm_fallback(model: str, base_url: str, error: str) -> str:
    return (f"The LLM '{model}' at {base_url} failed, so the offline parser was used instead. "
            f"The LLM's error: {error}")


def after_edit(before: Intent, after: Intent) -> list[str]:
    """``before``'s notes that still hold for the edited intent ``after``, then the notes the
    edit made true (a modify concept it left without values)."""
    old = {c.name: c for c in before.concepts}
    new = {c.name: c for c in after.concepts}
    bound = {n for c in after.concepts for n in c.all_references()}
    kept = []
    for note in before.notes:
        name = _concept_named(note, old)
        if name is not None and not _same_values(old[name], new.get(name)):
            continue  # the edit changed or removed what this note is about
        retriggered = after.trigger_words != before.trigger_words
        if (note.startswith(_NO_TRIGGER) or note.startswith(_ABSORBED)) and retriggered:
            continue
        if _DOMAIN.match(note) and after.domain is not before.domain:
            continue
        unbound = _UNBOUND.match(note)
        if unbound and (int(unbound.group(1)) in bound
                        or int(unbound.group(1)) > len(after.references)):
            continue
        kept.append(note)
    for concept in after.concepts:
        edited = not _same_values(old.get(concept.name), concept)
        if edited and concept.operation is Operation.MODIFY and not concept.values:
            kept.append(no_values(concept.name))
    return kept


def _concept_named(note: str, concepts: dict[str, Concept]) -> str | None:
    """The concept a note is about (the longest name it starts with), or None."""
    names = [n for n in concepts if note.startswith(f"'{n}': ")]
    return max(names, key=len, default=None)


def _same_values(a: Concept | None, b: Concept | None) -> bool:
    """Do ``a`` and ``b`` agree on what notes about a concept describe: operation and values?"""
    if a is None or b is None:
        return a is b
    return a.operation is b.operation and a.values == b.values
