"""Splitting a description into sentences, and sentences into clauses of one instruction each.

A hedged or many-part sentence is split before it is classified, so each clause carries its own
operation:

- always at ";", "but", "while", "whereas", "however", "although", "as long as", "except"
  ("keep everything but the logo" leaves "the logo" unplaced rather than guess what it means);
- a parenthesis with a cue of its own is a clause ("keep the dog (the collar can change)");
- at "," / "and" / a dash / "without" only between two different instructions, at the place the
  words say: "X and Y are what counts, A and B can change" splits after "counts" (the first cue
  ends its part), "keep the face and remove the logo" before "remove" (the second opens its
  part), "a red and blue scarf" not at all;
- a bare negation's list ends at a comma before an item that is no usual deletion: "no
  gradients, soft shadows" removes the gradients only, "no text, watermarks and logos" all three.

A part that leans on the one before takes its cue: "the dress matters, the shoes don't" (the
shoes don't matter), "keep the jacket but not the hat", "..., only the cat". A part that states
a fact ("they are in the corners") is its own clause, so it adds nothing to an instruction.
A sentence that only adds a box to what the one before named ("It [1] never changes.", "Remove
it.") is read with that sentence, so the pronoun can mean its last concept.
"""

from __future__ import annotations

import re

from . import cue_words as cw
from . import lexicon as lx
from .cues import Cue, operation_of, read_cues
from .phrases import concepts_in

# Spelled without the apostrophe, these are still negations: "dont change the face".
_CONTRACTIONS = {"dont": "don't", "doesnt": "doesn't", "didnt": "didn't", "shouldnt": "shouldn't",
                 "wouldnt": "wouldn't", "couldnt": "couldn't", "mustnt": "mustn't",
                 "isnt": "isn't", "arent": "aren't", "wasnt": "wasn't", "werent": "weren't",
                 "cant": "can't", "wont": "won't", "hasnt": "hasn't", "havent": "haven't",
                 "im": "i'm", "w/o": "without"}
_ALWAYS = re.compile(r"\s*;\s*|\.\s+|,?\s+(?:but|while|whereas|however|although|though|even "
                     r"though|as long as|so long as|provided that|except that|except)\s+",
                     re.IGNORECASE)
_LEADING = re.compile(r"^(?:although|though|even though|while|whereas|as long as|so long as)\s+",
                      re.IGNORECASE)
# Where a sentence may be cut between two instructions (see `_split_between_instructions`).
_SEPARATOR = re.compile(r",\s*(?:and|then|plus)\s+|\s*[,;]\s*|\s+[-–]+\s+|\s*—\s*|\s+and\s+"
                        r"|\s+then\s+"
                        r"|\s+(?=(?:without|with no|no matter|regardless of|whatever)\b)",
                        re.IGNORECASE)
_ASIDE = re.compile(r"\s*\(([^()]*)\)")
_PRONOUN_BOX = re.compile(rf"^(?:{'|'.join(sorted(lx.PRONOUNS, key=len, reverse=True))})"
                          r"(?:\s+one)?\s*\[\d+\]", re.IGNORECASE)
# Clauses that only negate, or only narrow, the clause before ("the shoes don't", "not the face",
# "only the cat"); see `_complete_ellipses`.
_TRAILING_NEGATION = re.compile(
    r"\b(?:don't|doesn't|do not|does not|isn't|aren't|is not|are not|can't|cannot|won't"
    r"|shouldn't|should not|mustn't|must not|not|needn't|less so)"
    r"(?:\s+(?:have|has|need|needs)\s+to|\s+(?:so|as|that)\s+much|\s+really|\s+either"
    r"|\s+at all)?$", re.IGNORECASE)
_LEADING_NOT = re.compile(r"^(?:but\s+)?not\s+", re.IGNORECASE)
_LEADING_ONLY = re.compile(r"^(?:but\s+)?only\s+", re.IGNORECASE)
# A part that says what something is, with no instruction: "they are in the corners".
_STATEMENT = re.compile(r"^(?:it|they|he|she|this|that|these|those|there)\s+(?:is|are|was|were"
                        r"|has|have|had|looks|look|sits|sit|seems|seem)\b|^(?:it's|they're|he's"
                        r"|she's|there's|that's)\b", re.IGNORECASE)
_DIRECTIVE = re.compile(r"\b(?:trigger words?|trigger|token|domain)\s*(?::|=|\bis\b)",
                        re.IGNORECASE)


def normalise(text: str) -> str:
    """Straight quotes, abbreviations without their dots ("e.g." → "eg"), apostrophes put back
    ("dont" → "don't"), single spaces."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"\b(e\.g|i\.e|etc|vs)\.", lambda m: m.group(1).replace(".", ""), text,
                  flags=re.IGNORECASE)
    text = re.sub(rf"(?<![\w'])({'|'.join(map(re.escape, _CONTRACTIONS))})(?![\w'])",
                  lambda m: _same_case(m.group(1), _CONTRACTIONS[m.group(1).lower()]), text,
                  flags=re.IGNORECASE)
    return re.sub(r"[ \t]+", " ", text).strip()


def sentences(text: str) -> list[str]:
    """The sentences of a normalised text, without their end punctuation; "[1]." ends one. A
    sentence that only points a pronoun at the one before stays with it (see module doc)."""
    parts = re.split(r"(?<=[.!?])\s+|\n+|(?<=\])\.\s*", text)
    found: list[str] = []
    for part in (p.strip(" .!?") for p in parts if p and p.strip(" .!?")):
        if found and _continues(found[-1], part):
            found[-1] = f"{found[-1]}. {part}"
        else:
            found.append(part)
    return found


def clauses(sentence: str) -> list[str]:
    """The sentence's clauses, one instruction each (see the module docstring)."""
    sentence, asides = _take_asides(sentence)
    found: list[str] = []
    for piece in [*_always_split(sentence), *asides]:
        for part in _split_ellipsis(piece):
            found += _end_negation_scope(part)
    found = [c.strip(" ,-–—") for c in found]
    return _complete_ellipses(_keep_pronoun_boxes([c for c in found if c]))


def _same_case(original: str, replacement: str) -> str:
    return replacement[0].upper() + replacement[1:] if original[0].isupper() else replacement


def _continues(previous: str, part: str) -> bool:
    """Is ``part`` only about what ``previous`` named: "It [1] ..." after an instruction, or
    "It must stay the same" / "Remove it" (a cue, but nothing named of its own)?"""
    if _DIRECTIVE.search(previous):
        return False
    if _PRONOUN_BOX.match(part):
        return operation_of(previous) is not None
    return _only_pronoun(part)


def _take_asides(sentence: str) -> tuple[str, list[str]]:
    """Parentheses that give an instruction of their own, taken out as clauses, when the rest
    of the sentence gives one too ("keep the dog (the collar can change)"). Value lists
    ("(A / B)") and box pointers ("(see [2])") stay where they are."""
    outside = _ASIDE.sub(" ", sentence)
    if not any(c.strong for c in read_cues(outside)):
        return sentence, []
    asides = [m for m in _ASIDE.finditer(sentence)
              if any(c.strong for c in read_cues(m.group(1)))]
    for m in reversed(asides):
        sentence = sentence[:m.start()] + sentence[m.end():]
    return sentence, [m.group(1) for m in asides]


def _always_split(sentence: str) -> list[str]:
    sentence = _LEADING.sub("", sentence)
    return [_LEADING.sub("", p.strip(" ,")) for p in _ALWAYS.split(sentence)]


def _split_ellipsis(piece: str) -> list[str]:
    """Comma parts without a cue that lean on the part before ("the dress matters, the shoes
    don't", see `_complete_ellipses`) or only state a fact ("remove the date, it is in the
    corner") are parts of their own; the rest is split as usual."""
    parts: list[str] = []
    start = 0
    for comma in re.finditer(r",\s*(?:and\s+)?", piece):
        end = piece.find(",", comma.end())
        tail = piece[comma.end():end if end >= 0 else len(piece)]
        if read_cues(tail) or _PRONOUN_BOX.match(tail):
            continue
        leaning = (_TRAILING_NEGATION.search(tail) or _LEADING_NOT.match(tail)
                   or _LEADING_ONLY.match(tail))
        if leaning or _STATEMENT.match(tail):
            parts += [*_split_between_instructions(piece[start:comma.start()]), tail]
            start = comma.end() + len(tail)
    return [*parts, *_split_between_instructions(piece[start:])]


def _split_between_instructions(piece: str) -> list[str]:
    """Cut between consecutive cues of different operations, at the separator the words point
    to (see the module docstring); one piece when there is no such pair."""
    seps = list(_SEPARATOR.finditer(piece))
    cues = [c for c in read_cues(piece) if c.strong or _leads_part(piece, c, seps)]
    cuts: list[re.Match[str]] = []
    for first, second in zip(cues, cues[1:], strict=False):
        after = cuts[-1].end() if cuts else 0
        between = [s for s in seps
                   if s.start() >= max(first.end, after) and s.end() <= second.start]
        if not between:
            continue
        if first.operation is not second.operation:
            cuts.append(_choose_cut(piece, first, second, between))
        elif (_has_content(piece[first.end:between[-1].start()])
              and not _has_content(piece[between[-1].end():second.start])):
            cuts.append(between[-1])  # two instructions alike: "keep X and never change its Y"
    bounds = [0, *(x for c in cuts for x in (c.start(), c.end())), len(piece)]
    return [piece[bounds[i]:bounds[i + 1]] for i in range(0, len(bounds), 2)]


def _choose_cut(piece: str, first: Cue, second: Cue, between: list[re.Match[str]]
                ) -> re.Match[str]:
    if not _has_content(piece[first.end:between[0].start()]):
        return between[0]  # the first cue ends its part: "X is what counts, A can change"
    if not _has_content(piece[between[-1].end():second.start]):
        return between[-1]  # the second opens its part: "keep the face and remove the logo"
    strong = [s for s in between if _is_strong(s)]
    return (strong or between)[-1]  # "keep the face, the hair can change"


def _leads_part(piece: str, cue: Cue, seps: list[re.Match[str]]) -> bool:
    """Does a weak cue open its own comma part ("keep the face, any background")?"""
    before = [s for s in seps if s.end() <= cue.start and _is_strong(s)]
    return bool(before) and not _has_content(piece[before[-1].end():cue.start])


def _end_negation_scope(clause: str) -> list[str]:
    """"no A, B" → "no A" | "B" unless B is a usual deletion, has its own cue, or the list is
    one of alternatives ("no A, B or C")."""
    cues = read_cues(clause)
    negation = next((c for c in cues if c.cue in cw.NEGATION_CUES), None)
    if negation is None:
        return [clause]
    if negation.cue != "never" and cues[0] is negation and _has_content(clause[:negation.start]):
        # "a plain studio look without the softbox": only the softbox is deleted
        return [clause[:negation.start], *_end_negation_scope(clause[negation.start:])]
    region = clause[negation.end:]
    if re.search(r"\b(?:or|nor)\b", region, re.IGNORECASE):
        return [clause]
    commas = [m for m in re.finditer(r",\s*(?:and\s+)?", clause) if m.start() >= negation.end]
    for i, comma in enumerate(commas):
        end = commas[i + 1].start() if i + 1 < len(commas) else len(clause)
        item = clause[comma.end():end]
        if read_cues(item) or _all_artefacts(item):
            continue
        rest = clause[comma.end():]
        later = [c for c in commas[i + 1:] if read_cues(clause[c.end():])]
        if later:  # "no A, B, remove C": B is left alone, "remove C" is read on its own
            cut = later[0]
            return [clause[:comma.start()], clause[comma.end():cut.start()],
                    *_end_negation_scope(clause[cut.end():])]
        return [clause[:comma.start()], rest]
    return [clause]


def _keep_pronoun_boxes(found: list[str]) -> list[str]:
    """A clause that only points a pronoun at a box ("it [2] is in the corner") belongs to the
    clause before it, whose concept the pronoun means; so does "remove it" after a clause that
    names a thing but says nothing to do with it ("The watermark in the corner [2]? Remove it")."""
    out: list[str] = []
    for clause in found:
        boxes_only = _PRONOUN_BOX.match(clause) and operation_of(clause) is None
        if out and (boxes_only or (operation_of(out[-1]) is None and _only_pronoun(clause))):
            out[-1] = f"{out[-1]}, {clause}"
        else:
            out.append(clause)
    return out


def _only_pronoun(clause: str) -> bool:
    """An instruction about "it" / "this" / "them" that names nothing itself ("Remove it")."""
    operation = operation_of(clause)
    return (operation is not None and re.search(r"\b(?:it|this|that|them)\b", clause, re.I)
            is not None and not concepts_in(clause, operation, clause))


def _complete_ellipses(found: list[str]) -> list[str]:
    """"The dress matters, the shoes don't" / "keep the jacket but not the hat": a clause that
    only negates gets the cue of the clause before it, so the negation has something to turn."""
    out: list[str] = []
    for clause in found:
        cue = _first_cue_text(out[-1]) if out else None
        if cue and operation_of(clause) is None:
            if _TRAILING_NEGATION.search(clause):
                clause = f"{clause} {cue}"
            elif lead := _LEADING_NOT.match(clause):
                clause = f"{lead.group(0)}{cue} {clause[lead.end():]}"
            elif lead := _LEADING_ONLY.match(clause):  # "X shouldn't be learned, only Y": Y is
                clause = f"{cue} {clause[lead.end():]}"
        out.append(clause)
    return out


def _first_cue_text(clause: str) -> str | None:
    cues = sorted((c for c in read_cues(clause) if "…" not in c.cue), key=lambda c: not c.strong)
    return clause[cues[0].start:cues[0].end] if cues else None


def _all_artefacts(item: str) -> bool:
    words = [w.strip(".:;'\"!?()") for w in re.sub(r"\[\d+\]", " ", item.lower()).split()]
    content = [w for w in words if w and w not in lx.STOPWORDS and w not in lx.FILLER
               and w != "and"]
    return bool(content) and all(w in cw.ARTEFACTS for w in content)


def _has_content(segment: str) -> bool:
    """Does ``segment`` name anything (more than function words, filler and boxes)?"""
    words = [w.strip(".:;'\"!?()") for w in re.sub(r"\[\d+\]", " ", segment.lower()).split()]
    return any(w and not re.fullmatch(r"\W+", w) and w not in lx.STOPWORDS
               and w not in lx.FILLER and w not in cw.NEGATORS for w in words)


def _is_strong(separator: re.Match[str]) -> bool:
    return bool(re.search(r"[,;—–-]", separator.group(0)))
