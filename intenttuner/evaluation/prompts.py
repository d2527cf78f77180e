"""The evaluation plan: from an intent, every prompt and seed the three tests generate from.

- **stability**: the subject in ``prompts_per_test`` neutral contexts of its domain ("a photo
  of vincent, in a cafe"), ``images_per_prompt`` seeds each; every kept concept is checked in
  every image, so the items name no concept.
- **controllability**: for each modified concept with two or more values, the same contexts
  and the same seeds for every value, only the value text differing ("a photo of vincent
  with black hair, in a cafe" / "... with blonde hair, in a cafe"): the images of two values
  differ by the prompt alone, so a classifier telling them apart measures the text's control.
- **leakage**: for each deleted concept, prompts where it would come back *without* being
  named (naming it would test prompt-following, not leakage): the bare subject first, the way
  the training captions had it, then framings and places (`contexts`).

Seeds: item seed = (seed + k) mod 2**64, k counting (context, image) from 0 within stability
and within each value of a modified concept, so paired items share k. Each deleted concept
continues the count instead: their prompts are the same (none names any concept), and the same
seeds would only draw the same images again.
A test with nothing to measure is left out with a note; the plan is deterministic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import InputError
from ..intent.schema import Concept, Granularity, Intent, Operation
from .contexts import PICTURE, DomainWording, avoiding, intent_words, render, wording
from .types import EvalItem, EvalPlan, Test, intent_fingerprint

MAX_PROMPTS_PER_TEST = 32
MAX_IMAGES_PER_PROMPT = 16
SEED_SPACE = 2**64  # KSampler's seed widget goes up to 0xffffffffffffffff: seeds wrap there

# Things a person wears: "wearing a striped jacket" says worn, "with" could mean carried.
WORN = frozenset("""jacket coat blazer parka shirt t-shirt blouse sweater hoodie dress skirt suit
outfit costume clothes clothing uniform hat cap beanie helmet glasses sunglasses scarf tie
shoes boots sneakers jeans trousers pants gloves earrings necklace jewelry jewellery""".split())
# Nouns that take no "a": "with black hair", "wearing armour".
UNCOUNTABLE = frozenset("""hair fur armour armor clothing jewelry jewellery makeup skin
leather denim""".split())
_DETERMINERS = frozenset("a an the some two three his her their its".split())


@dataclass(frozen=True)
class PlanSettings:
    prompts_per_test: int = 4  # contexts per test, and per value for controllability
    images_per_prompt: int = 2  # seeds per prompt: the same text under different noise
    seed: int = 0  # base seed: item seeds are seed + k, the same k for paired items

    def __post_init__(self) -> None:
        _check_int("prompts_per_test", self.prompts_per_test, 1, MAX_PROMPTS_PER_TEST)
        _check_int("images_per_prompt", self.images_per_prompt, 1, MAX_IMAGES_PER_PROMPT)
        _check_int("seed", self.seed, 0, SEED_SPACE - 1)


def build_plan(intent: Intent, settings: PlanSettings | None = None) -> EvalPlan:
    """The prompts and seeds that evaluate ``intent`` (see the module docstring; ``settings``
    default: `PlanSettings()`). Raises InputError when no test applies (no kept, modified or
    deleted concept)."""
    settings = settings or PlanSettings()
    planner = _Planner(intent, settings)
    items = [*planner.stability(), *planner.controllability(), *planner.leakage()]
    if not items:
        raise InputError(
            f"The intent of '{planner.trigger}' has no kept, modified or deleted concept to "
            "evaluate (" + "; ".join(planner.notes) + "). Describe what to keep, change or "
            "remove in Intent Parse, e.g. \"Keep his face. His hair colour should be "
            "adjustable. Never a necklace.\"")
    return EvalPlan(intent_fingerprint=intent_fingerprint(intent), trigger=planner.trigger,
                    items=items, settings=asdict(settings), notes=planner.notes)


def value_clause(concept: Concept, value: str, person: bool) -> str:
    """How a controllability prompt names ``value`` of ``concept``, after the subject.

    Things (instances, and attributes whose every value names the thing: "black hair") are a
    noun phrase: " with black hair", " wearing a striped jacket" (``person``: the subject is
    someone who wears it). A bare state ("smiling", "elderly") or a whole-image value ("soft
    daylight") is its own comma clause: ", smiling". The connector depends on the concept
    only, so the prompts of two values differ in the value's words alone.
    """
    if concept.granularity is Granularity.IMAGERY or not _values_are_things(concept):
        return f", {value}"
    verb = "wearing" if person and set(_words(f"{concept.name} {concept.phrase}")) & WORN \
        else "with"
    return f" {verb} {with_article(value)}"


def with_article(noun_phrase: str) -> str:
    """"a striped jacket", "an orange cap"; unchanged when plural, uncountable or already
    determined ("black hair", "red shoes", "the hat")."""
    words = noun_phrase.split()
    first_part = noun_phrase.split(" and ")[0].split()
    head = first_part[-1].lower() if first_part else ""
    if (words[0].lower() in _DETERMINERS or words[0][0].isdigit() or head in UNCOUNTABLE
            or (head.endswith("s") and not head.endswith("ss"))):
        return noun_phrase
    return f"{'an' if noun_phrase[0].lower() in 'aeiou' else 'a'} {noun_phrase}"


class _Planner:
    """The state of one `build_plan` call: the intent's wording and the notes so far."""

    def __init__(self, intent: Intent, settings: PlanSettings):
        self.intent = intent
        self.settings = settings
        self.trigger = intent.trigger_words[0]
        self.words: DomainWording = wording(intent.domain)
        self.avoid = intent_words(intent)
        self.notes: list[str] = []

    # -- the three tests ------------------------------------------------------------------
    def stability(self) -> list[EvalItem]:
        if not self.intent.by_operation(Operation.KEEP):
            self.notes.append("no kept concept: stability is not applicable")
            return []
        whole = [c.name for c in self.intent.by_operation(Operation.KEEP)
                 if c.granularity is Granularity.IMAGERY]
        if whole and self.words.views != self.words.places:
            self.notes.append(f"stability uses framings, not places: the intent keeps the "
                              f"whole-image {_listed(whole)}, which a place would change")
        contexts = self._contexts(self.words.views if whole else self.words.places, "stability")
        return _numbered(Test.STABILITY, self._rows(contexts, self._prompt, concept=None))

    def controllability(self) -> list[EvalItem]:
        rows: list[dict] = []
        for concept in self.intent.by_operation(Operation.MODIFY):
            if len(concept.values) < 2:
                self.notes.append(f"'{concept.name}' has no values to switch between, so it is "
                                  "not tested for controllability: give it two in the intent, "
                                  f"e.g. \"change {concept.name} (a / b)\"")
                continue
            rows.extend(self._value_rows(concept))
        if not rows:
            self.notes.append("no modified concept with two or more values: controllability "
                              "is not applicable")
        return _numbered(Test.CONTROLLABILITY, rows)

    def leakage(self) -> list[EvalItem]:
        deleted = self.intent.by_operation(Operation.DELETE)
        if not deleted:
            self.notes.append("no deleted concept: delete leakage is not applicable")
            return []
        contexts = self._contexts((*self.words.plain, *self.words.views, *self.words.places),
                                  "leakage")
        per_concept = len(contexts) * self.settings.images_per_prompt
        rows: list[dict] = []
        for n, concept in enumerate(deleted):
            rows.extend(self._rows(contexts, self._prompt, concept=concept.name,
                                   first_k=n * per_concept))
        return _numbered(Test.LEAKAGE, rows)

    # -- helpers --------------------------------------------------------------------------
    def _prompt(self, context: str, clause: str = "", medium: str | None = None) -> str:
        return render(self.words, self.trigger, context, clause, medium)

    def _value_rows(self, concept: Concept) -> list[dict]:
        """Every value of ``concept`` in the same contexts with the same seeds."""
        whole = concept.granularity is Granularity.IMAGERY
        contexts = self._contexts(self.words.views if whole else self.words.places,
                                  f"'{concept.name}'")
        medium = PICTURE if whole else None  # "a photo of" would prejudge a whole-image value
        rows: list[dict] = []
        for value in concept.values:
            clause = value_clause(concept, value.text, self.words.person)
            rows.extend(self._rows(contexts, lambda ctx, clause=clause: self._prompt(
                ctx, clause, medium), concept=concept.name, value=value.text))
        return rows

    def _contexts(self, pool: tuple[str, ...], what: str) -> list[str]:
        """``prompts_per_test`` contexts from ``pool`` that name no word of the intent,
        repeated (with new seeds) when there are fewer."""
        found = avoiding(pool, self.avoid)
        if not found:
            self.notes.append(f"every neutral context of {what} names a word of the intent's "
                              "concepts: they are used anyway")
            found = avoiding(pool, frozenset())
        wanted = self.settings.prompts_per_test
        if len(found) < wanted:
            self.notes.append(f"{what}: {len(found)} distinct contexts for {wanted} prompts, so "
                              "contexts repeat with other seeds")
        return [found[i % len(found)] for i in range(wanted)]

    def _rows(self, contexts: list[str], prompt_of, *, concept: str | None,
              value: str | None = None, first_k: int = 0) -> list[dict]:
        """The fields of one item per (context, seed): k counts from ``first_k`` in that
        order, so rows built from the same contexts pair item by item."""
        per = self.settings.images_per_prompt
        return [dict(prompt=prompt_of(context), context=context, concept=concept, value=value,
                     seed=(self.settings.seed + first_k + p * per + j) % SEED_SPACE)
                for p, context in enumerate(contexts) for j in range(per)]


def _numbered(test: Test, rows: list[dict]) -> list[EvalItem]:
    return [EvalItem(id=f"{test.value}-{i:03d}", test=test, **fields)
            for i, fields in enumerate(rows)]


def _values_are_things(concept: Concept) -> bool:
    if concept.granularity is Granularity.INSTANCE:
        return True
    thing = set(_words(f"{concept.name} {concept.phrase}"))
    return all(set(_words(v.text)) & thing for v in concept.values)


def _words(text: str) -> list[str]:
    return [w.strip(".,;:!?\"'()") for w in text.lower().split()]


def _listed(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
