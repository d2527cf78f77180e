"""What the offline parser's concept names mean, and which domain an intent is about.

- `classify`: a concept name's granularity and detector phrase ("hair colour" → attribute,
  detect "hair"; "painting style" → imagery; "necklace" → instance).
- `default_values` / `complete_value`: the states of a modify concept given without any, and
  bare adjective values made whole ("green" → "green eyes").
- `domain_from_name` / `guess_domain`: the domain written after "domain:", or scored from cues.
"""

from __future__ import annotations

import re

from ..errors import InputError
from . import lexicon as lx
from .schema import Domain, Granularity, Operation


def classify(name: str) -> tuple[Granularity, str]:
    """(granularity, detector phrase) for a concept name."""
    words = name.split()
    if words[-1] in lx.OBJECT_OF:  # "twin-tail hairstyle" is about the hair
        return Granularity.ATTRIBUTE, lx.OBJECT_OF[words[-1]]
    attribute_of_object = (len(words) >= 2 and words[-1] in lx.ATTRIBUTE_NOUNS
                           and words[-2] not in lx.IMAGERY_QUALIFIERS)
    if attribute_of_object:
        obj = " ".join(words[:-1])
        return Granularity.ATTRIBUTE, lx.PLURAL_OBJECTS.get(obj, obj)
    if any(re.search(rf"\b{re.escape(n)}\b", name) for n in lx.IMAGERY_NOUNS):
        return Granularity.IMAGERY, name
    if name in lx.ATTRIBUTE_NOUNS or name in lx.OBJECT_OF:
        return Granularity.ATTRIBUTE, lx.OBJECT_OF.get(name, name)
    return Granularity.INSTANCE, name


def default_values(name: str, phrase: str) -> tuple[str, ...]:
    """The values assumed for a modify concept given without any; () when none are known."""
    if name in lx.DEFAULT_VALUES:
        return lx.DEFAULT_VALUES[name]
    if name.split()[-1] in ("colour", "color") and phrase != name:
        return tuple(f"{c} {phrase}" for c in lx.GENERIC_COLOUR_VALUES)
    return ()


def complete_value(text: str, granularity: Granularity, phrase: str) -> str:
    """A bare adjective value of an attribute names its object: 'green' → 'green eyes'."""
    if granularity is Granularity.ATTRIBUTE and len(text.split()) == 1 and text != phrase:
        return f"{text} {phrase}"
    return text


def domain_from_name(value: str) -> Domain:
    """The domain a user named ("domain: anime"); InputError listing the known ones."""
    name = value.lower().strip()
    if name in lx.DOMAIN_ALIASES:
        return lx.DOMAIN_ALIASES[name]
    try:
        return Domain(name)
    except ValueError:
        known = ", ".join(d.value for d in Domain)
        raise InputError(f"domain '{value}' is not one of: {known}.") from None


def guess_domain(context: list[str], concepts: list[dict], description: str) -> Domain:
    """Score domain cues: subject sentences x3, kept concepts x2, the whole text x1."""
    evidence = [(s, 3) for s in context]
    evidence += [(c["name"], 2) for c in concepts if c["operation"] == Operation.KEEP.value]
    evidence.append((description, 1))
    scores = dict.fromkeys(lx.DOMAIN_PRIORITY, 0)
    for text, weight in evidence:
        lowered = text.lower()
        for domain, cues in lx.DOMAIN_CUES.items():
            hits = sum(bool(re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", lowered))
                       for c in cues)
            scores[domain] += weight * hits
    best = max(lx.DOMAIN_PRIORITY, key=lambda d: (scores[d], -lx.DOMAIN_PRIORITY.index(d)))
    return best if scores[best] > 0 else Domain.OTHER
