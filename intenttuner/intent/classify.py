"""What the offline parser's concept names mean, and which domain an intent is about.

- `classify`: a concept name's granularity and detector phrase ("hair colour" → attribute,
  detect "hair"; "painting style" → imagery; "necklace" → instance).
- `default_values` / `complete_value`: the states of a modify concept given without any, and
  bare adjective values made whole ("green" → "green eyes").
- `domain_from_name` / `guess_domain`: the domain written after "domain:" (free text read
  through `domains`), or scored from the description's words.
"""

from __future__ import annotations

import re

from . import lexicon as lx
from . import notes
from .domains import DOMAIN_WORDS, count_3d, domain_of_noun, read_domain, render_3d_domain
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


def domain_from_name(value: str, *, named: bool = False) -> tuple[Domain | None, str]:
    """The domain the user wrote after "domain:" and the note saying how it was read: exact
    names need none, "anime OC" is read as character (see `domains`). (None, "") when the text
    names no domain: the caller guesses one instead, never an error."""
    name = value.lower().strip(" .\"'")
    if name in {d.value for d in Domain}:
        return Domain(name), ""
    domain = lx.DOMAIN_ALIASES.get(name) or read_domain(name, named=named)
    if domain is None:
        return None, ""
    why = ""
    if count_3d(name):
        why = ("the description names its subject, so a 3D character" if named else
               "no named subject, so a 3D look; name one to make it a character")
    return domain, notes.domain_read_as(value.strip(), domain, why)


def _cue_patterns() -> dict[Domain, list[re.Pattern]]:
    """The lexicon's domain cues and the broader `domains` words, compiled once."""
    out = {}
    for domain in lx.DOMAIN_PRIORITY:
        cues = dict.fromkeys((*lx.DOMAIN_CUES.get(domain, ()), *DOMAIN_WORDS.get(domain, ())))
        out[domain] = [re.compile(rf"(?<![\w-]){re.escape(c)}(?![\w-])") for c in cues]
    return out


_CUES = _cue_patterns()


def guess_domain(context: list[str], concepts: list[dict], description: str, *,
                 subject_nouns: tuple[str, ...] = (), named: bool = False) -> Domain:
    """Score domain cues: subject sentences x3, kept concepts x2, the whole text x1, and the
    noun a named subject was given ("my beagle Pepper": object) x3 more. "3D render" words
    count for character when the subject is ``named``, else for style (see `domains`)."""
    evidence = [(s, 3) for s in context]
    evidence += [(c["name"], 2) for c in concepts if c["operation"] == Operation.KEEP.value]
    evidence.append((description, 1))
    scores = dict.fromkeys(lx.DOMAIN_PRIORITY, 0)
    for text, weight in evidence:
        lowered = text.lower()
        for domain, cues in _CUES.items():
            scores[domain] += weight * sum(bool(c.search(lowered)) for c in cues)
        scores[render_3d_domain(named)] += weight * count_3d(lowered)
    for noun in subject_nouns:
        if (domain := domain_of_noun(noun)) in scores:
            scores[domain] += 3
    best = max(lx.DOMAIN_PRIORITY, key=lambda d: (scores[d], -lx.DOMAIN_PRIORITY.index(d)))
    return best if scores[best] > 0 else Domain.OTHER
