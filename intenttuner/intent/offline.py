"""The offline intent parser: a forgiving controlled language, no model needed.

It reads a description sentence by sentence and clause by clause:

- ``trigger: vincent`` → trigger word (see `directives`); otherwise a trigger phrasing ("use
  sks as the trigger") or the subject's name ("a man called Vincent", "my beagle Pepper", "Rex:
  ..."), see `names`. The named subject is what the trigger word learns, so it is not also a
  concept: "Keep Pepper's ears" is the concept "ears", "my dog Rex never wears a collar" removes
  the collar, and nothing ever removes the subject itself.
- ``domain: product`` or free text ("domain: anime OC", read by `domains` with a note; one it
  cannot place is guessed instead, never an error), else guessed from the subject sentence and
  the kept concepts. A leading label ("Note:", "Goal -") is cut.
- a clause with a *delete* cue ("remove", "no", "never", "without"...), a *modify* cue ("change",
  "adjustable", "switch between"...) or a *keep* cue ("keep", "consistent", "the same"...) yields
  one concept per listed noun phrase ("keep his face and beard" → face, beard). Negation flips
  cues: "don't change his face" is keep, "don't remove the glasses" is keep too.
- values: "between A and B", "from A to B", "either A or B", "(A / B)", "such as A or B".
- ``[n]`` binds reference box n to the noun phrase or value just before it; an ``[n]`` with no
  such box is an error.

It reads English only: a description, a sentence or a part of one in another language is not
read with English word lists, which would make garbage concepts; it goes to ``unplaced`` with a
note suggesting the LLM (see `language`). Nothing is dropped silently: a clause it cannot place
goes to ``Intent.unplaced`` with the reason, a clause without a cue is context only when it
says nothing but who or what is trained (see `context`), a description that yields nothing at
all is unplaced whole, and every assumption (a default value, the default trigger, how a domain
was read) goes to ``Intent.notes``. Two concepts of one name that the user told apart ("keep
her earrings, remove the other earrings") stay two; one clash left is unplaced, not an error.

This module is the entry point and assembles the intent; the steps live beside it:
`sentences` (sentences and clauses; `ellipses` completes "..., the hair should"),
`directives` ("trigger:", "domain:"), `cues` (which operation a clause asks for; the scanning
in `cue_scan`, the phrasings in `cue_words`), `context` (is a clause without a cue only
context), `phrases`
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
from .context import extra_parts
from .cues import is_context, operation_of, subject_of
from .directives import Directives, read_directives
from .language import description_language, foreign_parts, sentence_language
from .names import Name, absorb, cut_detached, names_in, strip_label
from .phrases import REFERENCE, Draft, concepts_in
from .schema import Domain, Intent, Operation, ReferenceBox
from .sentences import clauses, normalise, sentences

# A foreign sentence this short may be a name or a quoted title: it is read as English.
_FOREIGN_SENTENCE_WORDS = 4
# Longer descriptions are refused: parts of the parser are superlinear in the sentence length,
# and no intent needs more (a few sentences say what to keep, change and remove).
MAX_LENGTH = 4000
# "the other earrings", "the other dog": what tells two concepts of one name apart.
_OTHER = r"(?:other|another|second|different)"


@dataclass
class _State:
    """What the sentences read so far have established."""

    directives: Directives = field(default_factory=Directives)  # "trigger: ...", "domain: ..."
    namings: list[Name] = field(default_factory=list)  # see names.names_in
    drafts: list[Draft] = field(default_factory=list)
    clause_of: dict[int, str] = field(default_factory=dict)  # id(draft) → the clause it is from
    as_written: dict[int, str] = field(default_factory=dict)  # id(draft) → name before `absorb`
    context: list[str] = field(default_factory=list)  # clauses saying who/what is trained
    unplaced: list[str] = field(default_factory=list)  # "<clause> (<why>)"
    foreign: list[str] = field(default_factory=list)  # the language of each foreign sentence
    foreign_parts: list[str] = field(default_factory=list)  # ... of each foreign part of one


def parse_offline(description: str, references: Sequence[ReferenceBox] = ()) -> Intent:
    """Parse ``description`` into a validated Intent (see the module docstring)."""
    if len(description) > MAX_LENGTH:
        raise InputError(f"The intent description is {len(description)} characters long; the "
                         f"offline parser reads at most {MAX_LENGTH}. Say what to keep, change "
                         "and remove in a few sentences.")
    text = normalise(description)
    example = "e.g. 'Keep his face. Hair colour adjustable. No necklace.'"
    if not text:
        raise InputError(f"The intent description is empty. Describe what to keep, change and "
                         f"remove, {example}")
    if not re.search(r"[^\W_]", text):
        raise InputError(f"The intent description '{text}' has no words. Describe what to keep, "
                         f"change and remove, {example}")
    _check_reference_numbers(text, references)
    state = _State()
    parts = sentences(text)
    language = description_language(parts)
    if language:  # read nothing with English word lists, lose nothing: all of it is unplaced
        for sentence in parts:
            read_directives(sentence, state.directives)
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
    sentence = strip_label(read_directives(sentence, state.directives))
    if not sentence:
        return
    language = sentence_language(sentence, min_words=_FOREIGN_SENTENCE_WORDS)
    if language:
        state.unplaced.append(f"{sentence} ({notes.foreign_reason(language)})")
        state.foreign.append(language)
        return
    found = names_in(sentence, first=first)
    cut = _cut_foreign(sentence, found, state)
    if cut != sentence:
        sentence, found = cut, names_in(cut, first=first)
    said, sentence = sentence, cut_detached(sentence, found)
    previous = ""  # the last concept named in this sentence, for "its colour"
    for clause in clauses(sentence):
        inside = [n for n in found if not n.detached and said[n.start:n.end] in clause]
        spans = [said[n.start:n.end] for n in inside]
        operation = operation_of(clause)
        if operation is None:
            _read_context(clause, spans, bool(found), sentence, previous, state)
            continue
        drafts, not_subject = _read_clause(clause, operation, sentence, previous, inside, spans)
        found = [n for n in found if n not in not_subject]
        if not drafts:
            state.unplaced.append(f"{clause} (found nothing to {operation.value})")
        state.drafts.extend(drafts)
        state.clause_of.update((id(d), clause) for d in drafts)
        previous = drafts[-1].name if drafts else previous
    if found:
        state.namings += found
        state.context.append(said)  # it says who the subject is: domain evidence


def _cut_foreign(sentence: str, found: list[Name], state: _State) -> str:
    """``sentence`` without its foreign parts ("keep the face, pelo cambiable"), which go to
    unplaced: read with English word lists they would be garbage concepts. Names are exempt."""
    parts = foreign_parts(sentence, [(n.start, n.end) for n in found])
    for start, end, language in parts:
        state.unplaced.append(f"{sentence[start:end].strip()} "
                              f"({notes.foreign_reason(language)})")
        state.foreign_parts.append(language)
    for start, end, _ in reversed(parts):
        sentence = sentence[:start] + " " + sentence[end:]
    sentence = re.sub(r"\s*[,;](?:\s*[,;])+", ",", sentence)
    return re.sub(r"\s+", " ", sentence).strip(" ,;-–—")


def _read_clause(clause: str, operation: Operation, sentence: str, previous: str,
                 inside: list[Name], spans: list[str]) -> tuple[list[Draft], list[Name]]:
    """(the clause's drafts, the namings in it that are not the subject). A noun phrase that is
    only the named subject ("*my dog Rex* never wears a collar", "*a cat called Tom* with a bow
    tie that must not appear") is not what the clause is about: it is read again without the
    name. When nothing is left then, the name was what the clause named: in a delete clause
    that is something removed, not the subject ("Remove the Rolex watch"). So is a brand in a
    removed phrase ("Remove the Rolex watch strap"), a name written before its thing noun."""
    drafts = concepts_in(clause, operation, sentence, previous)
    removed = []
    if operation is Operation.DELETE:
        removed = [n for n, span in zip(inside, spans, strict=True) if _brand(n, span) and any(
            absorb(d.name, n.names, ()) != d.name for d in drafts)]
    spans = [span for n, span in zip(inside, spans, strict=True) if n not in removed]
    inside = [n for n in inside if n not in removed]
    names = [w for n in inside for w in n.names]
    nouns = [n.noun for n in inside if n.noun]
    if all(absorb(d.name, names, nouns) for d in drafts):
        return drafts, removed
    blanked = clause
    for span in spans:
        blanked = blanked.replace(span, " ")
    again = concepts_in(blanked, operation, sentence, previous)
    if again:
        return again, removed
    return drafts, removed + (inside if operation is Operation.DELETE else [])


def _brand(naming: Name, span: str) -> bool:
    """Is the name written right before its noun, as a brand or model is ("the Rolex watch",
    "the Aeron chair"), not after it as a pet's or person's is ("my dog Rex")?"""
    return bool(naming.noun) and re.search(rf"{re.escape(naming.names[-1])}\s+"
                                           rf"{re.escape(naming.noun)}", span,
                                           re.IGNORECASE) is not None


def _read_context(clause: str, spans: list[str], named: bool, sentence: str, previous: str,
                  state: _State) -> None:
    """A clause without a cue: context when it only says who or what is trained, else (the
    parts of it that say more) unplaced, see `context`."""
    if not (named or is_context(clause)):
        state.unplaced.append(f"{clause} ({notes.NO_CUE})")
        return
    if REFERENCE.search(clause):
        # "Train the model on the superhero landing pose [1]": the referenced subject itself
        # is what the trigger word must absorb.
        state.context.append(clause)
        state.drafts += concepts_in(subject_of(clause), Operation.KEEP, sentence, previous)
        return
    extra = extra_parts(clause, spans)
    state.unplaced += [f"{part} ({notes.NO_CUE})" for part in extra]
    if len(extra) < len([p for p in re.split(r"[,;]", clause) if p.strip()]):
        state.context.append(clause)


def _build(description: str, references: Sequence[ReferenceBox], state: _State,
           found: list[str]) -> Intent:
    subject = _subject(state)
    given = state.directives.triggers
    triggers = given or list(subject[0].names if subject else ())
    found += state.directives.notes
    if not triggers:
        triggers = [lx.DEFAULT_TRIGGER]
        found.append(notes.no_trigger(lx.DEFAULT_TRIGGER))
    if state.foreign:
        found.append(notes.foreign_sentences(state.foreign[0], len(state.foreign)))
    if state.foreign_parts:
        found.append(notes.foreign_parts(state.foreign_parts[0], len(state.foreign_parts)))
    names = [*given, *(n for s in subject for n in s.names)]
    drafts = _absorb_subject(state.drafts, names, [s.noun for s in subject if s.noun],
                             triggers, found, state.as_written)
    concepts = [_concept(d, found) for d in _merge(_tell_apart(drafts, state))]
    if not concepts and not state.unplaced:  # nothing read, nothing dropped: say so
        state.unplaced.append(f"{normalise(description)} ({notes.NOTHING_FOUND})")
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
                    triggers: list[str], found: list[str], as_written: dict[int, str]
                    ) -> list[Draft]:
    """The drafts without the named subject (see names.absorb). A draft that was only the
    subject is dropped (noted), unless a box is bound to it: then it is the subject's noun. A
    delete one always is: the subject cannot be removed from its own pictures."""
    kept = []
    for draft in drafts:
        name = absorb(draft.name, names, nouns)
        deleted = draft.operation is Operation.DELETE
        if not name and (deleted or not draft.references):
            note = (notes.subject_not_deleted if deleted else notes.subject_absorbed)(
                triggers, draft.source)
            found += [] if note in found else [note]
            continue
        if name and name != draft.name:
            as_written[id(draft)] = draft.name
        draft.name = name or (nouns[0].lower() if nouns else draft.name)
        kept.append(draft)
    return kept


def _domain(state: _State, concepts: list[dict], description: str, subject: list[Name],
            found: list[str]) -> Domain:
    """The domain written after "domain:" (read through `domains`), else the guess."""
    named = any(not n.explicit for n in state.namings)
    written = state.directives.domain_text
    if written:
        domain, note = domain_from_name(written, named=named)
        if domain is not None:
            found += [note] if note else []
            return domain
    guessed = guess_domain(state.context, concepts, description, named=named,
                           subject_nouns=tuple(n.noun for n in subject if n.noun))
    if written:
        found.append(notes.unknown_domain(written, guessed))
    return guessed


def _tell_apart(drafts: list[Draft], state: _State) -> list[Draft]:
    """The drafts without a name both kept and removed (or changed) where the user never wrote
    that: "keep her earrings, remove the other earrings" means two concepts, and so does "keep
    Pepper's collar, no collar on the other dog" once the subject's name is absorbed. One of
    the two keeps what told it apart: "other" ("other earrings", "other dog collar"), else the
    name absorbed ("pepper's collar"). A clash left after that is the later clause's, unplaced
    with the reason instead of an invalid intent. A clash the user wrote ("Keep the hat.
    Remove the hat.") stays one, for validation to report."""
    first: dict[str, Draft] = {}
    kept = []
    for draft in drafts:
        earlier = first.setdefault(draft.name, draft)
        if earlier.operation is draft.operation:
            kept.append(draft)
            continue
        pair = (draft, earlier)
        hints = [(d, _other_name(d.name, state.clause_of.get(id(d), ""))) for d in pair]
        hints += [(d, state.as_written.get(id(d), "")) for d in pair]
        if not any(name for _, name in hints):
            kept.append(draft)  # written so: validation says "both keep and delete"
            continue
        which, name = next(((d, n) for d, n in hints if n and n not in first), (None, ""))
        if which is None:
            clause = state.clause_of.get(id(draft), draft.source)
            entry = f"{clause} ({notes.clash_reason(draft.name, earlier.operation.value)})"
            state.unplaced += [] if entry in state.unplaced else [entry]
            continue
        which.name = name
        first[name] = which
        first[draft.name] = first.get(draft.name, draft) if which is draft else draft
        kept.append(draft)
    return kept


def _other_name(name: str, clause: str) -> str:
    """``name`` as the clause tells it apart with "other": "the other earrings" → "other
    earrings", "no collar on the other dog" → "other dog collar"; "" when "other" is not about
    this concept ("keep the hat, no other accessories")."""
    head = re.escape(name.split()[-1])
    lowered = clause.lower()
    if m := re.search(rf"\b{_OTHER}\s+((?:[\w-]+\s+){{0,2}}?){head}\b", lowered):
        return " ".join(["other", *m.group(1).split(), name.split()[-1]])
    if m := re.search(rf"\b{head}\s+(?:on|of|for|from|with|worn by)\s+(?:the\s+|an?\s+)?"
                      rf"{_OTHER}\s+([\w-]+)", lowered):
        return f"other {m.group(1)} {name}"
    return ""


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
