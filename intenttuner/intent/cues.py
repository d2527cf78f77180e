"""Operation cues of the offline parser: which of keep / modify / delete a clause asks for.

The cues of a clause are found by `cue_scan`; here they are read. A negator a few words before
a cue turns it around, within its own part of the clause: the scope ends at a comma, "and",
"but" or a dash, so "don't change the face and remove the logo" keeps the face and removes the
logo. What a negator does depends on the cue: a negated change is keep ("never changes"), a
negated keep *state* is change ("doesn't matter", "isn't fixed"), a negated keep *action* is
delete ("shouldn't be learned", "must not show up"), a negated delete *verb* is keep ("never
remove"), a negated absence is keep ("never without her scarf"). A bare negation ("no",
"never", "without") that flips a cue is its negator, not a delete of its own ("no changes to
her face" is keep). A choice ("can be", "either") is a change only with the "or" of its values
after it ("the background can be a beach or a forest"); "either" alone is a weak cue.

A clause with no cue may still be *context*: it says who or what is trained ("Train a model of a
man called Vincent", or just "the superhero landing pose [1]").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from . import cue_scan as cs
from . import cue_words as cw
from . import lexicon as lx
from .cue_scan import CueMatch
from .schema import Operation

_REFERENCE = re.compile(r"\[\s*\d+\s*\]")
# Words that make a clause more than a noun phrase (see `is_context`).
_VERBISH = frozenset({*lx.COPULAS, "be", "been", "has", "have", "had", "should", "must", "can",
                      "could", "will", "would", "may", "might", "do", "does", "did", "it's",
                      "there's", "that's", "he's", "she's", "they're", "i'm", "i", "he", "she",
                      "it", "they", "we", "you", "likes", "like", "loves", "wants"})


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
    return list(cs.matches(clause))


def read_cues(clause: str) -> list[Cue]:
    """The clause's cues with negation applied (negators that flip a cue are not cues)."""
    return list(_read_cues(clause))


def has_strong_cue(text: str) -> bool:
    """Does ``text`` hold a cue that decides a clause on its own (not "any", "different"...)?"""
    return any(c.strong for c in _read_cues(text))


def operation_of(clause: str) -> Operation | None:
    """The clause's operation: its first strong cue as negation leaves it ("don't change" =
    keep, "doesn't matter" = modify, "must not show up" = delete), else its first weak one
    ("any background"); None when the clause has no cue at all."""
    cues = _read_cues(clause)
    strong = [c for c in cues if c.strong]
    if strong:
        return strong[0].operation
    return cues[0].operation if cues else None


def unnegated_operation(clause: str) -> Operation | None:
    """The operation of the clause's deciding cue with its negation taken away: what "the hair
    should" means after "the face shouldn't change" (modify), or "the shoes do" after "the
    dress doesn't matter" (keep). None when the clause has no cue."""
    cues = _read_cues(clause)
    cue = next((c for c in cues if c.strong), cues[0] if cues else None)
    if cue is None:
        return None
    if "…" in cue.cue:  # "don't want X to change": the negation is the cue's first part
        if cue.cue.split("…")[0] in cw.DONT_WANT and cue.operation is not Operation.DELETE:
            return Operation.MODIFY if cue.operation is Operation.KEEP else Operation.KEEP
        return cue.operation
    plain = cs.operation_by_cue().get(cue.cue, Operation.MODIFY)  # a choice is a change
    if plain is not cue.operation:
        return plain  # a negator turned it around: "shouldn't change"
    if cue.cue in cw.NEGATION_CUES or cs.negator_pattern().search(cue.cue):
        return Operation.KEEP  # "doesn't matter", "don't want", "no"
    return cue.operation


def strip_cues(text: str) -> str:
    """``text`` with its cues and negators blanked out, leaving what they apply to. A presence
    cue that is no instruction stays ("the lighting in my photos is bad")."""
    scan = cs.Scan(text.lower())
    pieces, last = [], 0
    for _, start, end, cue in cs.matches(text):
        if cue in cw.PRESENCE and not scan.modal_before(start):
            continue
        pieces += [text[last:start], " , "]
        last = end
    pieces.append(text[last:])
    return cs.negator_pattern().sub(" ", "".join(pieces))


def is_context(clause: str) -> bool:
    """Does ``clause`` say who or what is trained ("a model of...", "called...")? A bare noun
    phrase with a box says it too: "superhero landing pose [1], the person doing it can
    change" is about the pose in box 1."""
    return _context_cue_end(clause) >= 0 or _names_a_box(clause)


def subject_of(clause: str) -> str:
    """The part of a context clause after its context cue ("train a model of X [1]" → X [1])."""
    return clause[max(_context_cue_end(clause), 0):]


@lru_cache(maxsize=1024)
def _read_cues(clause: str) -> tuple[Cue, ...]:
    scan = cs.Scan(clause.lower())
    matches = cs.matches(clause)
    starts = [m[1] for m in matches]
    split_ends: dict[str, int] = {}
    for _, _, end, cue in matches:
        if "…" in cue:
            split_ends[cue] = max(end, split_ends.get(cue, end))
    absorbed: set[int] = set()  # starts of bare negations used up as negators
    read: list[tuple[Operation, int, int, str, bool]] = []
    seen_split: set[str] = set()
    for operation, start, end, cue in matches:
        if "…" in cue:  # a two-part cue: read once, spanning both parts
            if cue in seen_split:
                continue
            seen_split.add(cue)
            end = split_ends[cue]
        elif cue in cw.PRESENCE and not scan.modal_before(start):
            continue  # "it is in every shot" says what is, not what should be
        elif cue in cw.NEGATED_ABSENCE and (negator := _double_negator(scan, start)) is not None:
            absorbed.add(negator)
            read.append((Operation.KEEP, start, end, cue, True))
            continue
        elif _flippable(operation, cue):
            negator = _negator_before(scan, start, matches, starts)
            if negator is not None:
                absorbed.add(negator)
                read.append((_flipped(operation, cue), start, end, cue, True))
                continue  # a negated cue is explicit: "must not show up" decides
        choice = cue == "either" and cs.OR_AFTER.match(scan.lowered, end) is not None
        read.append((operation, start, end, cue, cue not in cw.WEAK_CUES or choice))
    return tuple(Cue(op, s, e, c, strong) for op, s, e, c, strong in read
                 if not (c in cw.NEGATION_CUES and s in absorbed))


def _flippable(operation: Operation, cue: str) -> bool:
    """Can a negator turn this cue around? Not one that holds a negation itself ("doesn't
    matter"), nor "any" ("without any text" deletes), nor a delete that is not a verb ("no")."""
    if cue in cw.UNFLIPPABLE or cs.negator_pattern().search(cue):
        return False
    if operation is Operation.DELETE:
        return cue in cw.DELETE_VERBS
    return True


def _flipped(operation: Operation, cue: str) -> Operation:
    if operation is Operation.KEEP:
        return Operation.MODIFY if cue in cw.KEEP_STATES else Operation.DELETE
    return Operation.KEEP  # a negated change or a negated delete verb


def _negator_before(scan: cs.Scan, position: int, matches: tuple[CueMatch, ...],
                    starts: list[int]) -> int | None:
    """Where the negator of the cue at ``position`` starts: among the few words before it, in
    the same part of the clause; None when there is none. A negator inside a longer cue ("not"
    in "do not want") does not count, nor one that says nothing of the thing ("not sure")."""
    lowered = scan.lowered
    window = scan.words_before(position, cw.NEGATION_WINDOW + 1)
    found = None
    for m in cs.negator_pattern().finditer(lowered, window, position):
        i = bisect_right(starts, m.start()) - 1  # the only match that can hold this negator
        inside_longer_cue = i >= 0 and m.end() <= matches[i][2] and (
            matches[i][2] - matches[i][1] > m.end() - m.start())
        idle = any(lowered.startswith(p, m.start()) for p in cw.NOT_NEGATING)
        if inside_longer_cue or idle or cs.SCOPE_END.search(lowered, m.end(), position):
            continue
        found = m.start()
    return found


def _double_negator(scan: cs.Scan, position: int) -> int | None:
    """Where the negator right before "without" at ``position`` starts ("never without", "should
    never be without"); None when there is none."""
    window = scan.words_before(position, 4)  # a negator of two words and two gap words
    last = None
    for m in cs.negator_pattern().finditer(scan.lowered, window, position):
        last = m
    if last is None:
        return None
    between = scan.lowered[last.end():position].split()
    return last.start() if all(w in cw.DOUBLE_NEGATION_GAP for w in between) else None


def _names_a_box(clause: str) -> bool:
    """Is ``clause`` only a short noun phrase ending in its box ("superhero landing pose [1]"),
    with no verb or pronoun ("He likes to run [3]" says something, "[2] on image 1" points)?"""
    boxes = list(_REFERENCE.finditer(clause))
    if not boxes or clause[boxes[-1].end():].strip(" .,;:!?)"):
        return False
    words = [w.strip(".,;:!?\"'()") for w in _REFERENCE.sub(" ", clause.lower()).split()]
    words = [w for w in words if w]
    return (0 < len(words) <= 8 and not any(w in _VERBISH for w in words)
            and bool(clause[:boxes[0].start()].strip()))


def _context_cue_end(clause: str) -> int:
    """Where the last-ending context cue of ``clause`` ends; -1 when it has none ("the photos
    are a bit dark" is no "are a")."""
    lowered = clause.lower()
    ends = [m.end() for cue in lx.CONTEXT_CUES
            if (m := re.search(rf"(?<![\w]){re.escape(cue)}(?![\w])(?!\s+(?:bit|little|lot|few)\b)",
                               lowered))]
    return max(ends, default=-1)
