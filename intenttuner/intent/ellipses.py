"""Clause parts that lean on the part before for their verb, completed from it.

"The dress matters, the shoes don't": "the shoes don't" negates the cue before ("matters"), so
it gets that cue to turn ("the shoes don't matters" is modify). So do "..., not the face" and
"..., only the cat". A part ending in a modal takes the cue before without its negation ("the
face shouldn't change, the hair should": the hair changes); "..., the hair too" does what the
part before does; "change the hair never the face" keeps the face. `sentences` splits such
parts off (`leans_on_before`) and completes them (`complete_ellipses`).
"""

from __future__ import annotations

import re

from . import cue_words as cw
from . import lexicon as lx
from .cues import operation_of, read_cues, unnegated_operation
from .schema import Operation

# Clauses that only negate, or only narrow, the clause before ("the shoes don't", "not the face",
# "only the cat"); see `complete_ellipses`.
_TRAILING_NEGATION = re.compile(
    r"\b(?:don't|doesn't|do not|does not|isn't|aren't|is not|are not|can't|cannot|won't"
    r"|shouldn't|should not|mustn't|must not|not|needn't|less so)"
    r"(?:\s+(?:have|has|need|needs)\s+to|\s+(?:so|as|that)\s+much|\s+really|\s+either"
    r"|\s+at all)?$", re.IGNORECASE)
# A part ending in a modal leans on the part before for its verb: "the face shouldn't change,
# the hair should" (change); "..., the hair too" does what the part before says.
_TRAILING_MODAL = re.compile(r"\b(?:should|can|could|may|might|will|must|does|do|too|as well"
                             r"|also)$", re.IGNORECASE)
_SAME_AS_BEFORE = ("too", "as well", "also")
_SUBORDINATORS = frozenset({*lx.PHRASE_BREAKS, "when", "whenever", "where", "wherever", "as",
                            "so", "while", "though", "although"})
# The verb such a part is completed with, per operation.
_OPERATION_VERB = {Operation.KEEP: "stay the same", Operation.MODIFY: "change",
                   Operation.DELETE: "be removed"}
_LEADING_NOT = re.compile(r"^(?:but\s+)?not\s+", re.IGNORECASE)
_LEADING_NEVER = re.compile(r"^(?:but\s+)?never\s+", re.IGNORECASE)
_LEADING_ONLY = re.compile(r"^(?:but\s+)?only\s+", re.IGNORECASE)


def leans_on_before(part: str) -> bool:
    """Does this comma part (with no cue of its own) lean on the part before?"""
    return bool(_TRAILING_NEGATION.search(part) or _LEADING_NOT.match(part)
                or _LEADING_ONLY.match(part) or _modal_ellipsis(part))


def complete_ellipses(found: list[str]) -> list[str]:
    """"The dress matters, the shoes don't" / "keep the jacket but not the hat": a clause that
    only negates gets the cue of the clause before it, so the negation has something to turn.
    One that ends in a modal gets that cue without its negation ("the face shouldn't change,
    the hair should" → "the hair should change"); "..., the hair too" does what the clause
    before does; "never the face" after a change or a removal keeps the face."""
    out: list[str] = []
    for clause in found:
        lead = _LEADING_NEVER.match(clause)
        cues = read_cues(clause) if lead else []
        if (out and lead and len(cues) == 1 and cues[0].cue == "never"
                and operation_of(out[-1]) in (Operation.MODIFY, Operation.DELETE)):
            clause = f"keep {clause[lead.end():]}"  # "change the hair never the face"
        if not out or operation_of(clause) is not None:
            out.append(clause)
            continue
        cue = _first_cue_text(out[-1])
        modal = _modal_ellipsis(clause)
        if modal and not _TRAILING_NEGATION.search(clause):  # "I don't want X to change, Y
            same = modal.group(0).lower() in _SAME_AS_BEFORE  # can": no single cue to copy
            previous = (operation_of if same else unnegated_operation)(out[-1])
            clause = f"{clause} {_OPERATION_VERB[previous]}" if previous else clause
        elif cue:
            if _TRAILING_NEGATION.search(clause):
                clause = f"{clause} {cue}"
            elif lead := _LEADING_NOT.match(clause):
                clause = f"{lead.group(0)}{cue} {clause[lead.end():]}"
            elif lead := _LEADING_ONLY.match(clause):  # "X shouldn't be learned, only Y": Y is
                clause = f"{cue} {clause[lead.end():]}"
        out.append(clause)
    return out


def _modal_ellipsis(clause: str) -> re.Match[str] | None:
    """The trailing modal of a clause that names something and leans on the clause before for
    its verb ("the hair should", "the scarf too")."""
    modal = _TRAILING_MODAL.search(clause)
    words = clause.lower().split()
    if not modal or not words or words[0] in _SUBORDINATORS:
        return None  # "keep the face, if you can" says how, not what
    return modal if has_content(clause[:modal.start()]) else None


def _first_cue_text(clause: str) -> str | None:
    cues = sorted((c for c in read_cues(clause) if "…" not in c.cue), key=lambda c: not c.strong)
    return clause[cues[0].start:cues[0].end] if cues else None


def has_content(segment: str) -> bool:
    """Does ``segment`` name anything (more than function words, filler and boxes)?"""
    words = [w.strip(".:;'\"!?()") for w in re.sub(r"\[\d+\]", " ", segment.lower()).split()]
    return any(w and not re.fullmatch(r"\W+", w) and w not in lx.STOPWORDS
               and w not in lx.FILLER and w not in cw.NEGATORS for w in words)
