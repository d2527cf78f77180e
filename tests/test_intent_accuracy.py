"""The held-out intent set (tests/fixtures/intent_heldout.json) and its scorer
(bench/intent_accuracy.py): the offline parser must not fall below the measured floors, and the
scorer itself is checked on hand-made results so that it can fail."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from bench.intent_accuracy import (
    FIELDS,
    evaluate,
    load_set,
    match_concepts,
    name_rank,
    run_entry,
    score,
)
from intenttuner.errors import InputError

# Per-field accuracy of the offline parser, percent (rounded down), as measured after the
# parser was improved without looking at this set (before: trigger 52, domain 73, recall 49,
# precision 71, names 74, operation 89, references 96, refusal 0, English-only 0, fully right 3;
# the review fixes for silent loss and subject deletion then cost one entry on a few fields).
# Raise these as the parser improves; never lower them to let a change through.
FLOOR = {
    "trigger": 75,
    "domain": 84,
    "concept_recall": 79,
    "concept_precision": 87,
    "name_exact": 87,
    "operation": 95,
    "references": 96,
    "accepted": 96,
    "refusal": 100,
    "english_only": 100,
    "fully_right": 32,
}


@pytest.fixture(scope="module")
def offline_scores() -> dict:
    return evaluate()


@pytest.mark.parametrize("field", sorted(FLOOR))
def test_offline_parser_meets_floor(offline_scores, field):
    got = offline_scores["fields"][field]
    assert got["percent"] is not None, f"nothing to score for {field}"
    assert got["percent"] >= FLOOR[field], (
        f"{field}: {got['percent']}% ({got['right']}/{got['total']}) < floor {FLOOR[field]}%")


def test_offline_parser_never_crashes(offline_scores):
    crashed = [f["id"] for f in offline_scores["failures"] if "crash" in f["wrong"]]
    assert crashed == []


def test_floor_covers_every_field():
    assert set(FLOOR) == set(FIELDS)


# --- the set ---------------------------------------------------------------------------------

def test_set_is_varied_and_consistent():
    entries = load_set()
    assert len(entries) >= 48
    assert len({e["id"] for e in entries}) == len(entries)
    cats = Counter(e["category"] for e in entries)
    for cat, least in {"portrait": 8, "pet": 6, "product": 6, "style": 6, "pose": 5,
                       "scene": 5, "character": 5, "hostile": 5}.items():
        assert cats[cat] >= least, cat
    with_boxes = sum(bool(e["boxes"]) for e in entries)
    assert len(entries) * 0.35 <= with_boxes <= len(entries) * 0.75
    assert any(e.get("expected_error") for e in entries)
    assert any(e.get("expected_language") for e in entries)
    for e in entries:
        numbers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", e["description"])})
        if not e.get("expected_error"):  # one box per [n], in order
            assert numbers == list(range(1, len(e["boxes"]) + 1)), e["id"]
        for c in e["expected"]["concepts"]:
            assert c["operation"] in ("keep", "modify", "delete"), e["id"]
            assert set(c["references"]) <= set(numbers), e["id"]
        if e.get("expected_language"):
            assert e["expected"]["concepts"] == [], e["id"]


def _perfect(entries):
    """A parser that answers exactly what each entry expects."""
    by_text = {e["description"]: e for e in entries}

    def parse(description, boxes):
        e = by_text[description]
        if e.get("expected_error"):
            raise InputError("box [3] is referred to but only 2 boxes are drawn")
        x = e["expected"]
        return {"trigger_words": x.get("trigger_words", ["ohwx"]),
                "domain": x.get("domain", "other"),
                "concepts": [{k: c[k] for k in ("name", "operation", "references")}
                             for c in x["concepts"]],
                "notes": ["The offline parser reads English only."]
                if e.get("expected_language") else []}
    return parse


def test_a_perfect_parser_scores_full_marks():
    entries = load_set()
    scores = evaluate(parser=_perfect(entries), entries=entries)
    assert scores["failures"] == []
    for field, s in scores["fields"].items():
        assert s["percent"] == 100.0, field


def test_a_parser_that_finds_nothing_scores_low():
    scores = evaluate(parser=lambda d, b: {"trigger_words": ["ohwx"], "domain": "other",
                                           "concepts": []})
    f = scores["fields"]
    assert f["concept_recall"]["percent"] == 0.0
    assert f["concept_precision"]["percent"] is None  # nothing returned, nothing to be wrong
    assert f["refusal"]["percent"] == 0.0
    assert f["english_only"]["percent"] == 0.0
    assert f["fully_right"]["right"] == 3  # the three entries that really expect nothing


# --- the scorer on hand-made results ----------------------------------------------------------

def entry(concepts, trigger=("ohwx",), domain="portrait", **extra):
    return {"id": "t", "category": domain, "description": "d", "boxes": [],
            "expected": {"trigger_words": list(trigger), "domain": domain,
                         "concepts": concepts}, **extra}


def got(concepts, trigger=("ohwx",), domain="portrait", notes=()):
    return {"trigger_words": list(trigger), "domain": domain, "notes": list(notes),
            "concepts": [{"name": n, "operation": op, "references": list(refs)}
                         for n, op, refs in concepts]}


def one(e, g, error=None, crashed=False):
    return score([{"entry": e, "got": g, "error": error, "crashed": crashed}])


def field(scores, name):
    s = scores["fields"][name]
    return s["right"], s["total"]


def test_alias_plural_and_case_match():
    e = entry([{"name": "hair colour", "aliases": ["hair color"], "operation": "keep",
                "references": [2]},
               {"name": "eyes", "operation": "keep", "references": []}])
    s = one(e, got([("Hair Color", "keep", [2]), ("eye", "keep", [])]))
    assert field(s, "concept_recall") == (2, 2)
    assert field(s, "concept_precision") == (2, 2)
    assert field(s, "name_exact") == (2, 2)
    assert field(s, "fully_right") == (1, 1)
    assert s["failures"] == []


def test_containment_matches_but_is_not_an_exact_name():
    e = entry([{"name": "white patch", "operation": "keep", "references": []}])
    s = one(e, got([("white patch on her chest", "keep", [])]))
    assert field(s, "concept_recall") == (1, 1)
    assert field(s, "name_exact") == (0, 1)
    assert field(s, "fully_right") == (1, 1)


def test_names_do_not_match_inside_words():
    assert name_rank({"name": "ear"}, "earrings") is None
    assert name_rank({"name": "glass"}, "glasses") == 0
    assert name_rank({"name": "sky"}, "skies") == 0
    assert name_rank({"name": "cross-hatching"}, "cross hatching") == 0


def test_exact_names_are_matched_before_containment():
    expected = [{"name": "motion", "operation": "keep", "references": []},
                {"name": "motion blur", "operation": "keep", "references": []}]
    got_concepts = [{"name": "motion blur"}, {"name": "motion"}]
    assert match_concepts(expected, got_concepts) == [(0, 1), (1, 0)]


def test_wrong_operation():
    e = entry([{"name": "earrings", "operation": "modify", "references": [1]}])
    s = one(e, got([("earrings", "keep", [1])]))
    assert field(s, "concept_recall") == (1, 1)
    assert field(s, "operation") == (0, 1)
    assert field(s, "references") == (1, 1)
    assert field(s, "fully_right") == (0, 1)
    assert s["failures"][0]["wrong"] == ["operation"]


def test_wrong_references():
    e = entry([{"name": "face", "operation": "keep", "references": [1, 2]}])
    s = one(e, got([("face", "keep", [1])]))
    assert field(s, "references") == (0, 1)
    assert s["failures"][0]["wrong"] == ["references"]


def test_missed_and_extra_concepts():
    e = entry([{"name": "face", "operation": "keep", "references": []},
               {"name": "background", "operation": "modify", "references": []}])
    s = one(e, got([("face", "keep", []), ("shots", "delete", [])]))
    assert field(s, "concept_recall") == (1, 2)
    assert field(s, "concept_precision") == (1, 2)
    assert field(s, "operation") == (1, 1)
    assert sorted(s["failures"][0]["wrong"]) == ["concept_precision", "concept_recall"]


def test_trigger_is_a_case_insensitive_set_with_alternatives():
    e = entry([], trigger=["Priya Raman"])
    e["expected"]["trigger_alternatives"] = [["Priya"]]
    assert field(one(e, got([], trigger=["priya raman"])), "trigger") == (1, 1)
    assert field(one(e, got([], trigger=["PRIYA"])), "trigger") == (1, 1)
    assert field(one(e, got([], trigger=["Raman"])), "trigger") == (0, 1)
    assert field(one(e, got([], trigger=["ohwx"])), "trigger") == (0, 1)


def test_wrong_domain():
    s = one(entry([], domain="object"), got([], domain="portrait"))
    assert field(s, "domain") == (0, 1)
    assert s["categories"]["object"]["fully_right"] == 0


def test_refusal_expected_and_given():
    e = entry([{"name": "logo", "operation": "delete", "references": [3]}], expected_error=True)
    s = one(e, None, error="box [3] is not drawn")
    assert field(s, "refusal") == (1, 1)
    assert field(s, "fully_right") == (1, 1)
    assert field(s, "concept_recall") == (0, 0)  # a refused entry's concepts are not scored


def test_refusal_expected_but_parsed():
    e = entry([{"name": "logo", "operation": "delete", "references": [3]}], expected_error=True)
    s = one(e, got([("logo", "delete", [3])]))
    assert field(s, "refusal") == (0, 1)
    assert field(s, "fully_right") == (0, 1)


def test_refusing_an_ordinary_entry_is_wrong():
    e = entry([{"name": "face", "operation": "keep", "references": []}])
    s = one(e, None, error="nope")
    assert field(s, "accepted") == (0, 1)
    assert field(s, "concept_recall") == (0, 1)
    assert field(s, "trigger") == (0, 1)
    assert field(s, "fully_right") == (0, 1)


def test_a_crash_is_not_a_refusal():
    e = entry([], expected_error=True)
    s = one(e, None, error="KeyError: 'x'", crashed=True)
    assert field(s, "refusal") == (0, 1)
    assert s["crashes"] == 1
    assert "crash" in s["failures"][0]["wrong"]


def test_non_english_needs_no_concepts_and_an_english_note():
    e = {"id": "de", "category": "hostile", "description": "Ich möchte...", "boxes": [],
         "expected_language": "de", "expected": {"concepts": []}}
    said = got([], notes=["This parser reads English only."])
    assert field(one(e, said), "fully_right") == (1, 1)
    silent = one(e, got([]))
    assert field(silent, "english_only") == (0, 1)
    assert field(silent, "fully_right") == (0, 1)
    invented = one(e, got([("mantén su cara", "keep", [])], notes=["English only"]))
    assert field(invented, "concept_precision") == (0, 1)
    assert field(invented, "fully_right") == (0, 1)
    refused = one(e, None, error="descriptions must be in English")
    assert field(refused, "english_only") == (1, 1)
    assert field(refused, "fully_right") == (1, 1)
    assert field(refused, "accepted") == (0, 0)


def test_run_entry_separates_refusals_from_crashes():
    e = entry([])

    def refuse(d, b):
        raise InputError("no")

    def crash(d, b):
        raise KeyError("x")

    assert run_entry(e, refuse)["crashed"] is False
    assert run_entry(e, refuse)["error"] == "no"
    assert run_entry(e, crash)["crashed"] is True
