"""Finding the trigger word in how people name their subject.

Users rarely write "trigger: pepper". They write "my beagle Pepper", "a girl named Aiko", "our
cat, Miso,", "Rex: keep his collar", "the character Pia", "his name is Omar", "this is Zoë",
"Pepper the beagle", "the Aeron chair", "use sks as the trigger word". `names_in` finds these
in a sentence and returns each as a `Name`: the name(s) as written, the subject noun it was
given to ("beagle", which also says the domain), its span, and whether it is an explicit
trigger phrasing.

Choices, and why:

- Precedence (applied by offline.py): a ``trigger:`` directive > a trigger phrasing here > the
  first name pattern. Later names ("her sister Yumi") are other people, not the subject.
- A full name stays one trigger word ("Priya Raman", "Vincent van Gogh"): the trigger has to
  summon that one subject, and the user will type the name as they wrote it.
- Capitalisation is a signal, not a rule: lower case is accepted where the phrasing leaves no
  doubt ("my dog rex", "named rex", "rex: ..."), capitals are required where it is the only
  hint ("the character Pia", "this is Pia", "Pepper the beagle"). A lower-case word followed
  by "the", "his", "at"... is a verb ("my dog wags his tail"), and a lower-case name is one
  word (only capitalised full names run on: "my friend priya raman" gives "priya").
- A name that is what a delete clause removes is not the subject ("Remove the Rolex watch");
  offline.py drops those namings, but not one that only owns or wears it ("my dog Rex never
  wears a collar").
- A name is never a common English word ("my dog Running", "a girl named", "my cat is cute"):
  the stop list of `name_words` plus every word the parser's own lexicon and domain tables know
  (concepts, colours, cues). Pets are often called by such words, though ("Bear", "Socks",
  "Blue"): written with a capital right after "my/our/the <noun>" a known *thing* word is a name
  ("my dog Bear"), and a popular pet name after a naming word too ("a dog named Socks"); a verb
  or function word never is ("My dog Running"), nor any of them in lower case.
- A leading "Note:" / "Goal -" / "Monday:" is a label (`strip_label`), not the name "Rex:" is.

`absorb` then keeps the named subject out of the concepts: the trigger word learns the subject,
so "Keep Pepper's ears" is the concept "ears", and "Pepper should look the same" none at all.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from . import lexicon as lx
from .domains import SUBJECT_NOUNS
from .name_words import COMMON as _COMMON
from .name_words import LABEL_QUALIFIERS, LABEL_WORDS, MONTHS, PET_NAMES, WEEKDAYS
from .name_words import NAMING_WORDS as _NAMING_WORDS
from .name_words import OBJECT_WORDS as _OBJECT_WORDS
from .name_words import PARTICLES as _PARTICLES
from .name_words import POSSESSIVE_DETS as _POSSESSIVE_DETS
from .schema import Domain


@dataclass(frozen=True)
class Name:
    """One naming of the subject found in a sentence."""

    names: tuple[str, ...]  # as written: ("Pepper",), ("Miso", "Tofu"), ("Priya Raman",)
    noun: str  # the subject noun the name was given to ("beagle"); "" when none was said
    start: int  # the naming phrase's span in the sentence
    end: int
    explicit: bool = False  # a trigger phrasing ("use sks as the trigger"), not a name
    # The span says only who the subject is ("his name is Omar", "Rex:", "this is Zoë"): it is
    # cut before the sentence is read for concepts. Attributive names ("my beagle Pepper's
    # ears") stay in the text, and `absorb` takes them out of the concept names.
    detached: bool = False



def _words_of(phrases: list[str]) -> frozenset[str]:
    return frozenset(w for p in phrases for w in re.split(r"[\s/]+", p.lower()) if w)


# Words of how things are said (function words, cues, negators): never a name, capital or not
# ("My dog Never", "my cat Remove").
_GRAMMAR = _words_of([*lx.STOPWORDS, *lx.NEGATORS, *lx.CONTEXT_CUES, *lx.PHRASE_BREAKS,
                      *lx.POSSESSIVES, *(c for cues in lx.OPERATION_CUES.values() for c in cues)])
# Words the tables know as things ("blue", "bear" of "teddy bear", "lady", "boots"): no name
# where only a capital hints at one, but a pet may well be called "Bear" (see `_is_name`).
_THINGS = _words_of([*lx.COLOUR_WORDS, *lx.ATTRIBUTE_NOUNS, *lx.IMAGERY_NOUNS,
                     *lx.DEFAULT_VALUES, *(c for cues in lx.DOMAIN_CUES.values() for c in cues),
                     *(n for nouns in SUBJECT_NOUNS.values() for n in nouns)])
_NOT_NAMES = _COMMON | _GRAMMAR | _THINGS
# What still vetoes a capitalised word right after "my/our/the <noun>" ("my dog Bear", but not
# "My dog Running"), and right after a naming word ("a dog named Socks").
_AFTER_NOUN_VETO = (_COMMON - PET_NAMES) | _GRAMMAR
_AFTER_NAMING_VETO = _NOT_NAMES - PET_NAMES
_NOUNS = sorted({n for nouns in SUBJECT_NOUNS.values() for n in nouns}, key=len, reverse=True)
_NOUN = "(?:" + "|".join(re.escape(n) for n in _NOUNS) + ")(?:e?s)?"
# Nouns a brand or model name can stand before ("the Aeron chair", "our Lumière perfume").
_THING = "(?:" + "|".join(re.escape(n) for d in (Domain.PRODUCT, Domain.OBJECT, Domain.SCENE)
                          for n in SUBJECT_NOUNS[d]) + ")(?:e?s)?"
_WORD = r"[^\W\d_][\w\-]*(?:'(?!s\b)[^\W\d_][\w\-]*)?"
_WORDS = rf"{_WORD}(?:\s+{_WORD}){{0,3}}?"  # lazily: the fewest words that fit the pattern
_TOKEN = re.compile(r"\"([^\"\n]{1,40})\"|'([^'\n]{1,40})'(?!\w)|([\w][\w\-]*)")
_DET = r"(?P<det>my|our|his|her|their|your|the|a|an|this|that)"
_DETERMINERS = r"(?:my|our|his|her|their|your|the|a|an|this|that)\b"
_MODIFIERS = rf"(?:(?!{_DETERMINERS})[\w\-]+\s+){{0,3}}?"  # "my little old beagle Pepper"
_I = re.IGNORECASE

# Explicit trigger phrasings, whose word may be any token ("sks", "ohwx_2"). Group "list".
_TRIGGER_PHRASES = (
    re.compile(r"\b(?:(?:please\s+)?(?:use|using|with|take|pick|choose)\s+)?(?P<list>\S+"
               r"(?:\s*(?:,|and|&|/)\s*\S+){0,3}?)\s+as\s+(?:the\s+|a\s+|my\s+|our\s+|its\s+)?"
               r"(?:trigger|token|activation|keyword|identifier|instance)(?:\s+(?:words?|"
               r"tokens?|phrase|tags?))?s?\b", _I),
    re.compile(r"\b(?:the\s+|my\s+|our\s+)?(?:trigger(?:\s+(?:words?|tokens?|phrase))?|triggers|"
               r"activation\s+(?:words?|tags?|tokens?|phrase)|instance\s+token|keyword|token)\s+"
               r"(?:should|shall|must|will|would|can|has\s+to|needs\s+to|ought\s+to)\s+be\s+"
               r"(?:called\s+)?(?P<list>.+)$", _I),
    re.compile(r"\b(?:activated?|activates|triggered|summoned?)\s+(?:it\s+)?(?:with|by)\s+"
               r"(?:the\s+(?:word|token)\s+)?(?P<list>\S+)", _I),
    re.compile(r"\b(?:(?:with|using)\s+)?(?:the\s+)?(?:trigger(?:\s+(?:words?|tokens?))?|token|"
               r"keyword)\s+"
               r"(?P<list>(?!(?:is|are|should|must|will|would|can|for|of|to|word|words)\b)\S+)",
               _I),
)
# Statements of the name: cut from the sentence (Name.detached). Lower case is fine here.
_STATEMENTS = (
    re.compile(rf"(?:\b(?:my|our|his|her|their|its|the|your)\s+(?:(?P<noun>{_NOUN})'s\s+)?)?"
               r"(?:real\s+|full\s+|first\s+|nick)?(?:name's|names?\s*(?:[:=]|\s(?:is|are|was|"
               r"will\s+be)))\s+", _I),
    re.compile(r"\b(?:(?:we|i|they|you|people|everyone|everybody)\s+)?call(?:s|ed)?\s+"
               r"(?:him|her|it|them)\s+", _I),
)
# Attributive naming words: the name stays in the text ("a girl named Aiko with long hair").
_NAMING = re.compile(rf"(?:\b(?:{_DET}\s+)?{_MODIFIERS}(?P<noun>{_NOUN})\s+)?\b(?:called|named|"
                     r"nicknamed|dubbed|christened|known\s+as|goes\s+by(?:\s+the\s+name(?:\s+of)?)?"
                     r"|answers\s+to|aka|a\.k\.a\.)\s+", _I)
_INTRODUCTIONS = re.compile(r"\b(?:(?:this|that|here|it)\s+is|this's|meet|introducing|"
                            r"say\s+(?:hi|hello)\s+to)\s+", _I)
_NOUN_THEN_NAME = re.compile(rf"\b{_DET}\s+{_MODIFIERS}(?P<noun>{_NOUN})(?P<sep>\s*,\s*|\s*\(\s*|"
                             r"\s+)(?=\S)", _I)
_NAME_THEN_NOUN = re.compile(rf"(?<![\w'])(?P<name>{_WORDS})"
                             r"(?P<sep>\s*,\s*|\s*\(\s*|\s+(?:is|was)\s+|\s+)"
                             rf"(?P<det>my|our|his|her|their|your|a|an|the)\s+{_MODIFIERS}"
                             rf"(?P<noun>{_NOUN})\b", _I)
# Kinship words used as titles: "Grandma Rosa", "Uncle Bob" (no "my" needed).
_KIN_THEN_NAME = re.compile(r"\b(?P<noun>grandma|grandpa|granny|nana|nan|gran|aunt|auntie|"
                            r"uncle|cousin|baby)\s+(?=[^\W\d_])", _I)
_BRAND_THEN_NOUN = re.compile(rf"\b(?:the|my|our|his|her|their|your|this|that)\s+"
                              rf"(?P<name>{_WORDS})\s+(?P<noun>{_THING})\b", _I)
_LABEL = re.compile(rf"^\s*(?P<name>{_WORDS})\s*(?::|\s[-–—]+\s)", _I)
# After "Pepper the beagle" at the start of a sentence, what shows it is a name, not a verb
# ("Brush the dog").
_AFTER_SUBJECT = re.compile(r"\s*(?:$|[,;:)]|'s\b|\s(?:is|was|should|must|has|will|can|needs|"
                            r"looks|always|never|and)\b)", _I)


def names_in(sentence: str, *, first: bool = False) -> list[Name]:
    """The namings in ``sentence`` in order of strength (trigger phrasings first), never two
    over the same words. ``first``: the sentence starts the description, so "Rex: ..." or
    "Rex - ..." there names the subject."""
    found: list[Name] = []

    def add(name: Name | None) -> None:
        if name and not any(n.start < name.end and name.start < n.end for n in found):
            found.append(name)

    for pattern in _TRIGGER_PHRASES:
        for m in pattern.finditer(sentence):
            words, used = _trigger_list(m.group("list"))
            end = max(m.start("list") + used, m.end() if m.end("list") < m.end() else 0)
            add(Name(words, "", m.start(), end, explicit=True, detached=True) if words
                else None)
    if first and (m := _LABEL.match(sentence)):
        add(_named(m, sentence, _last_words(m.group("name"), lower_ok=True), detached=True))
    for pattern in _STATEMENTS:
        for m in pattern.finditer(sentence):
            add(_after(m, sentence, lower_ok=True, many=True, detached=True,
                       veto=_AFTER_NAMING_VETO))
    for m in _NAMING.finditer(sentence):
        add(_after(m, sentence, lower_ok=True, many=True, veto=_AFTER_NAMING_VETO))
    for m in _INTRODUCTIONS.finditer(sentence):
        add(_after(m, sentence, lower_ok=False, detached=True))
    for m in _NOUN_THEN_NAME.finditer(sentence):
        det = m.group("det").lower()
        veto = _AFTER_NOUN_VETO if det in ("my", "our", "the") else _NOT_NAMES
        add(_after(m, sentence, lower_ok=det in _POSSESSIVE_DETS, many=_plural(m.group("noun")),
                   veto=veto))
    for m in _KIN_THEN_NAME.finditer(sentence):
        add(_after(m, sentence, lower_ok=False))
    for m in _NAME_THEN_NOUN.finditer(sentence):
        at_start = not sentence[:m.start()].strip()
        plain = not m.group("sep").strip() and m.group("det").lower() == "the"
        if plain and at_start and not _AFTER_SUBJECT.match(sentence, m.end()):
            continue  # "Brush the dog": a verb, not a name
        if plain or m.group("sep").strip() in (",", "(", "is", "was"):
            add(_named(m, sentence, _last_words(m.group("name"), lower_ok=False)))
    for m in _BRAND_THEN_NOUN.finditer(sentence):
        words = _last_words(m.group("name"), lower_ok=False)
        if words and words == m.group("name"):  # every word a name: "the Aeron chair"
            add(_named(m, sentence, words))
    return sorted(found, key=lambda n: (not n.explicit, n.start))


def strip_label(sentence: str) -> str:
    """``sentence`` without a leading label that only heads it: "Note: keep the face", "Goal -
    keep the logo", "Monday: ..." (see name_words.LABEL_WORDS). A label read as a name or a
    concept would be a wrong trigger word ("Monday") or concept ("note")."""
    m = _LABEL.match(sentence)
    if not m:
        return sentence
    words = m.group("name").lower().split()
    heads = LABEL_WORDS | MONTHS | WEEKDAYS
    if not any(w in heads for w in words) or not all(w in heads | LABEL_QUALIFIERS
                                                     for w in words):
        return sentence
    return sentence[m.end():].strip()


def cut_detached(sentence: str, found: Sequence[Name]) -> str:
    """``sentence`` without the spans that only say who the subject is (see Name.detached)."""
    for name in sorted((n for n in found if n.detached), key=lambda n: -n.start):
        sentence = sentence[:name.start] + " " + sentence[name.end:]
    sentence = re.sub(r"\s+", " ", sentence)
    return re.sub(r"^[\s,;:\-–—]*(?:and\s+|but\s+)?|[\s,;:\-–—]*(?:and|but)?\s*$", "", sentence,
                  flags=re.IGNORECASE)


def absorb(concept: str, names: Collection[str], nouns: Collection[str]) -> str:
    """``concept`` without the named subject, which the trigger word learns: "pepper's ears"
    → "ears", "beagle pepper" → "" (the subject itself), "aeron chair's shape" → "chair
    shape" (a bare "shape" would say nothing). ``nouns``: the subject nouns ("beagle")."""
    words = concept.split()
    bare = [w.removesuffix("'s").removesuffix("'") for w in words]
    gone = [False] * len(words)
    for name in (n.lower().split() for n in names):
        for i in range(len(words) - len(name) + 1):
            if bare[i:i + len(name)] == name:
                gone[i:i + len(name)] = [True] * len(name)
    if not any(gone):
        return concept
    noun_words = {w for n in nouns for w in n.lower().split()}
    removed_noun = ""
    changed = True
    while changed:  # the naming words and subject noun next to the name go with it
        changed = False
        for i, word in enumerate(bare):
            near = (i > 0 and gone[i - 1]) or (i + 1 < len(words) and gone[i + 1])
            if not gone[i] and near and (word in _NAMING_WORDS or word in noun_words):
                gone[i] = changed = True
                removed_noun = word if word in noun_words else removed_noun
    left = [w for w, g in zip(words, gone, strict=True) if not g]
    if len(left) == 1 and left[0] in lx.ATTRIBUTE_NOUNS and removed_noun:
        return f"{removed_noun} {left[0]}"
    return " ".join(left)


def _trigger_list(text: str) -> tuple[tuple[str, ...], int]:
    """The trigger words at the start of ``text`` ("sks", "pepper and salt") and how many
    characters they take."""
    words: list[str] = []
    used = 0
    for m in _TOKEN.finditer(text):
        if text[used:m.start()].strip(" ,&/") not in ("", "and", "or"):
            break  # not a list any more
        quoted = m.group(1) or m.group(2)
        word = (quoted or m.group(3)).strip()
        if not quoted and word.lower() in ("and", "or"):
            continue
        if not quoted and (word.lower() in _COMMON or len(word) < 2):
            break
        words.append(word)
        used = m.end()
    return tuple(words), used


def _after(m: re.Match, sentence: str, *, lower_ok: bool, many: bool = False,
           detached: bool = False, veto: frozenset[str] = _NOT_NAMES) -> Name | None:
    """The name(s) written right after the match ``m`` (see `_take`; ``veto``: `_is_name`)."""
    taken = _take(sentence, m.end(), lower_ok=lower_ok, many=many, veto=veto)
    if not taken:
        return None
    names, end = taken
    noun = (m.groupdict().get("noun") or "").lower()
    return Name(names, noun, m.start(), end, detached=detached)


def _named(m: re.Match, sentence: str, words: str, *, detached: bool = False) -> Name | None:
    """A name written before what ``m`` matched ("Pepper the beagle", "Rex:")."""
    if not words:
        return None
    start = m.start() if detached else m.start("name") + m.group("name").rindex(words)
    end = m.end() if detached else start + len(words)
    end = max(end, m.end("noun")) if "noun" in m.groupdict() and m.group("noun") else end
    return Name((words,), (m.groupdict().get("noun") or "").lower(), start, end,
                detached=detached)


def _take(text: str, pos: int, *, lower_ok: bool, many: bool,
          veto: frozenset[str] = _NOT_NAMES) -> tuple[tuple[str, ...], int] | None:
    """The name at ``pos``: a quoted one, or name words (a full name, particles inside
    allowed: "Vincent van Gogh"); with ``many``, a list ("Miso and Tofu")."""
    names: list[str] = []
    while True:
        one = _one_name(text, pos, lower_ok=lower_ok, veto=veto)
        if not one:
            break
        names.append(one[0])
        pos = one[1]
        more = re.compile(r"\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*&\s*)").match(text, pos)
        if not many or not more or not _one_name(text, more.end(), lower_ok=lower_ok,
                                                 veto=veto):
            break
        pos = more.end()
    return (tuple(names), pos) if names else None


def _one_name(text: str, pos: int, *, lower_ok: bool,
              veto: frozenset[str] = _NOT_NAMES) -> tuple[str, int] | None:
    quoted = re.compile(r"\"([^\"\n]{1,40})\"|'([^'\n]{1,40})'(?!\w)").match(text, pos)
    if quoted:
        inner = (quoted.group(1) or quoted.group(2)).strip()
        return (inner, quoted.end()) if re.search(r"[^\W\d_]", inner) else None
    words: list[str] = []
    end = pos
    for m in re.compile(rf"(\s+)?({_WORD})").finditer(text, pos):
        if m.start() != end or (words and not m.group(1)) or len(words) >= 4:
            break
        word = m.group(2).rstrip("-")
        if words and word.lower() in _PARTICLES and words[-1][0].isupper():
            words.append(word)  # kept only if a capitalised word follows (trimmed below)
            end = m.end()
            continue
        if not _is_name(word, lower_ok=lower_ok and not words, veto=veto) or (
                words and not word[0].isupper()):
            break
        words.append(word)
        end = m.end()
        if not word[0].isupper() or text.startswith("'s", end):
            break  # a lower-case name is one word; "Pepper's" ends the name
    while words and words[-1].lower() in _PARTICLES:
        words.pop()
    if not words:
        return None
    after = re.compile(r"\s+([\w']+)").match(text, end)
    if not words[0][0].isupper() and after and (after.group(1).lower() in _OBJECT_WORDS
                                                or after.group(1).lower().endswith("ly")):
        return None  # "my cat stares at me", "my dog wags his tail": a verb, not a name
    name = " ".join(words)
    return name, pos + text[pos:].index(words[0]) + len(name)


def _last_words(text: str, *, lower_ok: bool) -> str:
    """The longest run of name words ending ``text`` ("Keep Pepper" → "Pepper")."""
    words = text.split()
    kept: list[str] = []
    for word in reversed(words):
        if not _is_name(word, lower_ok=lower_ok and not kept) and not (
                kept and word.lower() in _PARTICLES):
            break
        kept.insert(0, word)
    while kept and kept[0].lower() in _PARTICLES:
        kept.pop(0)
    return " ".join(kept)


def _is_name(word: str, *, lower_ok: bool, veto: frozenset[str] = _NOT_NAMES) -> bool:
    """``veto``: the words that are no name; a looser one only applies to a capitalised word
    (where the phrasing makes a name likely, "my dog Bear"), lower case always gets all."""
    low = word.lower()
    veto = veto if word[0].isupper() else _NOT_NAMES
    if len(low) < 2 or low in veto or not (word[0].isupper() or lower_ok):
        return False
    if low.endswith(("s", "es")) and low not in PET_NAMES and (low[:-1] in veto
                                                               or low[:-2] in veto):
        return False  # "barks", "watches": a verb or plural of a known word
    # lower-case "-ing"/"-ed"/"-ly" words are verbs and adverbs ("my dog sleeping")
    return word[0].isupper() or not low.endswith(("ing", "ed", "ly"))


def _plural(noun: str) -> bool:
    """"my cats Miso and Tofu": a plural noun can be given several names."""
    low = noun.lower()
    return low.endswith("s") and low not in _NOUNS


def only_common_words(text: str) -> bool:
    """Is ``text`` made of ordinary English words only ("fine", "the default")? Such a value
    after "the trigger is" is a remark, not a trigger word."""
    words = re.findall(r"[\w'-]+", text.lower())
    return bool(words) and all(w in _NOT_NAMES for w in words)

