"""What a clause names: its noun phrases (the concepts), their ``[n]`` references and values.

Given a clause and its operation (see `cues`), `concepts_in` returns one `Draft` per concept:
"keep his face and beard" → face, beard; "switch between the leather jacket [1] and the striped
jacket [2]" → jacket, with two values bound to boxes 1 and 2. Values are read from "between A
and B", "from A to B", "either A or B", "can be A or B", "(A / B)", ": A / B" and "such as A or
B"; a list ends at a comma that starts a new clause ("like van gogh, brushstrokes are what
matters" has no values). A choice ("either marble or wood") is a change of the noun before it,
whatever the clause's cue. In a delete clause the noun phrase before a negated have / wear /
carry is the owner, not what goes ("the dog never has a collar" deletes the collar), and an
attribute every thing has is freed, not deleted ("not the colour").

A box goes to the noun phrase before it; after a pronoun ("remove it [2]") to the concept the
pronoun means, the last one named; in a parenthesis ("the logo (see [2])") to the phrase before
the parenthesis. Filler ("pls", "esp", "I think") and words about the prompt or the model ("the
default trigger") never name a concept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import cue_words as cw
from . import lexicon as lx
from .cues import read_cues, strip_cues
from .schema import Operation

REFERENCE = re.compile(r"\[\s*(\d+)\s*\]")  # "[n]": reference box n ("[ 1 ]" too)
# Multi-word nouns kept whole through the stopword filter ("time of day").
_MULTIWORD = sorted({p for p in (*lx.IMAGERY_NOUNS, *lx.DEFAULT_VALUES) if " " in p},
                    key=len, reverse=True)
# A parenthesis that only points at boxes: "(see [2])", "(box [1] and [3])".
_POINTER = re.compile(r"\(([^()]*\[\d+\][^()]*)\)")
_POINTER_WORDS = frozenset("""see cf ref refs reference references box boxes image images photo
photos pic pics picture pictures shown show shows in as like eg at on from fig and or the also
here example crop region area marked highlighted outlined e g & ,""".split())
# Where one noun phrase of a list ends and the next begins.
_CHUNK_SPLIT = re.compile(
    r"\s*(?:[,&;]|—|\s[-–]+\s|\band\b|\bor\b|"
    + "|".join(rf"\b{re.escape(j)}\b" for j in sorted(lx.LIST_JOINERS, key=len, reverse=True))
    + r")\s*")
_FILLER_PHRASES = re.compile(
    "|".join(rf"(?<![\w']){re.escape(f)}(?![\w'])"
             for f in sorted(lx.FILLER_PHRASES, key=len, reverse=True)))
# A pronoun and the boxes right after it: "it [1]", "her [2]", "that one [1] [3]".
_PRONOUN_REFS = re.compile(
    rf"(?<![\w'])(?:{'|'.join(sorted(lx.PRONOUNS, key=len, reverse=True))})(?:\s+one)?"
    r"\s*((?:\[\d+\](?:\s*(?:,|&|and)\s*(?=\[))?\s*)+)"
    r"(.*?)(?=\s*(?:[,&;]|—|\s[-–]+\s|\band\b|\bor\b)|$)")
_QUANTIFIERS = frozenset({"anything", "everything", "nothing", "something", "all", "any", "each",
                         "none", "some", "most", "both", "one"})
_NEXT = frozenset({"next", "next one", "another", "other", "the other", "any other"})
_VALUE_PATTERNS = (
    re.compile(r"\bbetween\s+(?P<a>.+?)\s+and\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(r"\bfrom\s+(?P<a>.+?)\s+to\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(r"\beither\s+(?P<a>.+?)\s+or\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(rf"\b(?:{'|'.join(cw.CHOICE_CUES)})\s+(?P<list>.+?\bor\b.+)$", re.IGNORECASE),
    re.compile(r"\((?P<list>[^)]*(?:/|,|\bor\b)[^)]*)\)", re.IGNORECASE),
    re.compile(r":\s*(?P<list>[^:]*(?:/|\bor\b)[^:]*)$", re.IGNORECASE),
    re.compile(r"\b(?:such as|like|eg|for example|including)\s+(?P<list>.+)$", re.IGNORECASE),
)
# "from shot to shot"; a choice between values; examples, a choice when joined by "or"
_FROM_TO, _CHOICES, _EXAMPLES = _VALUE_PATTERNS[1], _VALUE_PATTERNS[2:4], _VALUE_PATTERNS[6]
# The words of a clause, not of a value: a list item holding one starts a new clause.
_CLAUSE_WORDS = re.compile(r"\b(?:is|are|was|were|should|must|can|could|will|would|may|might"
                           r"|has to|have to|needs? to)\b", re.IGNORECASE)
# "the dog never has a collar", "Rex should never wear a collar", "the dog has no collar": what
# comes before the verb owns what goes.
_OWNING = ("have|has|had|having|wear|wears|wearing|wore|carry|carries|carrying|hold|holds|"
           "holding|own|owns|sport|sports|be seen with|be with|come with|comes with")
_OWNER_VERB = re.compile(
    rf"(?<![\w'])(?:(?:don't|do not|doesn't|does not|didn't|never|not|shouldn't|mustn't|"
    rf"cannot|can't|won't|wouldn't|hasn't|haven't|no longer)\s+(?:(?:ever|really|be)\s+)?"
    rf"(?:{_OWNING})|(?:{_OWNING})\s+(?:no|never))(?![\w'])", re.IGNORECASE)
_LIST_BREAK = re.compile(r"[,;&]|\band\b", re.IGNORECASE)  # where an owner's phrase starts
OWNS = re.compile(rf"(?<![\w'])(?:{_OWNING}|with)\s*$", re.IGNORECASE)  # "the dog has" [no ...]


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
    text = _any_attribute(_reorder_of_phrases(_bind_pointers(clause)))
    if operation is Operation.DELETE:
        text = _without_owner(text)
    text, values, choice_at = _extract_values(text)
    items = _noun_phrases(strip_cues(text), previous)
    drafts = [Draft(name, operation, sentence, refs) for name, refs in items]
    chooser = _chooser(text, choice_at, previous, drafts) if values else None
    if values and operation is Operation.MODIFY:
        if not drafts:
            drafts = [Draft(_common_head([v for v, _ in values]), operation, sentence)]
        (chooser or drafts[0]).values = values
    elif chooser is not None:  # "keep the face and the background either marble or wood"
        chooser.operation, chooser.values = Operation.MODIFY, values
    elif values and (choice_at is None or operation is Operation.DELETE):
        # "keep the red and blue scarves (A / B)": values read as more concepts; a choice to
        # keep that names nothing to choose for ("keep either the hat or the scarf") keeps none
        drafts += [Draft(v, operation, sentence, refs) for v, refs in values]
    for draft in drafts:  # "not the colour": a colour cannot go, it is left free
        if draft.operation is Operation.DELETE and _inherent(draft.name):
            draft.operation = Operation.MODIFY
    return drafts


def _without_owner(text: str) -> str:
    """'the dog never has a collar' → 'a collar': in a delete clause, the noun phrase before a
    negated have / wear / carry (or "has no") owns what goes and stays; each one in a list ("the
    dog never has a collar and the cat never has a bell"). One with no object stays as it is."""
    matches = list(_OWNER_VERB.finditer(text))
    pieces, last = [], 0
    for i, match in enumerate(matches):
        following = text[match.end():matches[i + 1].start() if i + 1 < len(matches) else None]
        if not _noun_phrases(strip_cues(following)):
            continue  # "... never has": nothing owned, nothing to drop
        head = text[last:match.start()]
        owner_starts = max((m.end() for m in _LIST_BREAK.finditer(head)), default=0)
        pieces.append(head[:owner_starts])
        last = match.end()
    return "".join(pieces) + text[last:]


def _chooser(text: str, choice_at: int | None, previous: str, drafts: list[Draft]
             ) -> Draft | None:
    """The draft a choice of values is about: the last noun phrase before "either" / "can be"
    ("background either marble or wood" → background); None for other value lists."""
    if choice_at is None:
        return None
    before = _noun_phrases(strip_cues(text[:choice_at]), previous)
    names = {before[-1][0]} if before else set()
    return next((d for d in reversed(drafts) if d.name in names), None)


def _inherent(name: str) -> bool:
    words = name.split()
    return bool(words) and words[-1] in lx.INHERENT_ATTRIBUTES


def _bind_pointers(text: str) -> str:
    """'the logo (see [2])' → 'the logo [2]': a parenthesis of box pointers is the box."""
    def bind(match: re.Match[str]) -> str:
        words = REFERENCE.sub(" ", match.group(1)).lower().replace(",", " , ").split()
        if any(w.strip(".:") not in _POINTER_WORDS for w in words):
            return match.group(0)
        return " " + " ".join(f"[{n}]" for n in REFERENCE.findall(match.group(1)))
    return _POINTER.sub(bind, text)


def _any_attribute(text: str) -> str:
    """'her hair can be whatever colour I want' → 'her hair colour': an attribute left open
    ("any colour", "different sizes") is the attribute of the noun before it. The clause's
    operation is read before this, so the cue word can go."""
    attributes = "|".join(sorted({*lx.ATTRIBUTE_NOUNS, *(f"{a}s" for a in lx.ATTRIBUTE_NOUNS)},
                                 key=len, reverse=True))
    return re.sub(rf"\b([a-z][\w-]*)\s+(?:(?:can|could|should|may|might|will|is|are|comes?)\s+)?"
                  rf"(?:be\s+|come\s+|have\s+)?(?:in\s+|of\s+)?(?:any|whatever|different|"
                  rf"various|other)\s+({attributes})\b",
                  lambda m: f"{m.group(1)} {_singular(m.group(2))}", text, flags=re.IGNORECASE)


def _singular(attribute: str) -> str:
    lowered = attribute.lower()
    return lowered[:-1] if lowered not in lx.ATTRIBUTE_NOUNS and lowered.endswith("s") else lowered


def _reorder_of_phrases(text: str) -> str:
    """'the colour of his hair' → 'hair colour', so attributes read object-first."""
    attributes = "|".join(a for a in lx.ATTRIBUTE_NOUNS if a != "style")
    determiners = "the|his|her|its|their|my|our|your|these|those|this|that|a|an"
    return re.sub(rf"\b({attributes})\s+of\s+(?:(?:{determiners})\s+)?([a-z][\w\-]*)",
                  r"\2 \1", text, flags=re.IGNORECASE)


def _extract_values(text: str) -> tuple[str, list[tuple[str, list[int]]], int | None]:
    """(``text`` without its value list, the distinct values, where a choice was in ``text``)
    for the first value pattern that yields two or more values; else (``text``, [], None). A
    list running to the end stops at a comma that starts a new clause, and cue words are no
    part of a value."""
    for pattern in _VALUE_PATTERNS:
        match = pattern.search(text)
        if not match or _compares(text, match):
            continue
        last = "list" if "list" in match.groupdict() else "b"
        end = match.end()
        if match.end(last) == len(text):  # a list to the end stops where a new clause starts
            end = _clause_comma(text, match.start(last), end)
        listed = text[match.start(last):min(end, match.end(last))]
        if last == "list":
            raw = re.split(r"\s*(?:/|,|\bor\b|\band\b)\s*", listed)
        else:
            raw = [match.group("a"), listed]
            if pattern is _FROM_TO and (_value(raw[0])[0] == _value(raw[1])[0]
                                        or _value(raw[1])[0] in _NEXT):
                # "from shot to shot", "from one photo to the next": in every one, no values
                return text[:match.start()] + " " + text[end:], [], None
        values = [v for v in (_value(strip_cues(r)) for r in raw) if v[0]]
        if len(values) >= 2:
            unique = [v for i, v in enumerate(values) if v[0] not in {u for u, _ in values[:i]}]
            choice = match.start() if pattern in _CHOICES or (
                pattern is _EXAMPLES and re.search(r"\bor\b", listed, re.IGNORECASE)) else None
            return text[:match.start()] + " " + text[end:], unique, choice
    return text, [], None


def _clause_comma(text: str, start: int, end: int) -> int:
    """Where the list in ``text[start:end]`` ends: at the first comma whose item starts a new
    clause (has a cue or a verb: "van gogh, brushstrokes are what matters"), else ``end``."""
    for comma in re.finditer(",", text[start:end]):
        at = start + comma.start()
        following = text[at + 1:end].split(",", 1)[0]
        if read_cues(following) or _CLAUSE_WORDS.search(following):
            return at
    return end


def _compares(text: str, match: re.Match[str]) -> bool:
    """Is this "like" a comparison ("must look exactly like this"), not a list of examples?"""
    before = text[:match.start()].lower().split()
    return match.group(0).lower().startswith("like") and bool(before) and before[-1] in (
        "look", "looks", "looking", "exactly", "just", "seem", "seems", "feel", "feels")


def _value(raw: str) -> tuple[str, list[int]]:
    refs = [int(n) for n in REFERENCE.findall(raw)]
    words = [w for w in REFERENCE.sub(" ", raw).strip(" ,.").split() if w != ","]  # cues gone
    while words and (words[0].lower() in lx.STOPWORDS or words[0].lower() in lx.FILLER
                     or re.fullmatch(r"\W+", words[0])):
        words = words[1:]
    return " ".join(words).lower(), refs


def _noun_phrases(text: str, previous: str = "") -> list[tuple[str, list[int]]]:
    """Split what is left of a clause into noun phrases, each with the [n] refs after it.

    "its shape" (or a bare "colour" after a noun: "the scarf must not change colour") names the
    attribute of the noun before it (in this clause, else ``previous``, the sentence's last
    concept), and a bare colour word describes the noun before it ("her hair should always be
    red" → "red hair"); both replace that noun rather than adding a concept. A pronoun means
    that noun too: its boxes go to it ("keep the cap, it [1] never changes"), and a clause
    naming nothing but "it" is about it ("... It must stay the same").
    """
    lowered = _FILLER_PHRASES.sub(" ", text.lower())
    lowered = _PRONOUN_REFS.sub(_pronoun_boxes, lowered)
    for phrase in _MULTIWORD:  # protect "time of day" from the stopword filter
        lowered = re.sub(rf"\b{re.escape(phrase)}\b", phrase.replace(" ", "_"), lowered)
    items: list[tuple[str, list[int]]] = []
    tails: list[tuple[str, list[int]]] = []  # prepositional chunks, see `_chunk_name`
    pronoun = False  # the clause says "it" / "this" and nothing else
    for chunk in _CHUNK_SPLIT.split(lowered):
        refs = [int(n) for n in REFERENCE.findall(chunk)]
        raw = [w.strip(".:;'\"!?()") for w in REFERENCE.sub(" ", chunk).split()]
        raw = [w for w in raw if w and not re.fullmatch(r"\W+", w)]
        name, tail = _chunk_name(raw)
        if tail:  # kept aside; its boxes still belong to the noun it hangs off
            tails.append((name, refs))
            if refs and items:
                items[-1][1].extend(refs)
            continue
        if not name:
            pronoun = pronoun or any(w in ("it", "this", "that") for w in raw)
            if refs and items:
                items[-1][1].extend(refs)
            elif refs and previous:
                items.append((previous, refs))
            continue
        owner = items[-1][0] if items else previous
        thing = _object_of(owner)  # "hair style" is the hair's: its colour is "hair colour"
        # "keep the hair style, not the colour": the colour is the hair's (but "the style"
        # after a clause naming something else is more often the art style)
        core = [w for w in raw if w not in lx.STOPWORDS and w not in lx.FILLER]
        bare_attribute = bool(owner) and (raw == [name] or (
            core == [name] and raw[0] not in ("a", "an") and (bool(items) or name != "style")))
        if ((raw[0] in lx.POSSESSIVES or bare_attribute) and name in lx.ATTRIBUTE_NOUNS
                and name not in lx.OBJECT_OF and thing):  # "her hairstyle" is her hair's
            name = f"{thing} {name}"
        elif name in lx.COLOUR_WORDS and items:
            name = f"{name} {owner}"
        else:
            items.append((name, refs))
            continue
        if items and owner == items[-1][0] and thing == owner:
            items[-1] = (name, items[-1][1] + refs)
        else:
            items.append((name, refs))
    if not items and pronoun and previous:
        items.append((previous, []))
    if not items:  # "nothing in the background should change": the tail is all there is
        items = tails
    return _distribute_objects(items)


def _object_of(owner: str) -> str:
    """What an attribute of ``owner`` belongs to: the owner, or for an attribute itself ("hair
    style", "hairstyle") its object ("hair")."""
    words = owner.split()
    if len(words) > 1 and words[-1] in lx.ATTRIBUTE_NOUNS:
        return " ".join(words[:-1])
    return lx.OBJECT_OF.get(owner, "" if owner in lx.ATTRIBUTE_NOUNS else owner)


def _chunk_name(raw: list[str]) -> tuple[str, bool]:
    """(the concept a chunk's words name, is it a prepositional tail). A tail cut off by a cue
    ("the hat should always be *on her head*", "*in the background*, remove the people") names
    a concept only when the clause names nothing else; a predicate ("*is bad*") or a word about
    the prompt or the model ("the default trigger") names none ("")."""
    words = raw
    if words and words[0] in lx.META_VERBS:
        return "", False  # "Train a lora on Tokyo streets": about the training, not a thing
    if len(words) > 2 and words[0] in _QUANTIFIERS and words[1] in ("of", "about", "on", "in"):
        words = words[2:]  # "anything about the eyes" → the eyes
    lead = next((w for w in words if w in lx.PHRASE_BREAKS or w in lx.COPULAS
                 or w not in lx.STOPWORDS), "")
    tail = lead in lx.PHRASE_BREAKS
    if lead in lx.COPULAS:  # "is bad" says something; "is her face" names something
        after = words[words.index(lead) + 1:]
        if not after or after[0] not in lx.DETERMINERS:
            return "", False
        words = after
    name = " ".join(w.replace("_", " ") for w in _head_words(words))
    if name and (name in lx.META_PHRASES or name.split()[-1] in lx.META_HEADS):
        return "", False  # "the default trigger", "the prompt": not something a picture shows
    return name, tail and bool(name)


def _pronoun_boxes(match: re.Match[str]) -> str:
    """'it [1] is red' → ', [1] ,': the boxes stay, the pronoun and what it is said to be go
    (up to the next list separator). 'her [2] hat' is left alone: there the box is the hat's."""
    following = re.match(r"\s*([a-z][\w'-]*)", match.group(2))
    if following and following.group(1) not in lx.STOPWORDS | lx.FILLER:
        return match.group(0)  # a determiner: "this [1] hat", "her [2] earrings"
    return " , " + " ".join(f"[{n}]" for n in REFERENCE.findall(match.group(1))) + " , "


def _head_words(words: list[str]) -> list[str]:
    """Content words of a noun phrase: stop at a preposition, a copula, a relative clause or
    a verb taking an object once a noun has been seen ("the tattoo on his arm" → tattoo), drop
    function words, filler and trailing adverbs."""
    kept: list[str] = []
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if kept and (word in lx.PHRASE_BREAKS or word in lx.COPULAS or word in lx.RELATIVES
                     or (word.endswith("ing") and following in lx.DETERMINERS)):
            break  # "the car is the product" → car, "the person holding the bottle" → person,
            # "the table it stands on" → table
        if word not in lx.STOPWORDS and word not in lx.FILLER and word not in lx.PHRASE_BREAKS:
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
