"""Caption text as the refiner sees it: cleaned of captioner artefacts and split into phrases.

Captioners write either one noun phrase ("arafed man in a black leather jacket standing on a
street", BLIP) or a few sentences ("The image shows a man with short black hair and a beard,
wearing a black leather jacket. He is standing in front of a brick wall.", Florence-2). The
refiner removes and adds whole *phrases*, so a caption is cut where a new thing begins:

- at sentence ends, semicolons and commas;
- before "and" / "or" when a new noun phrase follows ("... black hair | and a beard"), but not
  between adjectives ("a black and white photo");
- before "with", "wearing", "holding"... (a participle), and before a preposition that does not
  follow a verb ("a man | in a black jacket", but "standing on a street" and "looking directly
  at the camera" stay whole);
- at a clause: a copula before a participle ("the dog | lying on a floor", "short hair | and is
  wearing ...") and "has" after a subject ("the man | with short hair"), so Florence-2's
  sentences become phrases like BLIP's.

Florence-2's filler goes first: openers ("The image is", "She has"), "in the image", "it appears
to be"; a piece never ends on a word that joins it to nothing ("... and is", "... and").

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
    r"(?:shows|is of|features|depicts|contains|appears to be|has|is)\b|this (?:is|image shows) |"
    r"there (?:is|are) |(?:he|she|they|it) (?:is|are|has|have) |(?:he|she|they|it) (?=\w+ing\b))"
    r"\s*", re.IGNORECASE)
# Florence-2 places its subject "in the image"; that says nothing about the picture either.
_IN_THE_IMAGE = re.compile(r"\s*\b(?:in|of|from) (?:the|this) (?:image|picture|photo(?:graph)?)\b",
                           re.IGNORECASE)
# Openers of a comma-separated piece: "..., but it appears to be a city street".
_PIECE_OPENERS = re.compile(r"^(?:(?:and|but) )?(?:(?:it|which|this) (?:appears|seems) to be )?",
                            re.IGNORECASE)
# A captioner's own framing ("a close up of ...", "close-up shot of ..."), replaced by ours.
_CLOSE_UP = re.compile(r"^(?:an? )?(?:extreme )?close[- ]?up"
                       r"(?: view| shot| photo(?:graph)?| portrait| image| picture)?(?: of)?\s*",
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
COPULAS = frozenset("is are was were".split())
# Words that join a piece to what was cut off ("short hair and is", "that"): never its edge.
_LEADING = frozenset("and or but".split()) | COPULAS
_TRAILING = _LEADING | frozenset("has have with that which who".split())
# Words that say nothing on their own: what a cut leaves of a phrase must hold another word.
FUNCTION_WORDS = DETERMINERS | PREPOSITION_WORDS | _TRAILING | {"of"}


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
        sentence = _OPENERS.sub("", _IN_THE_IMAGE.sub("", sentence).strip(" ,"))
        # "The man ..." begins a sentence, not a name: as a phrase it is "the man"
        sentence = re.sub(r"^(The|An?) ", lambda m: m.group(1).lower() + " ", sentence)
        pieces: list[str] = []
        for part in re.split(r"\s*,\s*", sentence):
            pieces.extend(_chunk(_PIECE_OPENERS.sub("", part)))
        for position, piece in enumerate(p for p in pieces if words(p)):
            phrases.append(Phrase(piece, s, position))
    return phrases


def _chunk(part: str) -> list[str]:
    tokens = part.split()
    lower = [t.lower().strip(".,") for t in tokens]
    chunks: list[list[str]] = [[]]
    i = 0
    while i < len(tokens):
        prep = _preposition_at(lower, i)
        previous = lower[i - 1] if i else ""
        following = lower[i + 1] if i + 1 < len(tokens) else ""
        word = tokens[i]
        boundary = bool(chunks[-1]) and (
            lower[i] in _STARTERS
            or (_is_participle(lower[i]) and previous not in _VERBS
                and previous not in DETERMINERS)
            or (prep is not None and not _is_verbish(previous) and previous not in _STARTERS
                and not (previous.endswith("ly") and i > 1 and _is_verbish(lower[i - 2])))
            or (lower[i] in ("and", "or") and bool(following)
                and (_starts_noun_phrase(following) or following in COPULAS))
            or (lower[i] in COPULAS and _is_participle(following))  # "the dog | is lying"
            or (lower[i] in ("has", "have") and following not in ("been", "")))
        if boundary:
            chunks.append([])
            if lower[i] in ("has", "have"):
                word = "with"  # "the man has short hair" -> "the man | with short hair"
        width = len(prep.split()) if prep else 1
        chunks[-1].extend([word, *tokens[i + 1:i + width]])
        i += width
    return [" ".join(c) for c in (_tidy(c) for c in chunks) if c]


def _tidy(chunk: list[str]) -> list[str]:
    """``chunk`` without the joining words at its edges (the leading "and" of a split, the
    "and is" Florence-2 ends a piece on); empty when nothing else is left."""
    while chunk and chunk[0].lower().strip(".,") in _LEADING:
        chunk = chunk[1:]
    while chunk and chunk[-1].lower().strip(".,") in _TRAILING:
        chunk = chunk[:-1]
    return chunk


def trim(tokens: list[str]) -> list[str]:
    """What a cut left of a phrase: no dangling function words at its edges ("a photo of" ->
    "a photo"), and nothing at all when only function words are left ("on his")."""
    tokens = _tidy(tokens)
    while tokens and tokens[-1].lower() in FUNCTION_WORDS:
        tokens = tokens[:-1]
    return tokens if any(w not in FUNCTION_WORDS for w in words(" ".join(tokens))) else []


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
