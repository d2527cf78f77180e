"""Operation cues of the offline parser: which of keep / modify / delete a clause asks for.

A cue is a phrasing of ``cue_words.OPERATION_CUES`` matched on whole words (the longest one at a
place wins), or a two-part cue of ``SPLIT_CUES`` around its concept ("keep the text out").
A negator a few words before a cue turns it around, within its own part of the clause: the
scope ends at a comma, "and", "but" or a dash, so "don't change the face and remove the logo"
keeps the face and removes the logo. What a negator does depends on the cue: a negated change is
keep ("never changes"), a negated keep *state* is change ("doesn't matter", "isn't fixed"), a
negated keep *action* is delete ("shouldn't be learned", "must not show up"), a negated delete
*verb* is keep ("never remove"). A bare negation ("no", "never", "without") that flips a cue is
its negator, not a delete of its own ("no changes to her face" is keep).

A clause with no cue may still be *context*: it says who or what is trained ("Train a model of a
man called Vincent"), which is not an instruction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from . import cue_words as cw
from . import lexicon as lx
from .schema import Operation

# (operation, start, end, cue) of one cue found in a clause; start/end index the clause. A
# two-part cue gives one entry per part, both named "<first>…<second>@<where the first is>".
CueMatch = tuple[Operation, int, int, str]
# Where a negation's scope ends: a new part of the clause begins.
_SCOPE_END = re.compile(r"[,;:]|\s[-–—]+\s|—|\b(?:and|but|then)\b")


@dataclass(frozen=True)
class Cue:
    """A cue as the clause means it: its operation after negation, and where it stands."""

    operation: Operation
    start: int  # where the cue begins
    end: int  # where it ends (for a two-part cue, where its second part ends)
    cue: str
    strong: bool  # decides a clause on its own (see ``cue_words.WEAK_CUES``), or is negated


def cue_matches(clause: str) -> list[CueMatch]:
    """Every cue in ``clause``, in order; a longer cue wins over the shorter ones inside it,
    and two cues of one operation that overlap are one ("can be whatever I ask for")."""
    lowered = clause.lower()
    found = _split_matches(lowered)
    single: list[CueMatch] = []
    for word in re.finditer(r"(?<![\w'])[\w']", lowered):  # the longest cue at each word
        m = _cue_pattern().match(lowered, word.start())
        if not m or any(s < m.end() and m.start() < e for _, s, e, _ in found):
            continue
        operation, cue = _operation_by_cue()[m.group(0)], m.group(0)
        if single and single[-1][2] > m.start():  # overlaps the cue before
            last = single[-1]
            if last[0] is operation and m.end() > last[2]:
                single[-1] = (operation, last[1], m.end(), last[3])
            continue
        single.append((operation, m.start(), m.end(), cue))
    return sorted(found + single, key=lambda f: f[1])


def read_cues(clause: str) -> list[Cue]:
    """The clause's cues with negation applied (negators that flip a cue are not cues)."""
    lowered = clause.lower()
    matches = cue_matches(clause)
    absorbed: set[int] = set()  # starts of bare negations used up as negators
    read: list[tuple[Operation, int, int, str, bool]] = []
    seen_split: set[str] = set()
    for operation, start, end, cue in matches:
        if "…" in cue:  # a two-part cue: read once, spanning both parts
            if cue in seen_split:
                continue
            seen_split.add(cue)
            end = max(e for _, s, e, c in matches if c == cue)
        elif cue in cw.PRESENCE and not _modal_before(lowered, start):
            continue  # "it is in every shot" says what is, not what should be
        elif _flippable(operation, cue):
            negator = _negator_before(lowered, start, matches)
            if negator is not None:
                absorbed.add(negator)
                read.append((_flipped(operation, cue), start, end, cue, True))
                continue  # a negated cue is explicit: "must not show up" decides
        read.append((operation, start, end, cue, cue not in cw.WEAK_CUES))
    return [Cue(op, s, e, c, strong) for op, s, e, c, strong in read
            if not (c in cw.NEGATION_CUES and s in absorbed)]


def has_strong_cue(text: str) -> bool:
    """Does ``text`` hold a cue that decides a clause on its own (not "any", "different"...)?"""
    return any(c.strong for c in read_cues(text))


def operation_of(clause: str) -> Operation | None:
    """The clause's operation: its first strong cue as negation leaves it ("don't change" =
    keep, "doesn't matter" = modify, "must not show up" = delete), else its first weak one
    ("any background"); None when the clause has no cue at all."""
    cues = read_cues(clause)
    strong = [c for c in cues if c.strong]
    if strong:
        return strong[0].operation
    return cues[0].operation if cues else None


def strip_cues(text: str) -> str:
    """``text`` with its cues and negators blanked out, leaving what they apply to. A presence
    cue that is no instruction stays ("the lighting in my photos is bad")."""
    lowered = text.lower()
    for _, start, end, cue in sorted(cue_matches(text), key=lambda m: -m[1]):
        if cue in cw.PRESENCE and not _modal_before(lowered, start):
            continue
        text = text[:start] + " , " + text[end:]
    return _negator_pattern().sub(" ", text)


def is_context(clause: str) -> bool:
    """Does ``clause`` say who or what is trained ("a model of...", "called...")?"""
    return _context_cue_end(clause) >= 0


def subject_of(clause: str) -> str:
    """The part of a context clause after its context cue ("train a model of X [1]" → X [1])."""
    return clause[max(_context_cue_end(clause), 0):]


def _flippable(operation: Operation, cue: str) -> bool:
    """Can a negator turn this cue around? Not one that holds a negation itself ("doesn't
    matter"), nor "any" ("without any text" deletes), nor a delete that is not a verb ("no")."""
    if cue in cw.UNFLIPPABLE or _negator_pattern().search(cue):
        return False
    if operation is Operation.DELETE:
        return cue in cw.DELETE_VERBS
    return True


def _flipped(operation: Operation, cue: str) -> Operation:
    if operation is Operation.KEEP:
        return Operation.MODIFY if cue in cw.KEEP_STATES else Operation.DELETE
    return Operation.KEEP  # a negated change or a negated delete verb


def _negator_before(lowered: str, position: int, matches: list[CueMatch]) -> int | None:
    """Where the negator of the cue at ``position`` starts: among the few words before it, in
    the same part of the clause; None when there is none. A negator inside a longer cue ("not"
    in "do not want") does not count, nor one that says nothing of the thing ("not sure")."""
    starts = [m.start() for m in re.finditer(r"\S+", lowered[:position])]
    window = starts[-(cw.NEGATION_WINDOW + 1)] if len(starts) > cw.NEGATION_WINDOW else 0
    found = None
    for m in _negator_pattern().finditer(lowered, window, position):
        inside_longer_cue = any(s <= m.start() and m.end() <= e and e - s > m.end() - m.start()
                                for _, s, e, _ in matches)
        idle = any(lowered.startswith(p, m.start()) for p in cw.NOT_NEGATING)
        if inside_longer_cue or idle or _SCOPE_END.search(lowered, m.end(), position):
            continue
        found = m.start()
    return found


def _modal_before(lowered: str, position: int) -> bool:
    """Is there a "should" / "must" / "always" / negator in this part of the clause, before
    ``position``?"""
    part_start = max((m.end() for m in _SCOPE_END.finditer(lowered, 0, position)), default=0)
    return _modal_pattern().search(lowered, part_start, position) is not None


def _split_matches(lowered: str) -> list[CueMatch]:
    """Two-part cues ("keep ... out"): the second part, then the nearest first part before it,
    with at most the cue's gap of words between and no comma or other cue in the gap."""
    found: list[CueMatch] = []
    for firsts, seconds, operation, gap in cw.SPLIT_CUES:
        ordered = sorted(seconds, key=len, reverse=True)
        pattern = rf"(?<![\w'])(?:{'|'.join(map(re.escape, ordered))})(?![\w'])"
        for second in re.finditer(pattern, lowered):
            before = lowered[:second.start()]
            firsts_found = [m for f in firsts for m in
                            re.finditer(rf"(?<![\w']){re.escape(f)}(?![\w'])", before)]
            if not firsts_found:
                continue
            first = max(firsts_found, key=lambda m: m.start())
            between = lowered[first.end():second.start()]
            allow_commas = operation is not Operation.DELETE
            if (not between.strip() or len(between.split()) > gap
                    or re.search(r"[;:.!?]" if allow_commas else r"[,;:.!?]", between)
                    or _cue_pattern().search(between)):
                continue
            if any(s < second.end() and first.start() < e for _, s, e, _ in found):
                continue
            label = f"{first.group(0)}…{second.group(0)}@{first.start()}"  # one per pair
            found += [(operation, first.start(), first.end(), label),
                      (operation, second.start(), second.end(), label)]
    return found


@cache
def _operation_by_cue() -> dict[str, Operation]:
    return {cue: op for op, cues in cw.OPERATION_CUES.items() for cue in cues}


@cache
def _cue_pattern() -> re.Pattern[str]:
    """All single cues in one pattern, longest first, so the longest cue at a place wins."""
    cues = sorted(_operation_by_cue(), key=len, reverse=True)
    return re.compile(rf"(?<![\w'])(?:{'|'.join(map(re.escape, cues))})(?![\w'])")


@cache
def _modal_pattern() -> re.Pattern[str]:
    return re.compile(rf"(?<![\w'])(?:{'|'.join(map(re.escape, cw.MODALS))})(?![\w'])")


@cache
def _negator_pattern() -> re.Pattern[str]:
    negators = sorted(cw.NEGATORS, key=len, reverse=True)
    return re.compile(rf"(?<![\w'])(?:{'|'.join(map(re.escape, negators))})(?![\w'])",
                      re.IGNORECASE)


def _context_cue_end(clause: str) -> int:
    """Where the last-ending context cue of ``clause`` ends; -1 when it has none ("the photos
    are a bit dark" is no "are a")."""
    lowered = clause.lower()
    ends = [m.end() for cue in lx.CONTEXT_CUES
            if (m := re.search(rf"(?<![\w]){re.escape(cue)}(?![\w])(?!\s+(?:bit|little|lot|few)\b)",
                               lowered))]
    return max(ends, default=-1)
