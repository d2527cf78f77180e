"""The data of an evaluation, declared once: the plan (which prompt, which seed, which test) and
the results (a score per metric with its per-concept and per-image breakdown).

Plain, JSON-serialisable pydantic models like the intent, so a plan or a score can be saved,
diffed across runs and read back. A metric that cannot be measured for an intent (no kept
concept, no modified concept with two values...) is ``applicable = False`` with the reason and a
``score`` of None, never a 0 or 1 that would read as a result.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError


class Test(str, Enum):
    STABILITY = "stability"  # kept concepts in neutral contexts
    CONTROLLABILITY = "controllability"  # one value of a modified concept
    LEAKAGE = "leakage"  # where a deleted concept would be likely


Test.__test__ = False  # not a pytest test class, though its name says so


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvalItem(_Model):
    """One generation: a prompt and a seed, and what it tests."""

    id: str = Field(description="Unique in the plan, file-name safe: 'stability-000'.")
    test: Test
    prompt: str
    seed: int = Field(ge=0)
    concept: str | None = Field(default=None, description="controllability: the modified "
                                "concept; leakage: the deleted concept; stability: None (all "
                                "kept concepts are checked in every stability image).")
    value: str | None = Field(default=None, description="controllability: the value prompted.")
    context: str = Field(default="", description="The neutral context the prompt places it in.")


class EvalPlan(_Model):
    intent_fingerprint: str = Field(description="Which intent the plan was made for (see "
                                    "`intent_fingerprint`); score nodes refuse another intent.")
    trigger: str
    items: list[EvalItem]
    settings: dict[str, int | float | str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list, description="Tests left out, and why.")

    def for_test(self, test: Test) -> list[EvalItem]:
        return [item for item in self.items if item.test is test]

    def prompts(self) -> list[str]:
        return [item.prompt for item in self.items]

    def seeds(self) -> list[int]:
        return [item.seed for item in self.items]

    @classmethod
    def from_json(cls, text: str, what: str = "evaluation plan JSON") -> EvalPlan:
        from pydantic import ValidationError

        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "top level"
            raise InputError(f"The {what} is not a valid plan ({where}: {first['msg']}). "
                             "Make it again with the Evaluation Prompts node.") from None


class ImageRecord(_Model):
    """What one metric saw in one generated image."""

    item: str = Field(description="The EvalItem id the image was generated from.")
    image: int = Field(description="Position of the image in the scored image list.")
    concept: str | None = None
    found: bool | None = Field(default=None, description="The concept was detected (None: not "
                               "looked for, e.g. whole-image concepts).")
    box: tuple[float, float, float, float] | None = Field(
        default=None, description="XYXY of the detection that was used, image pixels.")
    similarity: float | None = Field(default=None, description="stability: best cosine to the "
                                     "references; leakage: to the references when filtered.")
    quality: float | None = Field(default=None, description="Human-preference score (stability).")
    target: str | None = Field(default=None, description="controllability: the value prompted.")
    other: str | None = Field(default=None, description="controllability: the opposite value.")
    predicted: str | None = Field(default=None, description="controllability: the value CLIP "
                                  "chose.")
    margin: float | None = Field(default=None, description="controllability: cos(target) - "
                                 "cos(other).")
    correct: bool | None = None


class ConceptResult(_Model):
    """One concept's share of a metric (for controllability, one direction of one pair)."""

    concept: str
    applicable: bool = True
    reason: str = ""
    score: float | None = None
    images: int = 0  # how many images it was measured on
    detection_rate: float | None = None  # stability / leakage: fraction of images it was found in
    mean_similarity: float | None = None  # stability: over the images it was found in
    target: str | None = None  # controllability: direction "target vs other"
    other: str | None = None
    accuracy: float | None = None
    mean_margin: float | None = None


class MetricResult(_Model):
    metric: Test
    applicable: bool
    reason: str = Field(default="", description="Why not applicable, or what was assumed.")
    score: float | None = Field(default=None, description="None when not applicable.")
    higher_is_better: bool = True
    formula: str = Field(default="", description="How `score` is combined from `parts`.")
    parts: dict[str, float | None] = Field(default_factory=dict, description="The named numbers "
                                           "the score is combined from (identity, quality...).")
    concepts: list[ConceptResult] = Field(default_factory=list)
    records: list[ImageRecord] = Field(default_factory=list)
    models: dict[str, str] = Field(default_factory=dict, description="role -> model name.")
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def not_applicable(cls, metric: Test, reason: str, **extra) -> MetricResult:
        return cls(metric=metric, applicable=False, reason=reason, score=None, **extra)


class EvalScores(_Model):
    """The metrics of one model (a LoRA or checkpoint), as the report compares them."""

    label: str
    results: dict[str, MetricResult] = Field(default_factory=dict)  # Test value -> result

    def with_result(self, result: MetricResult) -> EvalScores:
        """A copy with ``result`` added; refuses to overwrite a metric already measured."""
        key = result.metric.value
        if key in self.results:
            raise InputError(f"The scores of '{self.label}' already hold a {key} score: each "
                             "score node adds its own metric once. Start a new chain for "
                             "another model.")
        return self.model_copy(update={"results": {**self.results, key: result}})

    def to_json(self, *, with_records: bool = True, indent: int | None = 2) -> str:
        exclude = None if with_records else {"results": {"__all__": {"records"}}}
        return self.model_dump_json(indent=indent, exclude=exclude)


def intent_fingerprint(intent) -> str:
    """A short hash of what an evaluation depends on in an intent (its public JSON)."""
    import hashlib

    return hashlib.sha256(intent.public_json().encode()).hexdigest()[:16]
