"""What the detector is asked to find for an intent: one phrase per thing to look for, each
mapped back to the concept (and modify value) it serves.

- instance and attribute concepts are looked for by their detector phrase ("hair" for hair
  colour); concepts sharing a phrase share one query.
- a modify concept whose values are bound to reference boxes ("between the leather jacket [1]
  and the striped jacket [2]") is looked for value by value, so each box says which value it is.
- imagery concepts (lighting, style, pose...) are whole-image qualities: nothing to box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..intent.schema import Granularity, Intent


@dataclass(frozen=True)
class Target:
    concept: str
    value: str | None = None


@dataclass
class Query:
    phrase: str
    targets: list[Target] = field(default_factory=list)


def build_queries(intent: Intent) -> tuple[list[Query], list[str]]:
    """The detector queries of ``intent`` and the names of the imagery concepts it skips."""
    queries: dict[str, Query] = {}
    skipped: list[str] = []
    for concept in intent.concepts:
        if concept.granularity is Granularity.IMAGERY:
            skipped.append(concept.name)
            continue
        if any(v.references for v in concept.values):
            wanted = [(v.text, Target(concept.name, v.text)) for v in concept.values]
        else:
            wanted = [(concept.phrase, Target(concept.name))]
        for phrase, target in wanted:
            query = queries.setdefault(phrase, Query(phrase))
            if target not in query.targets:
                query.targets.append(target)
    return list(queries.values()), skipped
