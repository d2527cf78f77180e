"""Splitting a description into sentences, and sentences into clauses of one instruction each.

A hedged or many-part sentence is split before it is classified, so each clause carries its own
operation:

- always at ";", "but", "while", "whereas", "however", "although", "as long as", "except"
  ("keep everything but the logo" leaves "the logo" unplaced rather than guess what it means);
- a parenthesis with a cue of its own is a clause ("keep the dog (the collar can change)");
- at "," / "and" / a dash / "without" / a bare "no" or "never" only between two different
  instructions, at the place the words say: "X and Y are what counts, A and B can change" splits
  after "counts" (the first cue ends its part), "keep the face and remove the logo" before
  "remove" (the second opens its part, negator included), "keep the face no hat" before "no",
  "a red and blue scarf" not at all;
- at a comma before the first strong cue when what comes before is a part of its own: one with
  only a weak cue ("her eyes should always be green, pose doesn't matter"), or one saying what
  is trained or what is ("superhero landing pose [1], the person doing it can change", "Train
  a lora on Tokyo streets, keep the neon signs"), but not a list ("the hat, the scarf and the
  gloves can change");
- a bare negation's list ends at a comma before an item that is no usual deletion: "no
  gradients, soft shadows" removes the gradients only, "no text, watermarks and logos" all three.

A part that leans on the one before takes its cue (see `ellipses`): "the dress matters, the
shoes don't" (the shoes don't matter), "keep the jacket but not the hat", "the face shouldn't
change, the hair should" (the hair changes). A part that states a fact ("they are in the
corners") is its own clause, so it adds nothing to an instruction.

Long descriptions stay fast: separators are found once per piece and looked up by bisection.
A sentence that only adds a box to what the one before named ("It [1] never changes.", "Remove
it.") is read with that sentence, so the pronoun can mean its last concept.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right

from . import cue_words as cw
from . import lexicon as lx
from .cues import Cue, is_context, operation_of, read_cues
from .ellipses import complete_ellipses, leans_on_before
from .ellipses import has_content as _has_content
from .phrases import OWNS, concepts_in
from .schema import Operation

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
# A bare "no" or "never" opens an instruction ("keep the face no hat", "keep the jacket never
# the cap"), but not where it belongs to the words before: "the dog has no collar" (the dog owns
# it), "the dog never has a collar" (a "never" before a verb has its subject before it).
_NEGATION_OPENS = (r"(?<!\bhas)(?<!\bhave)(?<!\bhad)(?<!\bwith)(?<!\bwear)(?<!\bwears)"
                   r"\s+(?=no\b(?!\s+longer\b))"
                   r"|\s+(?=never\s+(?:the|a|an|any|his|her|their|its|my|your|this|that)\b)")
_SEPARATOR = re.compile(r",\s*(?:and|then|plus)\s+|\s*[,;]\s*|\s+[-–]+\s+|\s*—\s*|\s+and\s+"
                        r"|\s+then\s+"
                        r"|\s+(?=(?:without|with no|no matter|regardless of|whatever)\b)|"
                        + _NEGATION_OPENS, re.IGNORECASE)
_ASIDE = re.compile(r"\s*\(([^()]*)\)")
_PRONOUN_BOX = re.compile(rf"^(?:{'|'.join(sorted(lx.PRONOUNS, key=len, reverse=True))})"
                          r"(?:\s+one)?\s*\[\d+\]", re.IGNORECASE)
# A list goes on after this separator ("the hat, the scarf and the gloves can change").
_LISTING = re.compile(r"\b(?:and|or|plus)\b|&", re.IGNORECASE)
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
    text = re.sub(r"\[\s*(\d+)\s*\]", r"[\1]", text)  # "[ 1 ]" is box 1 too
    return re.sub(r"[ \t]+", " ", text).strip()


def sentences(text: str) -> list[str]:
    """The sentences of a normalised text, without their end punctuation; "[1]." ends one. A
    sentence that only points a pronoun at the one before stays with it (see module doc)."""
    parts = re.split(r"(?<=[.!?])\s+|\n+|(?<=\])\.\s*", text)
    found: list[list[str]] = []
    # Per sentence: (does it hold a directive, does it hold a cue), kept up as parts join it, so
    # a long run of "It [1] ..." is not read again and again.
    said: list[tuple[bool, bool]] = []
    for part in (p.strip(" .!?") for p in parts if p and p.strip(" .!?")):
        part_said = (_DIRECTIVE.search(part) is not None, operation_of(part) is not None)
        if found and _continues(said[-1], part):
            found[-1].append(part)
            said[-1] = (said[-1][0] or part_said[0], said[-1][1] or part_said[1])
        else:
            found.append([part])
            said.append(part_said)
    return [". ".join(joined) for joined in found]


def clauses(sentence: str) -> list[str]:
    """The sentence's clauses, one instruction each (see the module docstring)."""
    sentence, asides = _take_asides(sentence)
    found: list[str] = []
    for piece in [*_always_split(sentence), *asides]:
        for part in _split_ellipsis(piece):
            found += _end_negation_scope(part)
    found = [c.strip(" ,-–—") for c in found]
    return complete_ellipses(_keep_pronoun_boxes([c for c in found if c]))


def _same_case(original: str, replacement: str) -> str:
    return replacement[0].upper() + replacement[1:] if original[0].isupper() else replacement


def _continues(previous: tuple[bool, bool], part: str) -> bool:
    """Is ``part`` only about what the sentence before named: "It [1] ..." after an instruction,
    or "It must stay the same" / "Remove it" (a cue, but nothing named of its own)?
    ``previous``: does that sentence hold a directive, does it hold a cue."""
    directive, instruction = previous
    if directive:
        return False
    if _PRONOUN_BOX.match(part):
        return instruction
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
    don't", see `ellipses`) or only state a fact ("remove the date, it is in the
    corner") are parts of their own; the rest is split as usual."""
    parts: list[str] = []
    start = 0
    for comma in re.finditer(r",\s*(?:and\s+)?", piece):
        end = piece.find(",", comma.end())
        tail = piece[comma.end():end if end >= 0 else len(piece)]
        if read_cues(tail) or _PRONOUN_BOX.match(tail):
            continue
        if leans_on_before(tail) or _STATEMENT.match(tail):
            parts += [*_split_between_instructions(piece[start:comma.start()]), tail]
            start = comma.end() + len(tail)
    return [*parts, *_split_between_instructions(piece[start:])]


def _split_between_instructions(piece: str) -> list[str]:
    """Cut between consecutive cues of different operations, at the separator the words point
    to (see the module docstring); one piece when there is no such pair. Separators are found
    by bisection, so a long piece with many cues stays linear."""
    seps = list(_SEPARATOR.finditer(piece))
    sep_starts, sep_ends = [s.start() for s in seps], [s.end() for s in seps]
    strong_ends = [s.end() for s in seps if _is_strong(s)]
    found = read_cues(piece)
    cues = [c for c in found if c.strong or _leads_part(piece, c, strong_ends)]
    cuts: list[re.Match[str]] = []
    lead = _lead_cut(piece, found, cues, seps)
    if lead is not None:
        cuts.append(lead)
    for first, second in zip(cues, cues[1:], strict=False):
        after = cuts[-1].end() if cuts else 0
        lo = bisect_left(sep_starts, max(first.end, after))
        between = seps[lo:max(lo, bisect_right(sep_ends, second.start))]
        if not between:
            continue
        if first.operation is not second.operation:
            opening = _opening(piece, between, second.start)
            cuts.append(_choose_cut(piece, first, between, opening))
            continue
        # Two instructions alike: "keep X and never change its Y". Only at a written
        # separator: "never without her scarf" has no cut before "without".
        opening = _opening(piece, [s for s in between if s.group(0).strip()], second.start)
        if opening is not None and _has_content(piece[first.end:opening.start()]):
            cuts.append(opening)
    bounds = [0, *(x for c in cuts for x in (c.start(), c.end())), len(piece)]
    return [piece[bounds[i]:bounds[i + 1]] for i in range(0, len(bounds), 2)]


def _lead_cut(piece: str, found: list[Cue], cues: list[Cue], seps: list[re.Match[str]]
              ) -> re.Match[str] | None:
    """The strong comma before the piece's first strong cue, when what comes before it is a
    part of its own: one with only a weak cue ("her eyes should always be green, pose doesn't
    matter"), or one that says what is trained or what is, when the cue has its own concept
    ("superhero landing pose [1], the person doing it can change", "the subject is the red
    sneaker [1], laces can be any colour") or opens its part ("Train a lora on Tokyo streets,
    keep the neon signs"). A plain noun phrase is not one: "the hat, the scarf and the gloves
    can change" is a list, "oil painting style like van gogh, brushstrokes are what matters"
    one instruction. None when there is no such part."""
    if not cues or not cues[0].strong:
        return None
    cue = cues[0]
    i = bisect_right([s.end() for s in seps], cue.start)
    strong = [s for s in seps[:i] if _is_strong(s)]
    if not strong or not _has_content(piece[:strong[-1].start()]):
        return None
    sep = strong[-1]
    earlier, own = piece[:sep.start()], piece[sep.end():cue.start]
    if any(c.start < sep.start() for c in found):  # a weak cue of its own
        return sep if _has_content(own) else None
    said = is_context(earlier) or _STATEMENT.match(earlier) is not None
    listing = _LISTING.search(sep.group(0)) or _LISTING.search(own)
    return sep if said and not listing else None


def _choose_cut(piece: str, first: Cue, between: list[re.Match[str]],
                opening: re.Match[str] | None) -> re.Match[str]:
    if not _has_content(piece[first.end:between[0].start()]):
        return between[0]  # the first cue ends its part: "X is what counts, A can change"
    if opening is not None:
        return opening  # the second opens its part: "keep the face and remove the logo"
    strong = [s for s in between if _is_strong(s)]
    return (strong or between)[-1]  # "keep the face, the hair can change"


def _opening(piece: str, between: list[re.Match[str]], end: int) -> re.Match[str] | None:
    """The first separator after which nothing is named before ``end`` (the next cue): where
    that cue's part opens, its negator included ("X never without Y" opens at "never")."""
    opening = None
    for sep in reversed(between):
        if _has_content(piece[sep.end():opening.start() if opening else end]):
            break
        opening = sep
    return opening


def _leads_part(piece: str, cue: Cue, strong_ends: list[int]) -> bool:
    """Does a weak cue open its own comma part ("keep the face, any background"), or the piece
    ("same face every time no glasses")? ``strong_ends``: where the strong separators end."""
    i = bisect_right(strong_ends, cue.start) - 1
    return not _has_content(piece[strong_ends[i] if i >= 0 else 0:cue.start])


def _end_negation_scope(clause: str) -> list[str]:
    """"no A, B" → "no A" | "B" unless B is a usual deletion, has its own cue, or the list is
    one of alternatives ("no A, B or C")."""
    cues = read_cues(clause)
    negation = next((c for c in cues if c.cue in cw.NEGATION_CUES
                     and c.operation is Operation.DELETE), None)  # not "never without"
    if negation is None:
        return [clause]
    if (negation.cue != "never" and cues[0] is negation and _has_content(clause[:negation.start])
            and not OWNS.search(clause, 0, negation.start)
            and not re.match(r"\s+longer\b", clause[negation.end:])):
        # "a plain studio look without the softbox": only the softbox is deleted (but "the dog
        # has no collar" is one instruction: the dog owns the collar, see `phrases`; and so is
        # "the dog no longer has a collar", its negation goes with the verb as "never" does)
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
        # A later part with a cue starts a new instruction. Only the next comma needs a look:
        # when nothing after it has a cue, nothing after any later comma has one either.
        later = commas[i + 1:i + 2]
        if later and read_cues(clause[later[0].end():]):  # "no A, B, remove C": B is left
            cut = later[0]  # alone, "remove C" is read on its own
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


def _all_artefacts(item: str) -> bool:
    words = [w.strip(".:;'\"!?()") for w in re.sub(r"\[\d+\]", " ", item.lower()).split()]
    content = [w for w in words if w and w not in lx.STOPWORDS and w not in lx.FILLER
               and w != "and"]
    return bool(content) and all(w in cw.ARTEFACTS for w in content)


def _is_strong(separator: re.Match[str]) -> bool:
    return bool(re.search(r"[,;—–-]", separator.group(0)))
