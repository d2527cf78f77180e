"""Is a clause without a cue only *context* (who or what is trained), or does it say more?

"I'm training a girl named Aiko", "These are photos of my grandma", "This is a log cabin" say
who or what the trigger word learns: context, read for the domain. "The scarf is a must", "teach
it the logo", "my dog Rex wears a blue collar in most photos" hold a context cue ("is a",
"teach") or a name too, but say something more that the offline parser has no cue for. Taken
for context, that would vanish without a trace; it must go to ``unplaced`` instead, where the
user sees it (and ``on_unplaced="error"`` stops).

`extra_parts` takes out of a clause what only says who is trained: its context cues and the
noun phrase right after each ("a LoRA of *watercolour paintings*", "teach *it*"), the names'
spans with the noun phrase just before them ("*a street artist* known as Zed") and a bracket
right after them ("Aiko (愛子)"), and the subject
nouns with their modifiers ("a *log cabin*"); words that carry nothing ("the", "I'm") do not
count. A comma part of the clause with anything else left is an extra part. Where the photos
were taken ("on the sofa", "at the beach", "from different angles") is context too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import lexicon as lx
from .domains import SUBJECT_NOUNS
from .name_words import NAMING_WORDS

# Words that carry nothing of their own in a context clause.
_EMPTY = (lx.STOPWORDS | lx.FILLER | lx.DETERMINERS | lx.PRONOUNS | lx.META_HEADS | NAMING_WORDS
          | frozenset("""of i new some few couple bunch set series collection pics pic shots
          selfies known as goes by answers aka dataset age aged year years old month months
          """.split()))
_NOUNS = sorted({n for nouns in SUBJECT_NOUNS.values() for n in nouns}, key=len, reverse=True)
_NOUN = re.compile(rf"(?<![\w'])(?:{'|'.join(map(re.escape, _NOUNS))})(?:e?s)?(?![\w'])",
                   re.IGNORECASE)
_CUES = [re.compile(rf"(?<![\w]){re.escape(c)}(?![\w])(?!\s+(?:bit|little|lot|few)\b)",
                    re.IGNORECASE) for c in lx.CONTEXT_CUES]
# Where or when the photos were taken, ending a part: "on the sofa", "over the summer".
_LOCATIVE = re.compile(r"(?:\s+(?:at|on|in|by|near|inside|outside|around|during|over|from|under"
                       r"|across|throughout)\s+(?:(?:the|a|an|my|our|his|her|their|your|some"
                       r"|most|many|all|various|different|several)\s+)?(?:[\w'-]+\s*){1,3})+$",
                       re.IGNORECASE)
_GLOSS = re.compile(r"\s*\([^()]*\)")
_TOKEN = re.compile(r"[\w'-]+|[^\w\s]")


def extra_parts(clause: str, spans: Sequence[str]) -> list[str]:
    """The comma parts of ``clause`` that say more than who or what is trained (see the
    module doc); ``spans`` are the texts of the namings in it ("my dog Rex")."""
    removed = [False] * len(clause)

    def remove(start: int, end: int) -> None:
        removed[start:end] = [True] * (end - start)

    lowered = clause.lower()
    for span in spans:
        for m in re.finditer(re.escape(span), clause):
            remove(*m.span())
            remove(*_phrase_before(clause, m.start()))
            if gloss := _GLOSS.match(clause, m.end()):  # "Aiko (愛子)": the name again
                remove(*gloss.span())
    for cue in _CUES:
        for m in cue.finditer(lowered):
            remove(*m.span())
            remove(*_phrase_after(clause, m.end()))
    for m in _NOUN.finditer(clause):
        remove(*m.span())
        remove(*_phrase_before(clause, m.start(), limit=2))
    extra = []
    for part in re.finditer(r"[^,;]+", clause):
        left = "".join(c if not removed[i] else " " for i, c in enumerate(
            clause[part.start():part.end()], part.start()))
        left = _LOCATIVE.sub(" ", " " + left.rstrip())
        words = [w for w in re.findall(r"[^\W\d_][\w'-]*", left) if w.lower() not in _EMPTY]
        if words:
            extra.append(part.group(0).strip())
    return extra


def _phrase_before(text: str, position: int, limit: int = 3) -> tuple[int, int]:
    """The span of the modifiers and determiner just before ``position`` ("*a street artist*
    known as", "a *log* cabin"): at most ``limit`` words back, up to a determiner."""
    start = position
    for m in reversed(list(re.finditer(r"[\w'-]+", text[:position]))):
        if text[m.end():start].strip() or limit == 0:
            break  # punctuation between, or far enough
        word = m.group(0).lower()
        if word in lx.DETERMINERS:
            return m.start(), position
        if word in lx.STOPWORDS or word in lx.FILLER or word in lx.PHRASE_BREAKS:
            break
        start, limit = m.start(), limit - 1
    return start, position


def _phrase_after(text: str, position: int) -> tuple[int, int]:
    """The span of the noun phrase right after a context cue, what is trained ("a LoRA of *my
    grandma*", "this is *a log cabin*", "teach *it*"): determiners, then content words up to
    the next function word or punctuation; a pronoun is a phrase of its own."""
    end = position
    content = False
    for m in _TOKEN.finditer(text, position):
        word = m.group(0).lower()
        if not word[0].isalnum() and word not in ("'", "-"):
            break
        if word in lx.PRONOUNS and not content and word not in lx.DETERMINERS:
            return position, m.end()
        if word in lx.DETERMINERS and not content:
            end = m.end()
            continue
        if word in lx.STOPWORDS or word in lx.PHRASE_BREAKS or word in lx.FILLER:
            break
        end, content = m.end(), True
    return position, end
