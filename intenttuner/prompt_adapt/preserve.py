"""Does a rewritten prompt still say what the user's plain prompt said about the intent, and if
not, the smallest repair that makes it.

An adapter (Promptist, an LLM) rewrites for looks: it drops words it finds dull ("milo" becomes
"a young boy"), swaps states ("blonde hair" becomes "long red hair") and adds what its training
prompts often had ("wearing a golden necklace"). Against the intent that is wrong in four ways,
each judged with the caption rules' matching (`CaptionRules`: a concept's terms, synonyms and
parts), so "bearded" still mentions a kept face and "pendant" a deleted necklace:

- a trigger word the plain prompt has is missing (one the plain prompt lacks is the user's
  choice: nothing is asked for, nothing added);
- a keep or modify concept the plain prompt mentions is not mentioned;
- a modify concept's state in the plain prompt ("blonde" of "blonde hair") is missing from the
  rewrite, or another of its values' states is there instead ("red hair");
- a delete concept the plain prompt does not mention is mentioned (one the user wrote stays:
  their prompt, their choice).

`repair` fixes them in place, in that order of safety: it cuts what adds a deleted concept, puts
the plain prompt's state phrase back, adds the plain prompt's phrase of a dropped concept after
the subject, and puts missing trigger words in front. A repair that still fails the checks is
not used: the plain prompt is (an unadapted prompt is better than one against the intent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..captions.rules import DERIVED_ENDINGS, CaptionRules, ConceptTerms
from ..captions.text import split_phrases, words
from ..intent.schema import Operation

KEPT_PLAIN = "kept the plain prompt"
# What a word is made of in `captions.text.words` (apostrophes and hyphens inside words): a
# phrase found by its words is found again in the text only at such word edges.
_WORD_CHARS = r"\w'’-"


@dataclass(frozen=True)
class _Mention:
    """One phrase of a text that mentions a concept: the words of the concept's noun phrase
    in it ("long red hair"), and the state words among them ("long", "red")."""

    span: tuple[str, ...]
    states: frozenset[str]


@dataclass(frozen=True)
class _Problem:
    kind: str  # "trigger" | "dropped" | "state" | "added"
    subject: str  # the trigger word, or the concept's name
    message: str


def check_rewrite(plain: str, rewrite: str, rules: CaptionRules) -> list[str]:
    """What ``rewrite`` loses or adds against the intent, compared with ``plain`` (empty when
    it keeps everything; the rules in the module docstring)."""
    return [p.message for p in _problems(plain, rewrite, rules)]


def repair(plain: str, rewrite: str, rules: CaptionRules) -> tuple[str, list[str]]:
    """The prompt to use for ``rewrite`` and what was changed in it: ``(rewrite, [])`` when it
    passes `check_rewrite`, the repaired rewrite when the repair passes, else ``(plain,
    [what still fails..., KEPT_PLAIN])``."""
    if not _problems(plain, rewrite, rules):
        return rewrite, []
    changes: list[str] = []
    text = _drop_added(plain, rewrite, rules, changes)
    if text:
        text = _restore_states(plain, text, rules, changes)
        text = _add_back(plain, text, rules, changes)
        text = _add_triggers(plain, text, rules, changes)
    remaining = check_rewrite(plain, text, rules) if text else [
        "nothing was left of the rewrite once the deleted concepts were cut"]
    if remaining:
        return plain, [*(f"could not repair: {r}" for r in remaining), KEPT_PLAIN]
    return text, changes


# -- the checks ----------------------------------------------------------------------------

def _problems(plain: str, rewrite: str, rules: CaptionRules) -> list[_Problem]:
    plain_words, rewrite_words = words(plain), words(rewrite)
    problems = [_Problem("trigger", t, f"the trigger word '{t}' is missing")
                for t in _missing_triggers(plain_words, rewrite_words, rules)]
    for concept in rules.concepts:
        in_plain = concept.mentioned_in(plain_words)
        in_rewrite = concept.mentioned_in(rewrite_words)
        if concept.operation is Operation.DELETE:
            if in_rewrite and not in_plain:
                problems.append(_Problem(
                    "added", concept.name, f"it adds '{concept.name}', which must never appear "
                    f"('{_phrase_about(rewrite, concept)}')"))
        elif in_plain and not in_rewrite:
            problems.append(_Problem(
                "dropped", concept.name, f"it drops the {concept.operation.value} concept "
                f"'{concept.name}' ('{_phrase_about(plain, concept)}')"))
        elif in_plain and concept.operation is Operation.MODIFY:
            wanted, found = _state_mismatch(plain, rewrite, concept)
            if wanted is not None:
                said = " / ".join(" ".join(m.span) for m in found) or "no state"
                problems.append(_Problem(
                    "state", concept.name, f"it changes '{concept.name}' from "
                    f"'{' '.join(wanted.span)}' to '{said}'"))
    return problems


def _missing_triggers(plain_words: list[str], rewrite_words: list[str],
                      rules: CaptionRules) -> list[str]:
    """The trigger words ``plain`` has and ``rewrite`` lacks, in the intent's order."""
    return [t for t in rules.trigger_words
            if _has_sequence(words(t), plain_words) and not _has_sequence(words(t),
                                                                          rewrite_words)]


def _has_sequence(sequence: list[str], text_words: list[str]) -> bool:
    """Do the words of ``sequence`` occur in ``text_words`` in a row? The last may carry a
    possessive "'s" ("milo's face" has the trigger "milo"), as a concept's term may."""
    size = len(sequence)
    return bool(sequence) and any(
        text_words[i:i + size - 1] == sequence[:-1]
        and text_words[i + size - 1].removesuffix("'s") == sequence[-1]
        for i in range(len(text_words) - size + 1))


def _mentions(text: str, concept: ConceptTerms) -> list[_Mention]:
    """Each phrase of ``text`` that mentions ``concept``, as the words of its noun phrase."""
    found = []
    for phrase in split_phrases(text):
        phrase_words = phrase.words
        where = concept.locate(phrase_words)
        if where is not None:
            span = tuple(phrase_words[where[0]:where[2]])
            found.append(_Mention(span, _states(concept, span)))
    return found


def _states(concept: ConceptTerms, span: tuple[str, ...]) -> frozenset[str]:
    """The state words of a noun phrase; a compound made from a term counts as its first part
    ("red-haired" says "red" of hair)."""
    endings = {DERIVED_ENDINGS[t[-1]] for t in concept.terms if t[-1] in DERIVED_ENDINGS}
    states = set()
    for word in concept.attribute_words(list(span)):
        head, _, tail = word.rpartition("-")
        states.add(head if head and tail in endings else word)
    return frozenset(states)


def _state_mismatch(plain: str, rewrite: str, concept: ConceptTerms
                    ) -> tuple[_Mention | None, list[_Mention]]:
    """(the plain prompt's stated mention, the rewrite's mentions to replace with it) when the
    rewrite misses a plain state or says another value's state instead; (None, []) when the
    states agree or the plain prompt states none."""
    stated = [m for m in _mentions(plain, concept) if m.states]
    if not stated:
        return None, []
    wanted = frozenset().union(*(m.states for m in stated))
    others = frozenset(w for v in concept.values
                       for w in _states(concept, tuple(words(v)))) - wanted
    found = _mentions(rewrite, concept)
    have = frozenset().union(*(m.states for m in found)) if found else frozenset()
    if wanted <= have and not others & have:
        return None, []
    conflicting = [m for m in found if m.states & others]
    return stated[0], conflicting or found[:1]


def _phrase_about(text: str, concept: ConceptTerms) -> str:
    """The first phrase of ``text`` that mentions ``concept`` (the whole text if none does,
    which happens only when the mention was in a captioner opener `split_phrases` cuts)."""
    return next((p.text for p in split_phrases(text) if concept.mentioned_in(p.words)),
                text.strip())


# -- the repair steps (each notes what it changed in ``changes``) ------------------------------

def _drop_added(plain: str, text: str, rules: CaptionRules, changes: list[str]) -> str:
    """``text`` without what mentions a deleted concept the plain prompt does not: the
    phrases that do, or their whole comma-separated part when nothing else is in it."""
    plain_words = words(plain)
    added = [c for c in rules.by_operation(Operation.DELETE)
             if c.mentioned_in(words(text)) and not c.mentioned_in(plain_words)]
    if not added:
        return text
    parts = []
    for part in _parts(text):
        bad = [c for c in added if c.mentioned_in(words(part))]
        if not bad:
            parts.append(part)
            continue
        phrases = split_phrases(part)
        kept = [p.text for p in phrases if not any(c.mentioned_in(p.words) for c in bad)]
        cut = [p.text for p in phrases if any(c.mentioned_in(p.words) for c in bad)]
        parts += kept
        changes.append(f"cut '{', '.join(cut)}' (it adds '{bad[0].name}', which must never "
                       "appear)")
    return ", ".join(parts)


def _restore_states(plain: str, text: str, rules: CaptionRules, changes: list[str]) -> str:
    """``text`` with each changed state phrase of a modify concept replaced by the plain
    prompt's ("long red hair" -> "blonde hair")."""
    for concept in rules.by_operation(Operation.MODIFY):
        wanted, targets = _state_mismatch(plain, text, concept)
        if wanted is None:
            continue
        found = _find(plain, wanted.span)
        replacement = found.group(0) if found else " ".join(wanted.span)
        for target in targets:
            where = _find(text, target.span)
            if where is None:
                continue  # the final check reports it
            text = text[:where.start()] + replacement + text[where.end():]
            changes.append(f"put back '{replacement}' for '{where.group(0)}' "
                           f"({concept.name})")
    return text


def _add_back(plain: str, text: str, rules: CaptionRules, changes: list[str]) -> str:
    """``text`` with the plain prompt's phrase of each dropped keep / modify concept added
    right after the rewrite's first part (the subject comes first in a prompt)."""
    text_words = words(text)
    phrases: list[str] = []
    for concept in rules.concepts:
        if concept.operation is Operation.DELETE or concept.mentioned_in(text_words):
            continue
        if concept.mentioned_in(words(plain)):
            phrase = _phrase_about(plain, concept)
            if phrase not in phrases:
                phrases.append(phrase)
                changes.append(f"added back '{phrase}' ({concept.name})")
    if not phrases:
        return text
    parts = _parts(text)
    return ", ".join([*parts[:1], *phrases, *parts[1:]])


def _add_triggers(plain: str, text: str, rules: CaptionRules, changes: list[str]) -> str:
    missing = _missing_triggers(words(plain), words(text), rules)
    if not missing:
        return text
    changes += [f"put the trigger word '{t}' in front" for t in missing]
    return ", ".join([*missing, text])


def _parts(text: str) -> list[str]:
    """The comma-separated parts of a prompt, without empty ones."""
    return [p.strip() for p in text.split(",") if p.strip()]


def _find(text: str, span: tuple[str, ...]) -> re.Match | None:
    """Where the words ``span`` (as `words` gives them: lower case, straight apostrophes) stand
    in ``text``, whole words, any case, any punctuation or spacing between them."""
    if not span:
        return None
    pattern = f"[^{_WORD_CHARS}]+".join(re.escape(w).replace("'", "['’]") for w in span)
    return re.search(f"(?<![{_WORD_CHARS}]){pattern}(?![{_WORD_CHARS}])", text, re.IGNORECASE)
