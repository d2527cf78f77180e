"""Caption text as the refiner sees it: cleaned of captioner artefacts and split into phrases.

Captioners write either one noun phrase ("arafed man in a black leather jacket standing on a
street", BLIP) or a few sentences ("The image shows a man with short black hair and a beard,
wearing a black leather jacket. He is standing in front of a brick wall.", Florence-2). The
refiner removes and adds whole *phrases*, so a caption is cut where a new thing begins:

- at sentence ends, semicolons and commas;
- before "and" / "or" when a new noun phrase follows ("... black hair | and a beard"), but not
  between adjectives ("a black and white photo");
- before "with", "wearing", "holding"... (a participle), and before a preposition that does not
  follow a verb ("a man | in a black jacket", but "standing on a street" stays whole).

A hand-written chunker, not a parser (spaCy, NLTK): captions are short and formulaic, and a
parser would be a 50 MB+ dependency with its own model download for a few dozen rules.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Words BLIP-large emits for no reason (from "araffe"/"arafed" in its training captions).
_ARTEFACTS = re.compile(r"\b(?:ara+f+e*d?|araffe|arafed|arrafed|araf+ed)\b\s*", re.IGNORECASE)
# Sentence openers that say nothing about the picture ("The image shows ...", "there is ...").
_OPENERS = re.compile(
    r"^(?:in this (?:image|picture|photo)(?: we can see)?|the (?:image|picture|photo|photograph) "
    r"(?:shows|is of|features|depicts|contains)|this (?:is|image shows) |there (?:is|are) |"
    r"(?:he|she|they|it) (?:is|are) |(?:he|she|they|it) (?=\w+ing\b))\s*",
    re.IGNORECASE)
# A captioner's own framing ("a close up of ...", "close-up shot of ..."), replaced by ours.
_CLOSE_UP = re.compile(r"^(?:an? )?(?:extreme )?close[- ]?up(?: view| shot| photo)?(?: of)?\s*",
                       re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|[.!?;]+$|\n+")
_WORD = re.compile(r"[\w'’-]+", re.UNICODE)

DETERMINERS = frozenset("a an the his her their its this that these those some two three four "
                        "several many one another".split())
PREPOSITIONS = ("in front of", "next to", "on top of", "close to", "in", "on", "at", "near",
                "by", "under", "behind", "over", "against", "beside", "inside", "outside",
                "above", "below", "across", "along", "around", "between", "among", "from")
PREPOSITION_WORDS = frozenset(p.split()[0] for p in PREPOSITIONS)
_STARTERS = ("with", "wearing", "holding", "carrying", "while", "who", "which", "that")
# Nouns that end in -ing, which must not start a phrase the way a participle does.
_ING_NOUNS = frozenset("""painting paintings drawing drawings clothing building buildings ceiling
earring earrings ring rings string wedding evening morning lighting setting king thing things
something nothing anything everything pudding stocking stockings bedding railing awning icing
frosting landing wing wings swing spring sling ceiling sibling sketching shading rendering
""".split())
_VERBS = frozenset("is are was were be being stands sits lies walks looks poses".split())


@dataclass(frozen=True)
class Phrase:
    """One piece of a caption: its text, its sentence and position (for importance)."""

    text: str
    sentence: int
    position: int  # 0 = first phrase of its sentence

    @property
    def words(self) -> list[str]:
        return words(self.text)


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (apostrophes and hyphens kept inside words)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def normalise(text: str) -> str:
    """NFC Unicode, single spaces, no BLIP artefacts, no control characters."""
    text = unicodedata.normalize("NFC", text or "")
    text = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    text = _ARTEFACTS.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def collapse_repeats(text: str) -> tuple[str, bool]:
    """``text`` with immediately repeated word sequences said once ("a man a man a man" → "a
    man"; "red red red car" → "red car"), and whether anything was repeated. Captioners loop
    like this when beam search degenerates."""
    tokens = text.split()
    changed = False
    size = 1
    while size <= len(tokens) // 2:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            chunk = tokens[i:i + size]
            out.extend(chunk)
            j = i + size
            while [t.lower() for t in tokens[j:j + size]] == [t.lower() for t in chunk]:
                j += size
                changed = True
            i = j
        shrunk = len(out) < len(tokens)
        tokens = out
        size = 1 if shrunk else size + 1
    return " ".join(tokens), changed


def split_phrases(caption: str) -> list[Phrase]:
    """The caption's phrases, in order (rules in the module docstring)."""
    phrases: list[Phrase] = []
    for s, sentence in enumerate(p for p in _SENTENCE_END.split(caption) if p and p.strip()):
        sentence = _OPENERS.sub("", sentence.strip().rstrip(".!?;").strip())
        pieces: list[str] = []
        for part in re.split(r"\s*,\s*", sentence):
            pieces.extend(_chunk(part))
        for position, piece in enumerate(p for p in pieces if words(p)):
            phrases.append(Phrase(piece, s, position))
    return phrases


def _chunk(part: str) -> list[str]:
    tokens = part.split()
    chunks: list[list[str]] = [[]]
    i = 0
    while i < len(tokens):
        lower = [t.lower().strip(".,") for t in tokens]
        prep = _preposition_at(lower, i)
        previous = lower[i - 1] if i else ""
        current = chunks[-1]
        boundary = bool(current) and (
            lower[i] in _STARTERS
            or (_is_participle(lower[i]) and previous not in _VERBS
                and previous not in DETERMINERS)
            or (prep is not None and not _is_verbish(previous) and previous not in _STARTERS)
            or (lower[i] in ("and", "or") and i + 1 < len(tokens)
                and _starts_noun_phrase(lower[i + 1])))
        if boundary:
            if lower[i] in ("and", "or"):
                i += 1  # the conjunction joins nothing once the phrases are separate
            chunks.append([])
        width = len(prep.split()) if prep else 1
        chunks[-1].extend(tokens[i:i + width])
        i += width
    return [" ".join(c) for c in chunks if c]


def _preposition_at(lower: list[str], i: int) -> str | None:
    for prep in PREPOSITIONS:  # longest first
        size = len(prep.split())
        if " ".join(lower[i:i + size]) == prep:
            return prep
    return None


def _is_participle(word: str) -> bool:
    return word.endswith("ing") and len(word) > 4 and word not in _ING_NOUNS


def _is_verbish(word: str) -> bool:
    return word in _VERBS or _is_participle(word) or word.endswith("ed")


def _starts_noun_phrase(word: str) -> bool:
    return word in DETERMINERS or word in _STARTERS or _is_participle(word)


def strip_close_up(text: str) -> str:
    """``text`` without a leading close-up framing ("a close up of a jacket" -> "a jacket")."""
    return _CLOSE_UP.sub("", text)
