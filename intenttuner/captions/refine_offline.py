"""The offline caption refiner: intent rules applied phrase by phrase, no model needed.

For one item (`CaptionJob`) it builds the caption that binds the right things to the trigger:

1. **Clean** the captioner's text: artefacts ("arafed"), openers ("The image shows"), repeated
   words ("a man a man a man").
2. **Merge** (crops only): the crop's own phrases, then the phrases of its source image's
   caption that mention the crop's concept (the source saw it in context) and the source's
   subject phrase ("a man"), so the crop is still captioned as part of the subject. Phrases
   about other things in the source are left out: the crop does not show them.
3. **Delete** concepts, and those painted out of the item, are never mentioned: a phrase that
   names one is dropped.
4. **Keep** concepts are not described: a phrase about one (its terms, parts, synonyms) is
   dropped, because whatever the caption leaves unsaid the trigger word absorbs.
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
from .rules import CaptionRules, ConceptTerms
from .text import (
    DETERMINERS,
    PREPOSITION_WORDS,
    Phrase,
    collapse_repeats,
    normalise,
    split_phrases,
    strip_close_up,
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
    dropped_last = False
    for phrase in phrases:
        text_words = phrase.words
        if dropped_last and _qualifies_previous(phrase):
            notes[-1] = notes[-1].replace(" (", f" and '{phrase.text}' (", 1)
            continue  # "with a tattoo | on his arm": where the dropped thing was
        dropped_last = False
        deleted = [c for c in rules.concepts if c.mentioned_in(text_words)
                   and (c.operation is Operation.DELETE or c.name in removed)]
        modified = [c for c in rules.by_operation(Operation.MODIFY) if c.mentioned_in(text_words)]
        kept = [c for c in rules.by_operation(Operation.KEEP) if c.mentioned_in(text_words)]
        if deleted:
            notes.append(f"removed '{phrase.text}' (delete: {deleted[0].name})")
            dropped_last = True
        elif rules.is_trigger_only(phrase.text) or _same_as_framing(phrase.text, job, rules):
            continue  # says what the trigger or the framing already says
        elif modified and kept:  # "an ink wash painting of a mountain landscape"
            text = without_term(phrase.text, kept[0], modified[0])
            notes.append(f"removed '{kept[0].name}' from '{phrase.text}' (keep: the trigger "
                         "word absorbs it)")
            parts.append(Part(text, MODIFY, modified[0].name))
        elif modified:
            parts.append(Part(phrase.text, MODIFY, modified[0].name))
        elif kept:
            notes.append(f"removed '{phrase.text}' (keep: {kept[0].name}; the trigger word "
                         "absorbs it)")
            dropped_last = True
        else:
            first = phrase.sentence == 0 and phrase.position == 0
            parts.append(Part(phrase.text, SUBJECT if first else 1.0 - 0.01 * len(parts)))
    return _unique(parts)


def without_term(text: str, kept: ConceptTerms, modified: ConceptTerms) -> str:
    """``text`` without the words about ``kept``, keeping those about ``modified``: the part
    before or after the kept term, whichever holds the modify concept ("an ink wash painting
    of a mountain landscape" -> "a mountain landscape")."""
    tokens = text.split()
    lower = words(text)
    if len(lower) != len(tokens):
        return text  # punctuation inside words: leave the phrase whole rather than guess
    span = kept.span_in(lower)
    if span is None:
        return text
    start, end = span
    after, before = tokens[end:], tokens[:start]
    if after and after[0].lower() == "of":
        after = after[1:]
    if modified.mentioned_in(words(" ".join(after))):
        return " ".join(after)
    while before and before[-1].lower() in DETERMINERS | {"with", "of", "and", "in"}:
        before = before[:-1]
    return " ".join(before) if before else text


def _qualifies_previous(phrase: Phrase) -> bool:
    """A prepositional phrase on a body part or possession ("on his arm", "around her neck")
    says where the thing before it is, so it goes with it."""
    first = phrase.words[:1]
    return phrase.position > 0 and bool(first) and first[0] in PREPOSITION_WORDS \
        and bool(POSSESSIVES & set(phrase.words))


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
