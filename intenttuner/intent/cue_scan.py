"""Finding the cue phrasings in a clause: where each one is, not yet what it means (`cues`).

A cue is a phrasing of ``cue_words.OPERATION_CUES`` matched on whole words (the longest one at a
place wins), a two-part cue of ``SPLIT_CUES`` around its concept ("keep the text out"), or a
choice ("can be", with the "or" of its values after it).

Descriptions can be long, so all of it is linear in the clause: cues are looked up by their
first two words, not tried one by one at every word; a two-part cue's first part is looked for
only within the words its gap allows; what several steps need (word starts, where negation
scopes end) is found once per clause; and a clause's matches are cached, because the clause
splitter asks about the same text many times.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from functools import cache, lru_cache

from . import cue_words as cw
from .schema import Operation

# (operation, start, end, cue) of one cue found in a clause; start/end index the clause. A
# two-part cue gives one entry per part, both named "<first>…<second>@<where the first is>".
# The matches of a clause never overlap, so sorted by start they are sorted by end too.
CueMatch = tuple[Operation, int, int, str]
# Where a negation's scope ends: a new part of the clause begins.
SCOPE_END = re.compile(r"[,;:]|\s[-–—]+\s|—|\b(?:and|but|then)\b")
_WORD_START = re.compile(r"(?<![\w'])[\w']")
_WORD = re.compile(r"[\w']+")
_TOKEN = re.compile(r"\S+")
_WORD_CHAR = re.compile(r"[\w']")
# An "or" among the next few words (values, commas, boxes): what makes "can be" / "either" a
# choice. Bounded, so it never scans far.
_OR_FOLLOWS = r"(?=(?:\s*,?\s+(?:[\w'-]+|\[\d+\])){1,12}?\s+or(?![\w']))"
_CHOICE = re.compile(rf"(?:{'|'.join(map(re.escape, cw.CHOICE_CUES))})(?![\w']){_OR_FOLLOWS}")
OR_AFTER = re.compile(_OR_FOLLOWS)


class Scan:
    """A lowered clause and what the cue helpers look up in it, each found once."""

    def __init__(self, lowered: str) -> None:
        self.lowered = lowered
        self._tokens: list[int] | None = None
        self._scope_ends: list[int] | None = None

    def tokens(self) -> list[int]:
        """Where each whitespace-separated word starts."""
        if self._tokens is None:
            self._tokens = [m.start() for m in _TOKEN.finditer(self.lowered)]
        return self._tokens

    def part_start(self, position: int) -> int:
        """Where the part of the clause holding ``position`` begins (after its last scope end)."""
        if self._scope_ends is None:
            self._scope_ends = [m.end() for m in SCOPE_END.finditer(self.lowered)]
        i = bisect_right(self._scope_ends, position) - 1
        return self._scope_ends[i] if i >= 0 else 0

    def words_before(self, position: int, count: int) -> int:
        """Where the ``count``-th word before ``position`` starts (0 when there are fewer)."""
        tokens = self.tokens()
        i = bisect_left(tokens, position)
        return tokens[i - count] if i >= count else 0

    def modal_before(self, position: int) -> bool:
        """Is there a "should" / "must" / "always" / negator in this part of the clause, before
        ``position``?"""
        found = _modal_pattern().search(self.lowered, self.part_start(position), position)
        return found is not None


@lru_cache(maxsize=1024)
def matches(clause: str) -> tuple[CueMatch, ...]:
    """Every cue in ``clause``, in order; a longer cue wins over the shorter ones inside it,
    and two cues of one operation that overlap are one ("can be whatever I ask for")."""
    lowered = clause.lower()
    scan = Scan(lowered)
    found = _split_matches(scan)
    parts = iter(sorted(found, key=lambda f: f[1]))  # a single cue inside one is no cue
    part = next(parts, None)
    single: list[CueMatch] = []
    for word in _WORD_START.finditer(lowered):
        start = word.start()
        m = _single_at(lowered, start)
        if m is None:
            continue
        operation, end, cue = m
        while part is not None and part[2] <= start:
            part = next(parts, None)
        if part is not None and part[1] < end:
            continue
        if single and single[-1][2] > start:  # overlaps the cue before
            last = single[-1]
            if last[0] is operation and end > last[2]:
                single[-1] = (operation, last[1], end, last[3])
            continue
        single.append((operation, start, end, cue))
    return tuple(sorted(found + single, key=lambda f: f[1]))


def _single_at(lowered: str, start: int, limit: int | None = None
               ) -> tuple[Operation, int, str] | None:
    """(operation, end, cue) of the longest cue at ``start`` (ending by ``limit``, as if the
    text ended there), else of a choice with its "or" (only when there is no ``limit``)."""
    word = _WORD.match(lowered, start)
    by_next = _cue_index().get(word.group(0) if word else "")
    if by_next is None:
        candidates: tuple[str, ...] = ()
    else:  # the next word is one separator on: "the prompt", "on-model"
        following = _WORD.match(lowered, word.end() + 1) if word else None
        candidates = by_next.get(following.group(0) if following else None, by_next[None])
    for cue in candidates:
        end = start + len(cue)
        if limit is not None and end > limit:
            continue
        if lowered.startswith(cue, start) and (end == limit
                                               or not _WORD_CHAR.match(lowered, end)):
            return operation_by_cue()[cue], end, cue
    choice = _CHOICE.match(lowered, start) if limit is None else None
    if choice:
        return Operation.MODIFY, choice.end(), choice.group(0)
    return None


def _split_matches(scan: Scan) -> list[CueMatch]:
    """Two-part cues ("keep ... out"): the second part, then the nearest first part before it,
    with at most the cue's gap of words between and no comma or other cue in the gap. The first
    part is looked for only among the words the gap allows, so this stays linear."""
    lowered = scan.lowered
    found: list[CueMatch] = []
    spans: list[tuple[int, int]] = []  # the parts found, sorted (they never overlap)
    for first_pattern, second_pattern, operation, gap, first_words in _split_patterns():
        for second in second_pattern.finditer(lowered):
            window = scan.words_before(second.start(), gap + first_words + 1)
            first = None
            for candidate in first_pattern.finditer(lowered, window, second.start()):
                first = candidate  # zero-width matches, in order: the last is the nearest
            if first is None:
                continue
            first_start, first_end = first.start(), first.start() + len(first.group(1))
            between = lowered[first_end:second.start()]
            allow_commas = operation is not Operation.DELETE
            if (not between.strip() or len(between.split()) > gap
                    or re.search(r"[;:.!?]" if allow_commas else r"[,;:.!?]", between)
                    or _has_single_cue(lowered, first_end, second.start())):
                continue
            i = bisect_left(spans, (second.end(), -1))
            if i > 0 and spans[i - 1][1] > first_start:
                continue  # overlaps a two-part cue already found
            spans[i:i] = [(first_start, first_end), (second.start(), second.end())]
            label = f"{first.group(1)}…{second.group(0)}@{first_start}"  # one per pair
            found += [(operation, first_start, first_end, label),
                      (operation, second.start(), second.end(), label)]
    return found


def _has_single_cue(lowered: str, start: int, end: int) -> bool:
    """Does a single cue lie wholly within ``lowered[start:end]``?"""
    return any(_single_at(lowered, word.start(), end) is not None
               for word in _WORD_START.finditer(lowered, start, end))


@cache
def _split_patterns() -> tuple[tuple[re.Pattern[str], re.Pattern[str], Operation, int, int],
                               ...]:
    """Per two-part cue: its first parts (zero-width, so overlapping ones are all found, the
    matched text in group 1), its second parts, operation, gap and most words of a first part."""
    out = []
    for firsts, seconds, operation, gap in cw.SPLIT_CUES:
        first = "|".join(map(re.escape, sorted(firsts, key=len, reverse=True)))
        second = "|".join(map(re.escape, sorted(seconds, key=len, reverse=True)))
        out.append((re.compile(rf"(?<![\w'])(?=({first})(?![\w']))"),
                    re.compile(rf"(?<![\w'])(?:{second})(?![\w'])"), operation, gap,
                    max(len(f.split()) for f in firsts)))
    return tuple(out)


@cache
def operation_by_cue() -> dict[str, Operation]:
    return {cue: op for op, cues in cw.OPERATION_CUES.items() for cue in cues}


@cache
def _cue_index() -> dict[str, dict[str | None, tuple[str, ...]]]:
    """The cues by their first word, then by their second (None: the one-word cues), longest
    first, so the longest cue at a place wins and few are tried ("the" starts hundreds). Each
    list under a second word holds the one-word cues too."""
    index: dict[str, dict[str | None, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cue in operation_by_cue():
        words = _WORD.findall(cue)
        index[words[0]][words[1] if len(words) > 1 else None].append(cue)
    out: dict[str, dict[str | None, tuple[str, ...]]] = {}
    for first, by_next in index.items():
        alone = by_next.get(None, [])
        out[first] = {second: tuple(sorted({*cues, *alone}, key=len, reverse=True))
                      for second, cues in by_next.items()}
        out[first].setdefault(None, ())
    return out


@cache
def _modal_pattern() -> re.Pattern[str]:
    return re.compile(rf"(?<![\w'])(?:{'|'.join(map(re.escape, cw.MODALS))})(?![\w'])")


@cache
def negator_pattern() -> re.Pattern[str]:
    negators = sorted(cw.NEGATORS, key=len, reverse=True)
    return re.compile(rf"(?<![\w'])(?:{'|'.join(map(re.escape, negators))})(?![\w'])",
                      re.IGNORECASE)
