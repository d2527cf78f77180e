"""Splitting a description into sentences, and sentences into clauses of one instruction each.

"Keep the face and remove the watermark" is two clauses; "a red and blue scarf" is one: "and"
and "," split only between two parts that each carry a strong operation cue (see `cues`).
"""

from __future__ import annotations

import re

from .cues import has_strong_cue


def normalise(text: str) -> str:
    """Straight quotes, abbreviations without their dots ("e.g." → "eg"), single spaces."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"\b(e\.g|i\.e|etc|vs)\.", lambda m: m.group(1).replace(".", ""), text,
                  flags=re.IGNORECASE)
    return re.sub(r"[ \t]+", " ", text).strip()


def sentences(text: str) -> list[str]:
    """The sentences of a normalised text, without their end punctuation; "[1]." ends one."""
    parts = re.split(r"(?<=[.!?])\s+|\n+|(?<=\])\.\s*", text)
    return [p.strip(" .!?") for p in parts if p and p.strip(" .!?")]


def clauses(sentence: str) -> list[str]:
    """Split at "but"/"while"/";" always, and at "and"/","/"without" only between two
    instructions ("keep the face and remove the watermark", not "a red and blue scarf")."""
    pieces = re.split(r"\s*;\s*|,?\s+(?:but|while|whereas|however)\s+", sentence)
    found: list[str] = []
    for piece in pieces:
        found += _split_between_instructions(piece)
    return [c.strip(" ,") for c in found if c.strip(" ,")]


def _split_between_instructions(piece: str) -> list[str]:
    seps = list(re.finditer(r",\s*and\s+|\s+and\s+|,\s*|\s+(?=without\b|with no\b)", piece))
    if not seps:
        return [piece]
    bounds = [0, *(m.start() for m in seps), len(piece)]
    out, start = [], 0
    for i, sep in enumerate(seps):
        left = piece[start:sep.start()]
        right = piece[sep.end():bounds[i + 2]]
        if has_strong_cue(left) and has_strong_cue(right):
            out.append(left)
            start = sep.end()
    out.append(piece[start:])
    return out
