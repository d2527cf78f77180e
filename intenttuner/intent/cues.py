"""Operation cues of the offline parser: which of keep / modify / delete a clause asks for.

A cue is a word or phrase of ``lexicon.OPERATION_CUES`` matched on whole words. A negator a few
words before a cue turns it around ("don't change" is keep, "don't remove" is keep, "should not
be fixed" is modify). A clause with no cue may still be *context*: it says who or what is
trained ("Train a model of a man called Vincent"), which is not an instruction.
"""

from __future__ import annotations

import re

from . import lexicon as lx
from .schema import Operation

# (operation, start, end, cue) of one cue found in a clause; start/end index the clause.
CueMatch = tuple[Operation, int, int, str]


def cue_matches(clause: str) -> list[CueMatch]:
    """Every cue in ``clause``, in order; a longer cue wins over the shorter ones inside it."""
    lowered = clause.lower()
    found: list[CueMatch] = []
    for operation, cues in lx.OPERATION_CUES.items():
        for cue in sorted(cues, key=len, reverse=True):
            for m in re.finditer(rf"(?<![\w']){re.escape(cue)}(?![\w'])", lowered):
                if not any(s <= m.start() < e or m.start() <= s < m.end()
                           for _, s, e, _ in found):
                    found.append((operation, m.start(), m.end(), cue))
    return sorted(found, key=lambda f: f[1])


def has_strong_cue(text: str) -> bool:
    """Does ``text`` hold a cue that decides a clause on its own (not "any", "different"...)?"""
    return any(cue not in lx.WEAK_CUES for _, _, _, cue in cue_matches(text))


def operation_of(clause: str) -> Operation | None:
    """The clause's operation: a negated cue decides ("don't change" / "no changes to" = keep,
    "don't include" = delete, "should not be fixed" = modify), else the first strong cue, else
    the first weak one ("any background"); None when the clause has no cue at all."""
    matches = cue_matches(clause)
    lowered = clause.lower()
    for operation, start, _end, cue in matches:
        if _flippable(operation, cue) and _negated(lowered, start, matches):
            if operation is not Operation.KEEP:
                return Operation.KEEP
            return Operation.MODIFY if cue in lx.KEEP_STATES else Operation.DELETE
    strong = [m for m in matches if m[3] not in lx.WEAK_CUES]
    if strong:
        return strong[0][0]
    return matches[0][0] if matches else None


def strip_cues(text: str) -> str:
    """``text`` with its cues and negators blanked out, leaving what they apply to."""
    for _, start, end, _ in sorted(cue_matches(text), key=lambda m: -m[1]):
        text = text[:start] + " , " + text[end:]
    for negator in lx.NEGATORS:
        text = re.sub(rf"(?<![\w']){re.escape(negator)}(?![\w'])", " ", text,
                      flags=re.IGNORECASE)
    return text


def is_context(clause: str) -> bool:
    """Does ``clause`` say who or what is trained ("a model of...", "called...")?"""
    return _context_cue_end(clause) >= 0


def subject_of(clause: str) -> str:
    """The part of a context clause after its context cue ("train a model of X [1]" → X [1])."""
    return clause[max(_context_cue_end(clause), 0):]


def _flippable(operation: Operation, cue: str) -> bool:
    """Cues whose meaning a negator turns around ("any" is not: "without any text" deletes)."""
    if operation is Operation.DELETE:
        return cue in lx.DELETE_VERBS
    return cue not in lx.WEAK_CUES or cue in lx.KEEP_STATES or cue == "different"


def _negated(lowered: str, position: int, matches: list[CueMatch]) -> bool:
    """Is there a negator among the few words before ``position``? A negator inside a longer
    cue ("not" in "do not want") does not count; "never" on its own does."""
    starts = [m.start() for m in re.finditer(r"\S+", lowered[:position])]
    window_start = starts[-(lx.NEGATION_WINDOW + 1)] if len(starts) > lx.NEGATION_WINDOW else 0
    for negator in lx.NEGATORS:
        for m in re.finditer(rf"(?<![\w']){re.escape(negator)}(?![\w'])", lowered[:position]):
            inside_longer_cue = any(s <= m.start() and m.end() <= e and e - s > len(negator)
                                    for _, s, e, _ in matches)
            if m.start() >= window_start and not inside_longer_cue:
                return True
    return False


def _context_cue_end(clause: str) -> int:
    """Where the last-ending context cue of ``clause`` ends; -1 when it has none."""
    lowered = clause.lower()
    ends = [m.end() for cue in lx.CONTEXT_CUES
            if (m := re.search(rf"(?<![\w]){re.escape(cue)}(?![\w])", lowered))]
    return max(ends, default=-1)
