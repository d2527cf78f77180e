"""Perturbed prompts: the prompt with one attribute swapped, for the reward model's auxiliary task.

Lee et al. (2023) train the reward model to tell an image's real prompt from copies with one
detail changed ("a red dog" -> "a blue dog", "two dogs" -> "three dogs", "in a forest" -> "on a
beach"): for an image marked good, the real prompt should score highest. That uses text no mark
covers and teaches the model that colours, counts and backgrounds matter. The swaps are word
lists, like the paper's: a word of a group is replaced by another word of the same group.

    perturbations("Two red apples on a table", 3, random.Random(0))
    # e.g. ['Two red apples on a desk', 'Five red apples on a table', 'Two green apples ...']
"""

from __future__ import annotations

import random
import re

from ..errors import InputError

# Groups of interchangeable words: swapping within a group changes what the prompt asks for.
# Synonyms are kept out (no "grey" beside "gray"): a swap must change the meaning.
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black",
           "white", "gray", "golden", "silver")
COUNT_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
COUNT_DIGITS = tuple(str(n) for n in range(1, 11))
ATTRIBUTES = (
    ("big", "small"), ("large", "tiny"), ("tall", "short"), ("young", "old"),
    ("smiling", "frowning", "crying", "laughing"), ("happy", "sad", "angry"),
    ("wet", "dry"), ("hot", "cold"), ("bright", "dark"), ("clean", "dirty"),
    ("open", "closed"), ("standing", "sitting", "lying"), ("long", "short"),
    ("curly", "straight"), ("fat", "thin"), ("day", "night"), ("summer", "winter"),
    ("sunny", "rainy", "snowy", "foggy"), ("wooden", "metal", "glass", "plastic", "stone"),
)
BACKGROUNDS = ("beach", "forest", "city", "desert", "mountain", "field", "park", "garden",
               "kitchen", "street", "lake", "river", "ocean", "room", "studio", "office",
               "library", "table", "desk", "sky", "snow", "jungle", "cave", "meadow")
GROUPS: tuple[tuple[str, ...], ...] = (COLOURS, COUNT_WORDS, COUNT_DIGITS, *ATTRIBUTES,
                                       BACKGROUNDS)


def _alternatives() -> dict[str, tuple[str, ...]]:
    """Word -> the words it may become (every other word of every group it belongs to)."""
    table: dict[str, list[str]] = {}
    for group in GROUPS:
        for word in group:
            others = table.setdefault(word, [])
            others += [w for w in group if w != word and w not in others]
    return {word: tuple(others) for word, others in table.items()}


ALTERNATIVES = _alternatives()
# Whole words only; a digit must stand alone ("3 cats", not "1.5", "v2" or "8k").
_WORD = re.compile(r"(?<![\w.,])(" + "|".join(sorted(map(re.escape, ALTERNATIVES),
                                                        key=len, reverse=True)) + r")(?![\w.,])",
                   re.IGNORECASE)


def _cased(word: str, like: str) -> str:
    """``word`` written in the case of ``like`` (RED -> BLUE, Red -> Blue, red -> blue)."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swaps(prompt: str) -> list[str]:
    """Every prompt that differs from ``prompt`` by one swapped word, in a fixed order (by
    position, then by the alternative's place in its group); each once."""
    found: list[str] = []
    seen = {prompt.casefold()}
    for match in _WORD.finditer(prompt):
        word = match.group(1)
        for other in ALTERNATIVES[word.lower()]:
            candidate = prompt[:match.start(1)] + _cased(other, word) + prompt[match.end(1):]
            if candidate.casefold() not in seen:
                seen.add(candidate.casefold())
                found.append(candidate)
    return found


def perturbations(prompt: str, count: int, rng: random.Random) -> list[str]:
    """Up to ``count`` distinct prompts, each ``prompt`` with ONE colour, count, attribute or
    background word swapped (case kept), drawn by ``rng``; never ``prompt`` itself; ``[]``
    when no word can be swapped."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InputError(f"perturbations count must be a whole number, 0 or more; got "
                         f"{count!r}.")
    candidates = swaps(prompt)
    return rng.sample(candidates, min(count, len(candidates)))
