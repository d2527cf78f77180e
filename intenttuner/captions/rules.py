"""What the caption rules know about an intent: its trigger words and, per concept, the words
that mean it in a caption.

A caption seldom names a concept the way the intent does: the intent keeps "face", the caption
says "a man with blue eyes and a beard"; the intent modifies "hair colour", the caption says
"blonde hair". So each concept's *terms* are its name and detector phrase (less attribute nouns
such as "colour"), the nouns of its values, and the parts and synonyms in `RELATED_TERMS`. A
phrase *mentions* a concept when one of its terms occurs in it as whole words (a trailing plural
"s" / "es" allowed), or as the adjective made from it: "bearded" (listed), "blue-eyed" (a compound
ending the way `DERIVED_ENDINGS` says).

The trigger words themselves are no concept: `CaptionRules.without_triggers` takes out those a
captioner (or an old caption, `old_triggers`) wrote into a phrase.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..intent.lexicon import ATTRIBUTE_NOUNS, COLOUR_WORDS, STOPWORDS
from ..intent.schema import Intent, Operation
from .text import DETERMINERS, FUNCTION_WORDS, PREPOSITIONS, trim, words

# Parts and synonyms a caption uses for a concept (the key is a concept's name or phrase). Data,
# so adding a case is one line.
RELATED_TERMS: dict[str, tuple[str, ...]] = {
    "face": ("facial", "eyes", "eye", "nose", "mouth", "lips", "beard", "moustache", "mustache",
             "freckles", "eyebrows", "cheeks", "chin", "stubble", "goatee", "bearded",
             "freckled", "mustached", "moustached", "clean-shaven", "unshaven"),
    "hair": ("hairstyle", "haircut", "ponytail", "bangs", "fringe", "braid", "braids", "curls",
             "bun", "locks"),
    "jacket": ("coat", "blazer", "parka", "hoodie"),
    "shirt": ("t-shirt", "tshirt", "blouse", "top", "tee"),
    "dress": ("gown", "sundress"),
    "glasses": ("sunglasses", "spectacles", "eyeglasses", "goggles"),
    "hat": ("cap", "beanie", "beret", "helmet"),
    "necklace": ("pendant", "choker", "chain", "locket"),
    "earrings": ("earring", "ear rings"),
    "shoes": ("shoe", "sneakers", "sneaker", "boots", "boot", "sandals", "heels"),
    "tattoo": ("tattoos", "ink"),
    "watermark": ("logo", "signature"),
    "background": ("backdrop", "wall", "sky", "street", "room", "scenery"),
    "outfit": ("clothes", "clothing", "dress", "suit", "shirt", "jacket", "uniform"),
    "skin": ("skin tone", "complexion"),
    "eyes": ("eye", "iris", "pupils"),
    "bag": ("handbag", "purse", "backpack"),
    "logo": ("emblem", "badge", "brand"),
}
# How a compound adjective ends when made from a term: "blue-eyed", "curly-haired". Only with a
# hyphen ("faced the wall" is no face), and only body parts: "sugar-coated" is no coat.
DERIVED_ENDINGS = {"eye": "eyed", "eyes": "eyed", "hair": "haired", "cheeks": "cheeked",
                   "lips": "lipped", "nose": "nosed", "face": "faced", "skin": "skinned",
                   "chin": "chinned", "eyebrows": "browed"}
# Nouns of a medium right after a kept style ("a watercolor painting of a house"): the style's
# words with it, so cutting the style leaves what the picture shows ("a house").
MEDIUM_NOUNS = frozenset("""painting paintings drawing drawings illustration illustrations sketch
sketches artwork art style print render rendering piece""".split())
# Words that describe no attribute of the concept they come with.
_NOT_ATTRIBUTES = STOPWORDS | DETERMINERS | frozenset(
    p for prep in PREPOSITIONS for p in prep.split()) | frozenset(
    "with wearing holding carrying and or close up closeup view shot picture photo of".split()
    ) | frozenset("man woman person people boy girl child men women guy lady".split())


@dataclass(frozen=True)
class ConceptTerms:
    name: str
    operation: Operation
    terms: tuple[tuple[str, ...], ...]  # each a word sequence, longest first
    values: tuple[str, ...] = ()  # modify: the states text switches between
    phrase: str = ""

    def mentioned_in(self, text_words: list[str]) -> bool:
        return any(_occurs(term, text_words) for term in self.terms)

    def locate(self, text_words: list[str]) -> tuple[int, int, int] | None:
        """(start, term start, end) word positions of the first term occurring in
        ``text_words``: ``start`` is where its noun phrase begins, with the adjectives and
        determiner right before it ("a black leather jacket" for "jacket"), ``term start``
        where the term itself does."""
        for term in self.terms:
            size = len(term)
            for i in range(len(text_words) - size + 1):
                window = text_words[i:i + size]
                if window[:-1] == list(term[:-1]) and _same_word(window[-1], term[-1]):
                    return _phrase_start(text_words, i), i, i + size
        return None

    def attribute_words(self, text_words: list[str]) -> list[str]:
        """The words of a phrase that say something about the concept: everything but its
        terms and function words ("with short black hair" -> ["short", "black"])."""
        term_words = {w for term in self.terms for w in term}
        return [w for w in text_words
                if w not in term_words and w.rstrip("s") not in term_words
                and w not in _NOT_ATTRIBUTES and not w.isdigit() and not w.endswith("'s")]


@dataclass(frozen=True)
class CaptionRules:
    """The intent as the caption rules use it."""

    trigger_words: tuple[str, ...]
    concepts: tuple[ConceptTerms, ...] = field(default_factory=tuple)
    # the trigger words of the set's previous intent: an old caption may still say them
    old_triggers: tuple[str, ...] = ()

    @classmethod
    def from_intent(cls, intent: Intent, old_triggers: Iterable[str] = ()) -> CaptionRules:
        current = {t.lower() for t in intent.trigger_words}
        old = tuple(dict.fromkeys(t for t in old_triggers if t.strip()
                                  and t.lower() not in current))
        return cls(tuple(intent.trigger_words),
                   tuple(_concept_terms(c) for c in intent.concepts), old)

    @property
    def trigger(self) -> str:
        """How captions begin: the trigger words, comma-separated as in the placeholders."""
        return ", ".join(self.trigger_words)

    def by_operation(self, operation: Operation) -> list[ConceptTerms]:
        return [c for c in self.concepts if c.operation is operation]

    def concept(self, name: str | None) -> ConceptTerms | None:
        return next((c for c in self.concepts if c.name == name), None)

    def mentions(self, text: str, operation: Operation | None = None) -> list[ConceptTerms]:
        """The concepts (of ``operation``, or all) that ``text`` mentions."""
        text_words = words(text)
        return [c for c in self.concepts
                if (operation is None or c.operation is operation) and c.mentioned_in(text_words)]

    def is_trigger_only(self, text: str) -> bool:
        """Does ``text`` say nothing but the trigger words ("a man" when "man" is one)?"""
        trigger = {w for t in self.trigger_words for w in words(t)}
        content = [w for w in words(text) if w not in DETERMINERS]
        return bool(content) and all(w in trigger for w in content)

    def without_triggers(self, text: str) -> str:
        """``text`` without the trigger words (current and old, whole words, any case) that it
        repeats: "a photo of ohwx man" -> "a photo" when "ohwx" and "man" are trigger words.
        One right after a describing word stays: that is the captioner's own class noun for
        the subject ("an anime girl"), not the trigger said again. Empty when nothing but
        function words is left."""
        tokens = text.split()
        bare = [t.lower().strip(".,;:!?\"()") for t in tokens]
        sequences = sorted({tuple(t.lower().split()) for t in (*self.trigger_words,
                                                                *self.old_triggers)
                            if t.split()}, key=lambda seq: (-len(seq), seq))
        keep = [True] * len(tokens)
        i = 0
        while i < len(tokens):
            seq = next((q for q in sequences if tuple(bare[i:i + len(q)]) == q), None)
            if seq and (i == 0 or not keep[i - 1] or bare[i - 1] in FUNCTION_WORDS):
                keep[i:i + len(seq)] = [False] * len(seq)
                i += len(seq)
            else:
                i += 1
        if all(keep):
            return text
        return " ".join(trim([t for t, k in zip(tokens, keep, strict=True) if k]))


def _concept_terms(concept) -> ConceptTerms:
    candidates = {concept.name, concept.phrase}
    # the head noun alone too: a kept "red ribbon" is the ribbon in any colour
    candidates |= {_head_noun(t) for t in (concept.name, concept.phrase)}
    candidates |= {_head_noun(v.text) for v in concept.values}
    candidates = {_strip_attribute_nouns(c) for c in candidates} - {""}
    for key in list(candidates):
        candidates |= set(RELATED_TERMS.get(key, ()))
    # longest first, then alphabetical: the same order in every run
    terms = sorted({tuple(words(c)) for c in candidates if words(c)},
                   key=lambda t: (-len(t), t))
    return ConceptTerms(concept.name, concept.operation, tuple(terms),
                        tuple(v.text for v in concept.values), concept.phrase)


def _strip_attribute_nouns(text: str) -> str:
    kept = [w for w in words(text) if w not in ATTRIBUTE_NOUNS]
    return " ".join(kept) if kept else text.lower()


def _head_noun(text: str) -> str:
    """The last word that is no colour or function word ("black leather jacket" -> "jacket")."""
    content = [w for w in words(text) if w not in COLOUR_WORDS and w not in _NOT_ATTRIBUTES]
    return content[-1] if content else ""


def _phrase_start(text_words: list[str], i: int) -> int:
    """Where the noun phrase whose noun is at ``i`` begins: back over its adjectives (across
    "black and white") to its determiner, but not past a possessor ("a man's | face")."""
    start = i
    while start:
        previous = text_words[start - 1]
        if previous in DETERMINERS:
            return start - 1
        if previous in ("and", "or") and start > 1 and text_words[start - 2] in COLOUR_WORDS:
            start -= 1
            continue
        if previous in _NOT_ATTRIBUTES or previous.endswith("'s"):
            return start
        start -= 1
    return start


def _occurs(term: tuple[str, ...], text_words: list[str]) -> bool:
    size = len(term)
    for i in range(len(text_words) - size + 1):
        window = text_words[i:i + size]
        if window[:-1] == list(term[:-1]) and _same_word(window[-1], term[-1]):
            return True
    return False


def _same_word(word: str, term: str) -> bool:
    word = word.removesuffix("'s")
    ending = DERIVED_ENDINGS.get(term)
    if ending and "-" in word and word.rsplit("-", 1)[1] == ending:
        return True  # "blue-eyed" for "eyes"
    return word in (term, term + "s", term + "es") or (term.endswith("s") and word == term[:-1])
