"""The offline caption refiner: intent rules applied phrase by phrase, no model needed.

For one item (`CaptionJob`) it builds the caption that binds the right things to the trigger:

1. **Clean** the captioner's text: artefacts ("arafed"), openers ("The image shows"), repeated
   words ("a man a man a man"). The trigger words (and old ones) the caption repeats are taken
   out ("a photo of ohwx man" -> "a photo"), and a phrase naming two concepts is cut between
   them ("with a beard | and black hair"), so dropping one never drops the other.
2. **Merge** (crops only): the crop's own phrases, then the phrases of its source image's
   caption that mention the crop's concept (the source saw it in context) and the source's
   subject phrase ("a man"), so the crop is still captioned as part of the subject. Phrases
   about other things in the source are left out: the crop does not show them.
3. **Delete** concepts, and those painted out of the item, are never mentioned: a phrase that
   names one is dropped, with what only says where it was ("| on his arm") or what it had
   ("a necklace | with a cross": a "with" phrase right after it naming no other concept).
4. **Keep** concepts are not described: their words are cut from a phrase (its terms, parts,
   synonyms, "bearded"), because whatever the caption leaves unsaid the trigger word absorbs.
   What the phrase says about something else stays: a style's subject ("a watercolor painting
   of a house" -> "a house"), the noun an adjective was on ("a bearded man" -> "a man"), the
   owner ("a man's face" -> "a man"). A kept *subject* ("my dog") goes with its descriptions:
   "a dog" is no class word here, the checks count it as describing the kept concept, and the
   trigger word stands for the dog. A phrase with nothing else left is dropped.
5. **Modify** concepts are described with their attribute words. A phrase about one is kept
   (and kept longest when shortening). When the captioner missed the concept or named it
   without a state ("with hair"), the state comes from the crop's detected value or, for a
   whole image, from its crops' captions and detections (`CaptionJob.hints`).
6. **Trigger first**: the trigger words begin the caption, once; a crop adds its framing
   ("close-up of the face") right after, so the model learns what a close-up is.

Every change is noted; what the rules cannot fix (a modify concept nobody described) becomes a
warning that points to Caption Review.
"""

from __future__ import annotations

from ..intent.lexicon import POSSESSIVES
from ..intent.schema import Operation
from .job import FRAMING, CaptionJob, Part, Refined
from .rules import MEDIUM_NOUNS, CaptionRules, ConceptTerms
from .text import (
    COPULAS,
    FUNCTION_WORDS,
    PREPOSITION_WORDS,
    Phrase,
    collapse_repeats,
    normalise,
    split_phrases,
    strip_close_up,
    trim,
    words,
)

SUBJECT, FRAMED, MODIFY = 2.0, 2.5, 3.0  # importance of the subject, framing, modify phrases


def refine_offline(job: CaptionJob, rules: CaptionRules) -> Refined:
    """The refined caption of ``job`` under ``rules`` (steps in the module docstring)."""
    refined = Refined(rules.trigger)
    phrases = _cleaned_phrases(job.own, refined, "the caption")
    if job.is_crop:
        phrases = _merge_with_source(job, phrases, rules, refined)
    if not phrases and not job.hints and not job.value:
        refined.warnings.append("the captioner wrote nothing usable for this image; the caption "
                                "is the trigger alone (write one in Caption Review)")
    refined.parts = score_parts(phrases, job, rules, refined.notes)
    if job.is_crop and job.concept:
        concept = rules.concept(job.concept)
        phrase = concept.phrase if concept else job.concept
        refined.parts.insert(0, Part(FRAMING.format(phrase=phrase), FRAMED))
    _describe_modified(job, rules, refined)
    return refined


def score_parts(phrases: list[Phrase], job: CaptionJob, rules: CaptionRules,
                notes: list[str]) -> list[Part]:
    """The phrases that may stay, each with its importance; dropped ones noted with why.
    Shared with the LLM refiner, which uses it to rank its answer's phrases for shortening."""
    parts: list[Part] = []
    removed = {name.lower() for name in job.removed}
    dropped: Operation | None = None  # why the phrase just before was dropped, if it was
    for phrase in _by_concept(_without_triggers(phrases, rules, notes), rules):
        text_words = phrase.words
        if dropped and _qualifies_previous(phrase, dropped, rules):
            notes[-1] = notes[-1].replace(" (", f" and '{phrase.text}' (", 1)
            continue  # "with a tattoo | on his arm": where the dropped thing was
        dropped = None
        deleted = [c for c in rules.concepts if c.mentioned_in(text_words)
                   and (c.operation is Operation.DELETE or c.name in removed)]
        modified = [c for c in rules.by_operation(Operation.MODIFY) if c.mentioned_in(text_words)]
        kept = [c for c in rules.by_operation(Operation.KEEP) if c.mentioned_in(text_words)]
        text = phrase.text
        if deleted:
            notes.append(f"removed '{text}' (delete: {deleted[0].name})")
            dropped = Operation.DELETE
            continue
        if kept:  # "a bearded man" -> "a man"; "an ink wash painting of a cat" -> "a cat"
            text = _without_kept(text, rules, modified[0] if modified else None)
            if not text:
                notes.append(f"removed '{phrase.text}' (keep: {kept[0].name}; the trigger "
                             "word absorbs it)")
                dropped = Operation.KEEP
                continue
            notes.append(f"removed '{kept[0].name}' from '{phrase.text}' (keep: the trigger "
                         "word absorbs it)")
        if rules.is_trigger_only(text) or _same_as_framing(text, job, rules):
            continue  # says what the trigger or the framing already says
        if modified:
            parts.append(Part(text, MODIFY, modified[0].name))
        else:
            first = phrase.sentence == 0 and phrase.position == 0
            parts.append(Part(text, SUBJECT if first else 1.0 - 0.01 * len(parts)))
    return _unique(parts)


def _without_kept(text: str, rules: CaptionRules, modified: ConceptTerms | None) -> str:
    """``text`` with the words of every keep concept cut (`without_term`), one at a time; ""
    when a phrase about no modify concept cannot be rid of them."""
    for _ in range(8):  # a phrase names a few kept things at most; never loop on a bad cut
        kept = rules.mentions(text, Operation.KEEP)
        if not kept:
            return text
        cut = without_term(text, kept[0], modified)
        if cut == text:
            break  # no progress: a modify concept's phrase stays whole rather than lose it
        text = cut
    return text if modified else ""


def without_term(text: str, kept: ConceptTerms, modified: ConceptTerms | None = None) -> str:
    """``text`` without the words about ``kept`` ("" when nothing else is left). What the words
    are on stays: the picture a style's medium is "of" ("an ink wash painting of a mountain
    landscape" -> "a mountain landscape"), the noun a kept adjective is on ("a bearded man" ->
    "a man"), the owner ("a man's face" -> "a man"). With ``modified``, what is left must
    still mention it, else the side of the kept term that does ("a mountain | in ink wash
    painting style"), else ``text`` whole."""
    tokens = text.split()
    lower = words(text)
    if len(lower) != len(tokens):  # punctuation inside words: rather not guess
        return text if modified else ""
    found = kept.locate(lower)
    if found is None:
        return text if modified else ""
    start, term_start, end = found
    while end < len(lower) and lower[end] in MEDIUM_NOUNS:
        end += 1  # "watercolor | painting": the style's medium goes with it
    after = lower[end] if end < len(lower) else ""
    if after == "of":
        rest = tokens[end + 1:]  # what the kept style or medium shows
    elif after in COPULAS:
        rest = []  # "his face is round": all of it about the kept thing
    elif after and after not in FUNCTION_WORDS:
        rest = tokens[:term_start] + tokens[end:]  # a kept adjective on a noun
    else:
        rest = _owner(tokens[:start]) + tokens[end:]
    cut = " ".join(_article(trim(rest)))
    if modified is None or modified.mentioned_in(words(cut)):
        return cut
    before, following = tokens[:start], tokens[end:]
    if following and following[0].lower() == "of":
        following = following[1:]
    if modified.mentioned_in(words(" ".join(following))):
        return " ".join(following)
    return " ".join(trim(before)) or text


def _owner(tokens: list[str]) -> list[str]:
    """The words before a kept noun, the possessor made plain: "a man's" -> "a man"."""
    if tokens and tokens[-1].lower().endswith(("'s", "’s")):
        return [*tokens[:-1], tokens[-1][:-2]]
    return tokens


def _article(tokens: list[str]) -> list[str]:
    """"a"/"an" agreeing with the word that now follows it ("an ink wash ..." cut to "an cat")."""
    if len(tokens) > 1 and tokens[0].lower() in ("a", "an"):
        vowel = tokens[1][:1].lower() in "aeiou"
        article = "an" if vowel else "a"
        tokens = [article.capitalize() if tokens[0][0].isupper() else article, *tokens[1:]]
    return tokens


def _without_triggers(phrases: list[Phrase], rules: CaptionRules,
                      notes: list[str]) -> list[Phrase]:
    """The phrases without the trigger words they repeat ("ohwx man" -> "man")."""
    out: list[Phrase] = []
    changed: list[str] = []
    for phrase in phrases:
        text = rules.without_triggers(phrase.text)
        if text != phrase.text:
            changed.append(phrase.text)
        if text:
            out.append(Phrase(text, phrase.sentence, phrase.position))
    if changed:
        notes.append("removed the trigger words the caption repeated from "
                     + ", ".join(f"'{t}'" for t in changed))
    return out


def _by_concept(phrases: list[Phrase], rules: CaptionRules) -> list[Phrase]:
    """Phrases cut at "and"/"or" where the words after it name another concept than the words
    before ("with a beard | black hair"), so dropping one concept never drops the other.
    Between words that name no concept ("a black and white photo") nothing is cut."""
    out: list[Phrase] = []
    for phrase in phrases:
        pieces: list[list[str]] = [[]]
        joins: list[str] = []
        for token in phrase.text.split():
            if token.lower() in ("and", "or") and pieces[-1]:
                joins.append(token)
                pieces.append([])
            else:
                pieces[-1].append(token)
        merged = [pieces[0]]
        for join, piece in zip(joins, pieces[1:], strict=True):
            left, right = _concepts_in(merged[-1], rules), _concepts_in(piece, rules)
            if piece and left and right and left != right:
                merged.append(piece)
            else:
                merged[-1] = [*merged[-1], join, *piece]
        if len(merged) == 1:
            out.append(phrase)  # uncut: as the chunker made it
            continue
        for n, piece in enumerate(trim(p) for p in merged):
            if piece:
                out.append(Phrase(" ".join(piece), phrase.sentence, phrase.position + n))
    return out


def _concepts_in(tokens: list[str], rules: CaptionRules) -> frozenset[str]:
    return frozenset(c.name for c in rules.mentions(" ".join(tokens)))


def _qualifies_previous(phrase: Phrase, dropped: Operation, rules: CaptionRules) -> bool:
    """Does ``phrase`` only say more about the phrase dropped before it? A prepositional phrase
    on a body part or possession ("on his arm", "around her neck") says where it was; after a
    deleted thing, a "with" phrase naming no concept says what it had ("with a cross")."""
    first = phrase.words[:1]
    if phrase.position == 0 or not first:
        return False
    if first[0] in PREPOSITION_WORDS and POSSESSIVES & set(phrase.words):
        return True
    return dropped is Operation.DELETE and first[0] == "with" and not rules.mentions(phrase.text)


def _cleaned_phrases(text: str | None, refined: Refined, what: str) -> list[Phrase]:
    cleaned = normalise(text or "")
    cleaned, repeated = collapse_repeats(cleaned)
    if repeated:
        refined.notes.append(f"{what} repeated itself; repeats removed")
    return [Phrase(strip_close_up(p.text) or p.text, p.sentence, p.position)
            for p in split_phrases(cleaned)]


def _merge_with_source(job: CaptionJob, own: list[Phrase], rules: CaptionRules,
                       refined: Refined) -> list[Phrase]:
    source = _cleaned_phrases(job.source, refined, "the source image's caption")
    if not source:
        return own
    concept = rules.concept(job.concept)
    merged = list(own)
    taken: list[str] = []
    subject = source[0]
    if not rules.mentions(subject.text) and not _covered(subject, merged):
        merged.insert(0, Phrase(subject.text, 0, 0))  # the subject leads, as in the source
        merged[1:] = [Phrase(p.text, p.sentence + 1, p.position) for p in merged[1:]]
        taken.append(subject.text)
    for phrase in source[1:]:
        if concept is not None and concept.mentioned_in(phrase.words) \
                and not _covered(phrase, merged):
            merged.append(Phrase(phrase.text, len(merged), 1))
            taken.append(phrase.text)
    if taken:
        refined.notes.append("merged with the source image's caption: "
                             + ", ".join(f"'{t}'" for t in taken))
    return merged


def _describe_modified(job: CaptionJob, rules: CaptionRules, refined: Refined) -> None:
    """Make every modify concept the item shows say its state (step 5)."""
    for concept in rules.by_operation(Operation.MODIFY):
        parts = [p for p in refined.parts if p.modify == concept.name]
        if any(concept.attribute_words(words(p.text)) for p in parts):
            continue  # described
        hints = _hints_for(job, concept.name)
        if not (parts or hints or job.concept == concept.name):
            continue  # not in this image (as far as anything tells)
        if not hints:
            refined.warnings.append(f"{concept.name}: nothing says its state (the caption "
                                    f"names no {concept.phrase} state and no crop or detection "
                                    "does); describe it in Caption Review")
            continue
        for part in parts:
            refined.parts.remove(part)
        hint, origin = hints[0]
        refined.parts.append(Part(hint, MODIFY, concept.name))
        refined.notes.append(f"added '{hint}' for {concept.name} ({origin})")


def _hints_for(job: CaptionJob, concept: str) -> list[tuple[str, str]]:
    """States of ``concept`` known from elsewhere: a crop's detected value; for a whole image,
    what its crops say (a crop of another concept does not show this one)."""
    if job.is_crop:
        return [(job.value, "detected value of this crop")] \
            if job.concept == concept and job.value else []
    return [(h, "from this image's crops") for h in job.hints.get(concept, [])]


def _same_as_framing(text: str, job: CaptionJob, rules: CaptionRules) -> bool:
    """A crop's phrase that only names its concept ("a face") repeats the framing."""
    if not job.is_crop or not job.concept:
        return False
    concept = rules.concept(job.concept)
    return concept is not None and concept.mentioned_in(words(text)) \
        and not concept.attribute_words(words(text))


def _covered(phrase: Phrase, phrases: list[Phrase]) -> bool:
    """Does one of ``phrases`` already say what ``phrase`` says (its words a subset)?"""
    mine = set(phrase.words)
    return any(mine <= set(p.words) for p in phrases)


def _unique(parts: list[Part]) -> list[Part]:
    """Parts without repeats: a part whose words another part contains goes."""
    kept: list[Part] = []
    for part in sorted(parts, key=lambda p: -len(words(p.text))):
        if not any(set(words(part.text)) <= set(words(k.text)) for k in kept):
            kept.append(part)
    order = {id(p): i for i, p in enumerate(parts)}
    return sorted(kept, key=lambda p: order[id(p)])
