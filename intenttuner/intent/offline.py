"""The offline intent parser: a forgiving controlled language, no model needed.

It reads a description sentence by sentence and clause by clause:

- ``trigger: vincent`` / "a man called Vincent" → trigger word; ``domain: product`` → domain
  (otherwise guessed from the subject sentence and the kept concepts).
- a clause with a *delete* cue ("remove", "no", "never", "without"...), a *modify* cue ("change",
  "adjustable", "switch between"...) or a *keep* cue ("keep", "consistent", "the same"...) yields
  one concept per listed noun phrase ("keep his face and beard" → face, beard). Negation flips
  cues: "don't change his face" is keep, "don't remove the glasses" is keep too.
- values: "between A and B", "from A to B", "either A or B", "(A / B)", "such as A or B".
- ``[n]`` binds reference box n to the noun phrase or value just before it.

Nothing is dropped silently: a clause it cannot place goes to ``Intent.unplaced`` with the
reason, and every assumption (a default value, the default trigger) goes to ``Intent.notes``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from . import lexicon as lx
from .schema import Domain, Granularity, Intent, Operation, ReferenceBox

_REF = re.compile(r"\[(\d+)\]")
_WEAK_CUES = frozenset({"any", "different", "either", "various", "always", "same", "fixed",
                        "learn", "accurate", "accurately", "capture", "stable", "control",
                        "alternative", "flexible"})
_DELETE_VERBS = frozenset({"remove", "removed", "removing", "delete", "deleted", "drop",
                           "erase", "hide", "exclude", "excluded", "strip", "eliminate"})
_MULTIWORD = sorted({p for p in (*lx.IMAGERY_NOUNS, *lx.DEFAULT_VALUES) if " " in p},
                    key=len, reverse=True)
_OBJECT_OF = {"expression": "face", "facial expression": "face", "hairstyle": "hair",
              "age": "face", "tone": "skin"}
_PLURAL_OBJECTS = {"eye": "eyes"}  # "eye colour" is seen on both eyes
_DOMAIN_ALIASES = {"2d character": Domain.CHARACTER, "anime": Domain.CHARACTER,
                   "painting style": Domain.STYLE, "art style": Domain.STYLE,
                   "pose/action": Domain.POSE, "action": Domain.POSE, "person": Domain.PORTRAIT,
                   "face": Domain.PORTRAIT}


@dataclass
class _Draft:
    name: str
    operation: Operation
    source: str
    references: list[int] = field(default_factory=list)
    values: list[tuple[str, list[int]]] = field(default_factory=list)


@dataclass
class _State:
    triggers: list[str] = field(default_factory=list)
    domain: Domain | None = None
    drafts: list[_Draft] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)


def parse_offline(description: str, references: Sequence[ReferenceBox] = ()) -> Intent:
    """Parse ``description`` into a validated Intent (see the module docstring)."""
    text = _normalise(description)
    if not text:
        raise InputError("The intent description is empty. Describe what to keep, change and "
                         "remove, e.g. 'Keep his face. Hair colour adjustable. No necklace.'")
    state = _State()
    for sentence in _sentences(text):
        _parse_sentence(sentence, state)
    return _build(description, references, state)


# -- sentences and clauses -----------------------------------------------------------------
def _normalise(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"\b(e\.g|i\.e|etc|vs)\.", lambda m: m.group(1).replace(".", ""), text,
                  flags=re.IGNORECASE)
    return re.sub(r"[ \t]+", " ", text).strip()


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+|(?<=\])\.\s*", text)
    return [p.strip(" .!?") for p in parts if p and p.strip(" .!?")]


def _parse_sentence(sentence: str, state: _State) -> None:
    sentence = _directive(sentence, state)
    if not sentence:
        return
    _infer_trigger(sentence, state)
    previous = ""  # the last concept named in this sentence, for "its colour"
    for clause in _clauses(sentence):
        operation = _operation(clause)
        if operation is None:
            if _is_context(clause):
                state.context.append(clause)
                # "Train the model on the superhero landing pose [1]": the referenced subject
                # itself is what the trigger word must absorb.
                if _REF.search(clause):
                    state.drafts += _concepts(_subject_of(clause), Operation.KEEP, sentence,
                                              previous)
            else:
                state.unplaced.append(f"{clause} (no keep / change / remove word found)")
            continue
        drafts = _concepts(clause, operation, sentence, previous)
        if not drafts:
            state.unplaced.append(f"{clause} (found nothing to {operation.value})")
        state.drafts.extend(drafts)
        previous = drafts[-1].name if drafts else previous


_DIRECTIVE = re.compile(r"\b(trigger words?|trigger|token|domain)\s*(?::|=|\bis\b)\s*",
                        re.IGNORECASE)


def _directive(sentence: str, state: _State) -> str:
    """Apply "trigger: x" / "domain: y" anywhere in the sentence; return what is left."""
    found = list(_DIRECTIVE.finditer(sentence))
    if not found:
        return sentence
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(sentence)
        key, value = match.group(1).lower(), sentence[match.end():end].strip(" ,;\"'")
        if key == "domain":
            state.domain = _domain_from_name(value)
        else:
            state.triggers += [w.strip(" \"'") for w in re.split(r",|/|\band\b", value)
                               if w.strip(" \"'")]
    return sentence[:found[0].start()].strip(" ,;")


def _domain_from_name(value: str) -> Domain:
    name = value.lower().strip()
    if name in _DOMAIN_ALIASES:
        return _DOMAIN_ALIASES[name]
    try:
        return Domain(name)
    except ValueError:
        known = ", ".join(d.value for d in Domain)
        raise InputError(f"domain '{value}' is not one of: {known}.") from None


def _infer_trigger(sentence: str, state: _State) -> None:
    patterns = (r"\buse\s+[\"']?([\w\-]+)[\"']?\s+as\s+(?:the\s+|a\s+)?trigger",
                r"\b(?:called|named|name is|known as)\s+(\"[^\"]+\"|'[^']+'|[\w\-]+)")
    for pattern in patterns:
        match = re.search(pattern, sentence, flags=re.IGNORECASE)
        if match and not state.triggers:
            state.triggers.append(match.group(1).strip("\"'"))
            return


def _clauses(sentence: str) -> list[str]:
    """Split at "but"/"while"/";" always, and at "and"/","/"without" only between two
    instructions ("keep the face and remove the watermark", not "a red and blue scarf")."""
    pieces = re.split(r"\s*;\s*|,?\s+(?:but|while|whereas|however)\s+", sentence)
    clauses: list[str] = []
    for piece in pieces:
        clauses += _split_between_instructions(piece)
    return [c.strip(" ,") for c in clauses if c.strip(" ,")]


def _split_between_instructions(piece: str) -> list[str]:
    seps = list(re.finditer(r",\s*and\s+|\s+and\s+|,\s*|\s+(?=without\b|with no\b)", piece))
    if not seps:
        return [piece]
    bounds = [0, *(m.start() for m in seps), len(piece)]
    out, start = [], 0
    for i, sep in enumerate(seps):
        left = piece[start:sep.start()]
        right = piece[sep.end():bounds[i + 2]]
        if _has_strong_cue(left) and _has_strong_cue(right):
            out.append(left)
            start = sep.end()
    out.append(piece[start:])
    return out


# -- operations --------------------------------------------------------------------------
def _cue_matches(clause: str) -> list[tuple[Operation, int, int, str]]:
    lowered = clause.lower()
    found: list[tuple[Operation, int, int, str]] = []
    for operation, cues in lx.OPERATION_CUES.items():
        for cue in sorted(cues, key=len, reverse=True):
            for m in re.finditer(rf"(?<![\w']){re.escape(cue)}(?![\w'])", lowered):
                if not any(s <= m.start() < e or m.start() <= s < m.end()
                           for _, s, e, _ in found):
                    found.append((operation, m.start(), m.end(), cue))
    return sorted(found, key=lambda f: f[1])


def _has_strong_cue(text: str) -> bool:
    return any(cue not in _WEAK_CUES for _, _, _, cue in _cue_matches(text))


def _operation(clause: str) -> Operation | None:
    """The clause's operation: a negated cue decides ("don't change" / "no changes to" = keep,
    "don't include" = delete, "should not be fixed" = modify), else the first strong cue, else
    the first weak one ("any background")."""
    matches = _cue_matches(clause)
    lowered = clause.lower()
    for operation, start, _end, cue in matches:
        if _flippable(operation, cue) and _negated(lowered, start, matches):
            if operation is not Operation.KEEP:
                return Operation.KEEP
            return Operation.MODIFY if cue in lx.KEEP_STATES else Operation.DELETE
    strong = [m for m in matches if m[3] not in _WEAK_CUES]
    if strong:
        return strong[0][0]
    return matches[0][0] if matches else None


def _flippable(operation: Operation, cue: str) -> bool:
    """Cues whose meaning a negator turns around ("any" is not: "without any text" deletes)."""
    if operation is Operation.DELETE:
        return cue in _DELETE_VERBS
    return cue not in _WEAK_CUES or cue in lx.KEEP_STATES or cue == "different"


def _negated(lowered: str, position: int, matches: list) -> bool:
    """Is there a negator among the few words before ``position``? A negator inside a longer
    cue ("not" in "do not want") does not count; "never" on its own does."""
    starts = [m.start() for m in re.finditer(r"\S+", lowered[:position])]
    window_start = starts[-(lx.NEGATION_WINDOW + 1)] if len(starts) > lx.NEGATION_WINDOW else 0
    for negator in lx.NEGATORS:
        for m in re.finditer(rf"(?<![\w']){re.escape(negator)}(?![\w'])", lowered[:position]):
            inside_longer_cue = any(s <= m.start() and m.end() <= e and e - s > len(negator)
                                    for _, s, e, _ in matches)
            if m.start() >= window_start and not inside_longer_cue:
                return True
    return False


def _subject_of(clause: str) -> str:
    """The part of a context clause after its context cue ("train a model of X [1]" → X [1])."""
    return clause[max(_context_cue_end(clause), 0):]


def _is_context(clause: str) -> bool:
    return _context_cue_end(clause) >= 0


def _context_cue_end(clause: str) -> int:
    """Where the last-ending context cue of ``clause`` ends; -1 when it has none."""
    lowered = clause.lower()
    ends = [m.end() for cue in lx.CONTEXT_CUES
            if (m := re.search(rf"(?<![\w]){re.escape(cue)}(?![\w])", lowered))]
    return max(ends, default=-1)


# -- concepts ------------------------------------------------------------------------------
def _concepts(clause: str, operation: Operation, sentence: str, previous: str = ""
              ) -> list[_Draft]:
    text = _reorder_of_phrases(clause)
    text, values = _extract_values(text)
    items = _noun_phrases(_strip_cues(text), previous)
    drafts = [_Draft(name, operation, sentence, refs) for name, refs in items]
    if values and operation is Operation.MODIFY:
        if not drafts:
            drafts = [_Draft(_common_head([v for v, _ in values]), operation, sentence)]
        drafts[0].values = values
    elif values:  # "keep the red and blue scarves (A / B)": values read as more concepts
        drafts += [_Draft(v, operation, sentence, refs) for v, refs in values]
    return drafts


def _reorder_of_phrases(text: str) -> str:
    """'the colour of his hair' → 'hair colour', so attributes read object-first."""
    attributes = "|".join(a for a in lx.ATTRIBUTE_NOUNS if a != "style")
    determiners = "the|his|her|its|their|my|our|your|these|those|this|that|a|an"
    return re.sub(rf"\b({attributes})\s+of\s+(?:(?:{determiners})\s+)?([a-z][\w\-]*)",
                  r"\2 \1", text, flags=re.IGNORECASE)


_VALUE_PATTERNS = (
    re.compile(r"\bbetween\s+(?P<a>.+?)\s+and\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(r"\bfrom\s+(?P<a>.+?)\s+to\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(r"\beither\s+(?P<a>.+?)\s+or\s+(?P<b>.+)$", re.IGNORECASE),
    re.compile(r"\((?P<list>[^)]*(?:/|,|\bor\b)[^)]*)\)", re.IGNORECASE),
    re.compile(r":\s*(?P<list>[^:]*(?:/|\bor\b)[^:]*)$", re.IGNORECASE),
    re.compile(r"\b(?:such as|like|eg|for example|including)\s+(?P<list>.+)$", re.IGNORECASE),
)


def _extract_values(text: str) -> tuple[str, list[tuple[str, list[int]]]]:
    for pattern in _VALUE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        if "list" in match.groupdict():
            raw = re.split(r"\s*(?:/|,|\bor\b|\band\b)\s*", match.group("list"))
        else:
            raw = [match.group("a"), match.group("b")]
        values = [v for v in (_value(r) for r in raw) if v[0]]
        if len(values) >= 2:
            unique = [v for i, v in enumerate(values) if v[0] not in {u for u, _ in values[:i]}]
            return text[:match.start()] + " " + text[match.end():], unique
    return text, []


def _value(raw: str) -> tuple[str, list[int]]:
    refs = [int(n) for n in _REF.findall(raw)]
    words = _REF.sub(" ", raw).strip(" ,.").split()
    while words and words[0].lower() in lx.STOPWORDS:
        words = words[1:]
    return " ".join(words).lower(), refs


def _strip_cues(text: str) -> str:
    for _, start, end, _ in sorted(_cue_matches(text), key=lambda m: -m[1]):
        text = text[:start] + " , " + text[end:]
    for negator in lx.NEGATORS:
        text = re.sub(rf"(?<![\w']){re.escape(negator)}(?![\w'])", " ", text,
                      flags=re.IGNORECASE)
    return text


def _noun_phrases(text: str, previous: str = "") -> list[tuple[str, list[int]]]:
    """Split what is left of a clause into noun phrases, each with the [n] refs after it.

    "its shape" names the shape of the noun before it (in this clause, else ``previous``, the
    sentence's last concept), and a bare colour word describes the noun before it ("her hair
    should always be red" → "red hair"); both replace that noun rather than adding a concept.
    """
    lowered = text.lower()
    for phrase in _MULTIWORD:  # protect "time of day" from the stopword filter
        lowered = re.sub(rf"\b{re.escape(phrase)}\b", phrase.replace(" ", "_"), lowered)
    items: list[tuple[str, list[int]]] = []
    for chunk in re.split(r"\s*(?:,|&|\band\b|\bor\b|\bas well as\b|\bplus\b)\s*", lowered):
        refs = [int(n) for n in _REF.findall(chunk)]
        raw = [w.strip(".:;'\"!?()") for w in _REF.sub(" ", chunk).split()]
        raw = [w for w in raw if w and not re.fullmatch(r"\W+", w)]
        name = " ".join(w.replace("_", " ") for w in _head_words(raw))
        if not name:
            if refs and items:
                items[-1][1].extend(refs)
            continue
        owner = items[-1][0] if items else previous
        if raw[0] in lx.POSSESSIVES and name in lx.ATTRIBUTE_NOUNS and owner:
            name = f"{owner} {name}"
        elif name in lx.COLOUR_WORDS and items:
            name = f"{name} {owner}"
        else:
            items.append((name, refs))
            continue
        if items and owner == items[-1][0]:
            items[-1] = (name, items[-1][1] + refs)
        else:
            items.append((name, refs))
    return _distribute_objects(items)


def _head_words(words: list[str]) -> list[str]:
    """Content words of a noun phrase: stop at a preposition once a noun has been seen ("the
    tattoo on his arm" → tattoo), drop function words and trailing adverbs."""
    kept: list[str] = []
    for word in words:
        if word in lx.PHRASE_BREAKS and kept:
            break
        if word not in lx.STOPWORDS and word not in lx.PHRASE_BREAKS:
            kept.append(word)
    while kept and kept[-1].endswith("ly") and len(kept[-1]) > 4:
        kept.pop()
    return kept


def _distribute_objects(items: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """'hair colour and length' → 'hair colour', 'hair length'."""
    out: list[tuple[str, list[int]]] = []
    for name, refs in items:
        previous = out[-1][0].split() if out else []
        if (name in lx.ATTRIBUTE_NOUNS and name not in _OBJECT_OF and len(previous) >= 2
                and previous[-1] in lx.ATTRIBUTE_NOUNS):
            name = " ".join([*previous[:-1], name])
        out.append((name, refs))
    return out


def _common_head(values: list[str]) -> str:
    heads = {v.split()[-1] for v in values if v}
    return heads.pop() if len(heads) == 1 else values[0].split()[-1]


def classify(name: str) -> tuple[Granularity, str]:
    """(granularity, detector phrase) for a concept name."""
    words = name.split()
    if words[-1] in _OBJECT_OF:  # "twin-tail hairstyle" is about the hair
        return Granularity.ATTRIBUTE, _OBJECT_OF[words[-1]]
    attribute_of_object = (len(words) >= 2 and words[-1] in lx.ATTRIBUTE_NOUNS
                           and words[-2] not in lx.IMAGERY_QUALIFIERS)
    if attribute_of_object:
        obj = " ".join(words[:-1])
        return Granularity.ATTRIBUTE, _PLURAL_OBJECTS.get(obj, obj)
    if any(re.search(rf"\b{re.escape(n)}\b", name) for n in lx.IMAGERY_NOUNS):
        return Granularity.IMAGERY, name
    if name in lx.ATTRIBUTE_NOUNS or name in _OBJECT_OF:
        return Granularity.ATTRIBUTE, _OBJECT_OF.get(name, name)
    return Granularity.INSTANCE, name


# -- assembling the intent -----------------------------------------------------------------
def _build(description: str, references: Sequence[ReferenceBox], state: _State) -> Intent:
    notes: list[str] = []
    triggers = state.triggers
    if not triggers:
        triggers = [lx.DEFAULT_TRIGGER]
        notes.append(f"No trigger word given; using '{lx.DEFAULT_TRIGGER}'. Write "
                     "'trigger: <word>' or 'a man called <name>' to choose one.")
    concepts = [_concept(d, notes) for d in _merge(state.drafts)]
    domain = state.domain or guess_domain(state.context, concepts, description)
    used = {n for c in concepts for n in c["references"] + [r for v in c["values"]
                                                            for r in v["references"]]}
    for ref in references:
        if ref.index not in used:
            notes.append(f"Reference box [{ref.index}] is not bound to any concept; write "
                         f"[{ref.index}] after the concept it shows.")
    return Intent.from_data({
        "description": description, "trigger_words": triggers, "domain": domain.value,
        "concepts": concepts, "references": [r.model_dump() for r in references],
        "unplaced": state.unplaced, "notes": notes, "parser": "offline",
    }, what="the parsed intent")


def _merge(drafts: list[_Draft]) -> list[_Draft]:
    """One draft per (name, operation): repeated mentions add references and values."""
    merged: dict[tuple[str, Operation], _Draft] = {}
    for d in drafts:
        key = (d.name, d.operation)
        if key not in merged:
            merged[key] = d
            continue
        kept = merged[key]
        kept.references += [r for r in d.references if r not in kept.references]
        kept.values += [v for v in d.values if v[0] not in {k for k, _ in kept.values}]
    return list(merged.values())


def _concept(draft: _Draft, notes: list[str]) -> dict:
    granularity, phrase = classify(draft.name)
    values = [{"text": _complete_value(t, granularity, phrase), "references": r}
              for t, r in draft.values]
    if draft.operation is Operation.MODIFY and not values:
        defaults = default_values(draft.name, phrase)
        if defaults:
            values = [{"text": t, "references": []} for t in defaults]
            notes.append(f"'{draft.name}': no values given; assuming "
                         f"{' / '.join(defaults)} for captions and probes.")
        else:
            notes.append(f"'{draft.name}': no values given, so it cannot be probed. Add some, "
                         f"e.g. '{draft.name} (A / B)'.")
    return {"name": draft.name, "phrase": phrase, "granularity": granularity.value,
            "operation": draft.operation.value, "references": draft.references,
            "values": values, "source": draft.source}


def _complete_value(text: str, granularity: Granularity, phrase: str) -> str:
    """A bare adjective value of an attribute names its object: 'green' → 'green eyes'."""
    if granularity is Granularity.ATTRIBUTE and len(text.split()) == 1 and text != phrase:
        return f"{text} {phrase}"
    return text


def default_values(name: str, phrase: str) -> tuple[str, ...]:
    if name in lx.DEFAULT_VALUES:
        return lx.DEFAULT_VALUES[name]
    if name.split()[-1] in ("colour", "color") and phrase != name:
        return tuple(f"{c} {phrase}" for c in lx.GENERIC_COLOUR_VALUES)
    return ()


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
