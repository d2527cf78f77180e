"""What a clause names: its noun phrases (the concepts), their ``[n]`` references and values.

Given a clause and its operation (see `cues`), `concepts_in` returns one `Draft` per concept:
"keep his face and beard" → face, beard; "switch between the leather jacket [1] and the striped
jacket [2]" → jacket, with two values bound to boxes 1 and 2. Values are read from "between A
and B", "from A to B", "either A or B", "(A / B)", ": A / B" and "such as A or B".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import lexicon as lx
from .cues import strip_cues
from .schema import Operation

REFERENCE = re.compile(r"\[(\d+)\]")  # "[n]": reference box n
# Multi-word nouns kept whole through the stopword filter ("time of day").
_MULTIWORD = sorted({p for p in (*lx.IMAGERY_NOUNS, *lx.DEFAULT_VALUES) if " " in p},
                    key=len, reverse=True)
_VALUE_PATTERNS = (
    re.compile(r"\bbetween\s+(?P<a>.+?)\s+and\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(r"\bfrom\s+(?P<a>.+?)\s+to\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(r"\beither\s+(?P<a>.+?)\s+or\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(r"\((?P<list>[^)]*(?:/|,|\bor\b)[^)]*)\)", re.IGNORECASE),
    re.compile(r":\s*(?P<list>[^:]*(?:/|\bor\b)[^:]*)$", re.IGNORECASE),
    re.compile(r"\b(?:such as|like|eg|for example|including)\s+(?P<list>.+)$", re.IGNORECASE),
)


@dataclass
class Draft:
    """A concept as read from the text, before classification and validation."""

    name: str  # lower-case label, e.g. "hair colour"
    operation: Operation
    source: str  # the sentence it was read from
    references: list[int] = field(default_factory=list)  # [n] written after it
    values: list[tuple[str, list[int]]] = field(default_factory=list)  # (text, [n]) per value


def concepts_in(clause: str, operation: Operation, sentence: str, previous: str = ""
                ) -> list[Draft]:
    """The concepts ``clause`` applies ``operation`` to. ``previous`` is the last concept named
    earlier in the sentence, which "its colour" refers to."""
    text = _reorder_of_phrases(clause)
    text, values = _extract_values(text)
    items = _noun_phrases(strip_cues(text), previous)
    drafts = [Draft(name, operation, sentence, refs) for name, refs in items]
    if values and operation is Operation.MODIFY:
        if not drafts:
            drafts = [Draft(_common_head([v for v, _ in values]), operation, sentence)]
        drafts[0].values = values
    elif values:  # "keep the red and blue scarves (A / B)": values read as more concepts
        drafts += [Draft(v, operation, sentence, refs) for v, refs in values]
    return drafts


def _reorder_of_phrases(text: str) -> str:
    """'the colour of his hair' → 'hair colour', so attributes read object-first."""
    attributes = "|".join(a for a in lx.ATTRIBUTE_NOUNS if a != "style")
    determiners = "the|his|her|its|their|my|our|your|these|those|this|that|a|an"
    return re.sub(rf"\b({attributes})\s+of\s+(?:(?:{determiners})\s+)?([a-z][\w\-]*)",
                  r"\2 \1", text, flags=re.IGNORECASE)


def _extract_values(text: str) -> tuple[str, list[tuple[str, list[int]]]]:
    """(``text`` without its value list, the distinct values) for the first value pattern
    that yields two or more values; else (``text``, [])."""
    for pattern in _VALUE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        if "list" in match.groupdict():
            raw = re.split(r"\s*(?:/|,|\bor\b|\band\b)\s*", match.group("list"))
        else:
            raw = [match.group("a"), match.group("b")]
        values = [v for v in (_value(r) for r in raw) if v[0]]
        if len(values) >= 2:
            unique = [v for i, v in enumerate(values) if v[0] not in {u for u, _ in values[:i]}]
            return text[:match.start()] + " " + text[match.end():], unique
    return text, []


def _value(raw: str) -> tuple[str, list[int]]:
    refs = [int(n) for n in REFERENCE.findall(raw)]
    words = REFERENCE.sub(" ", raw).strip(" ,.").split()
    while words and words[0].lower() in lx.STOPWORDS:
        words = words[1:]
    return " ".join(words).lower(), refs


def _noun_phrases(text: str, previous: str = "") -> list[tuple[str, list[int]]]:
    """Split what is left of a clause into noun phrases, each with the [n] refs after it.

    "its shape" names the shape of the noun before it (in this clause, else ``previous``, the
    sentence's last concept), and a bare colour word describes the noun before it ("her hair
    should always be red" → "red hair"); both replace that noun rather than adding a concept.
    """
    lowered = text.lower()
    for phrase in _MULTIWORD:  # protect "time of day" from the stopword filter
        lowered = re.sub(rf"\b{re.escape(phrase)}\b", phrase.replace(" ", "_"), lowered)
    items: list[tuple[str, list[int]]] = []
    for chunk in re.split(r"\s*(?:,|&|\band\b|\bor\b|\bas well as\b|\bplus\b)\s*", lowered):
        refs = [int(n) for n in REFERENCE.findall(chunk)]
        raw = [w.strip(".:;'\"!?()") for w in REFERENCE.sub(" ", chunk).split()]
        raw = [w for w in raw if w and not re.fullmatch(r"\W+", w)]
        name = " ".join(w.replace("_", " ") for w in _head_words(raw))
        if not name:
            if refs and items:
                items[-1][1].extend(refs)
            continue
        owner = items[-1][0] if items else previous
        if raw[0] in lx.POSSESSIVES and name in lx.ATTRIBUTE_NOUNS and owner:
            name = f"{owner} {name}"
        elif name in lx.COLOUR_WORDS and items:
            name = f"{name} {owner}"
        else:
            items.append((name, refs))
            continue
        if items and owner == items[-1][0]:
            items[-1] = (name, items[-1][1] + refs)
        else:
            items.append((name, refs))
    return _distribute_objects(items)


def _head_words(words: list[str]) -> list[str]:
    """Content words of a noun phrase: stop at a preposition once a noun has been seen ("the
    tattoo on his arm" → tattoo), drop function words and trailing adverbs."""
    kept: list[str] = []
    for word in words:
        if word in lx.PHRASE_BREAKS and kept:
            break
        if word not in lx.STOPWORDS and word not in lx.PHRASE_BREAKS:
            kept.append(word)
    while kept and kept[-1].endswith("ly") and len(kept[-1]) > 4:
        kept.pop()
    return kept


def _distribute_objects(items: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """'hair colour and length' → 'hair colour', 'hair length'."""
    out: list[tuple[str, list[int]]] = []
    for name, refs in items:
        previous = out[-1][0].split() if out else []
        if (name in lx.ATTRIBUTE_NOUNS and name not in lx.OBJECT_OF and len(previous) >= 2
                and previous[-1] in lx.ATTRIBUTE_NOUNS):
            name = " ".join([*previous[:-1], name])
        out.append((name, refs))
    return out


def _common_head(values: list[str]) -> str:
    """The concept a bare value list is about: the values' shared last word, else the first's
    ("red jacket / blue jacket" → jacket)."""
    heads = {v.split()[-1] for v in values if v}
    return heads.pop() if len(heads) == 1 else values[0].split()[-1]
