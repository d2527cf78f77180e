"""Intent parsing accuracy on a held-out set of descriptions written the way users write them.

``tests/fixtures/intent_heldout.json`` holds descriptions (portraits, pets, products, styles,
poses, scenes, characters and hostile inputs), each with the boxes its ``[n]`` point at and the
intent a careful human would extract. Each description is parsed (default: the offline parser,
through ``parse_intent``, boxes on blank stand-in images, unplaced text listed rather than
refused) and scored field by field:

- trigger: case-insensitive set match against ``trigger_words`` or a ``trigger_alternatives`` set
- domain: exact
- concept recall / precision: concepts matched one-to-one by name (expected name or aliases,
  lower-case, singular/plural-insensitive, or one containing the other word-wise)
- name exact: matched concepts whose name is the expected name or an alias, not merely one
  containing the other (containment lets "straight legs what counts" match "straight legs")
- operation, references: over the matched concepts
- accepted: ordinary entries parsed without a refusal; refusal: ``expected_error`` entries refused
- english only: non-English entries whose notes or error say the parser reads English
- fully right: every field of the entry right (no missed or extra concept)

A refusal is an ``IntentTunerError`` (``InputError``); any other exception is a crash, counted
wrong and listed. This measures accuracy, not speed: one run, no repeats.

    .venv/bin/python -m bench.intent_accuracy [--json] [--show-failures] [--set PATH]
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

HELDOUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "intent_heldout.json"
DEFAULT_TRIGGER = "ohwx"
IMAGE_SIZE = (512, 512)  # stand-in reference images; only the boxes' numbering matters here
ENGLISH_NOTE = re.compile(r"\benglish\b", re.IGNORECASE)
FIELDS = ("trigger", "domain", "concept_recall", "concept_precision", "name_exact", "operation",
          "references", "accepted", "refusal", "english_only", "fully_right")

Parser = Callable[[str, Sequence[dict]], object]


def load_set(path: Path | str = HELDOUT) -> list[dict]:
    """The held-out entries."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["entries"]


def boxes_json(boxes: Sequence[dict]) -> tuple[list, str]:
    """Blank stand-in images and the boxes JSON ``parse_intent`` takes for ``boxes``."""
    from PIL import Image

    count = max((b.get("image", 0) for b in boxes), default=-1) + 1
    images = [Image.new("RGB", IMAGE_SIZE, (128, 128, 128)) for _ in range(count)]
    drawn = []
    for k, b in enumerate(boxes):
        x, y = 16 + 24 * (k % 8), 16 + 20 * (k % 8)
        drawn.append({"image": b.get("image", 0), "box": [x, y, x + 200, y + 240],
                      "label": b.get("label", "")})
    return images, json.dumps(drawn) if drawn else ""


def offline_parser(description: str, boxes: Sequence[dict]):
    """The offline parser through the public API."""
    from intenttuner.intent.parse import parse_intent

    images, text = boxes_json(boxes)
    return parse_intent(description, images, text, on_unplaced="list")


def as_dict(intent: object) -> dict:
    """The fields scored, from an Intent or an intent-like dict."""
    data = intent.model_dump(mode="json") if hasattr(intent, "model_dump") else dict(intent)
    return {"trigger_words": list(data.get("trigger_words") or []),
            "domain": data.get("domain"),
            "concepts": [{"name": c.get("name", ""), "operation": c.get("operation"),
                          "references": sorted(c.get("references") or [])}
                         for c in data.get("concepts") or []],
            "notes": list(data.get("notes") or []),
            "unplaced": list(data.get("unplaced") or [])}


def run_entry(entry: dict, parser: Parser) -> dict:
    """Parse one entry; the result ``score`` takes."""
    from intenttuner.errors import IntentTunerError

    try:
        return {"entry": entry, "got": as_dict(parser(entry["description"], entry["boxes"])),
                "error": None, "crashed": False}
    except IntentTunerError as e:
        return {"entry": entry, "got": None, "error": str(e), "crashed": False}
    except Exception as e:  # a crash is a bug: counted wrong, listed, never taken for a refusal
        return {"entry": entry, "got": None, "error": f"{type(e).__name__}: {e}", "crashed": True}


def evaluate(parser: Parser | None = None, entries: Sequence[dict] | None = None) -> dict:
    """Parse every held-out entry with ``parser`` (default: the offline parser) and score it."""
    parser = parser or offline_parser
    entries = load_set() if entries is None else entries
    return score([run_entry(e, parser) for e in entries])


# --- name matching -------------------------------------------------------------------------

def normalise(name: str) -> tuple[str, ...]:
    """Lower-case words, punctuation dropped."""
    return tuple(re.sub(r"[^\w]+", " ", name.lower().replace("'", "")).split())


def _same_word(a: str, b: str) -> bool:
    """Equal, or singular and plural of one word (eye/eyes, glass/glasses, sky/skies)."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return long in (short + "s", short + "es") or (
        short.endswith("y") and long == short[:-1] + "ies")


def _same(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return len(a) == len(b) and all(_same_word(x, y) for x, y in zip(a, b, strict=True))


def _contains(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return bool(short) and any(_same(long[i:i + len(short)], short)
                               for i in range(len(long) - len(short) + 1))


def name_rank(expected: dict, got_name: str) -> int | None:
    """0: the same name (or alias), 1: one contains the other word-wise, None: no match."""
    got = normalise(got_name)
    names = [normalise(n) for n in [expected["name"], *expected.get("aliases", [])]]
    if any(_same(n, got) for n in names):
        return 0
    if any(_contains(n, got) for n in names):
        return 1
    return None


def match_concepts(expected: Sequence[dict], got: Sequence[dict]) -> list[tuple[int, int]]:
    """One-to-one (expected index, got index) pairs: exact names first, then containment."""
    pairs, used_e, used_g = [], set(), set()
    for rank in (0, 1):
        for i, e in enumerate(expected):
            if i in used_e:
                continue
            for j, g in enumerate(got):
                if j not in used_g and name_rank(e, g["name"]) == rank:
                    pairs.append((i, j))
                    used_e.add(i)
                    used_g.add(j)
                    break
    return sorted(pairs)


# --- scoring -------------------------------------------------------------------------------

def _trigger_ok(expected: dict, got: list[str]) -> bool:
    sets = [expected["trigger_words"], *expected.get("trigger_alternatives", [])]
    have = {t.strip().casefold() for t in got}
    return any(have == {t.strip().casefold() for t in s} for s in sets)


def _concept_text(c: dict) -> str:
    refs = "".join(f"[{r}]" for r in c.get("references", []))
    return f"{c['name']}:{c['operation']}{refs}"


def score_entry(result: dict) -> dict:
    """Per-field verdicts for one result: counts (right, total) for each field, and what's wrong."""
    entry, got, error = result["entry"], result["got"], result["error"]
    expected = entry["expected"]
    refused = got is None and not result.get("crashed", False)
    counts: dict[str, tuple[int, int]] = {}
    wrong: list[str] = []

    def count(field: str, right: int, total: int) -> None:
        counts[field] = (right, total)
        if right < total:
            wrong.append(field)

    if entry.get("expected_error"):
        count("refusal", int(refused), 1)
    else:
        if not entry.get("expected_language"):  # refusing a language it can't read is fine
            count("accepted", int(got is not None), 1)
        concepts = got["concepts"] if got else []
        if "trigger_words" in expected:
            count("trigger", int(got is not None and _trigger_ok(expected, got["trigger_words"])),
                  1)
        if "domain" in expected:
            count("domain", int(got is not None and got["domain"] == expected["domain"]), 1)
        pairs = match_concepts(expected["concepts"], concepts)
        count("concept_recall", len(pairs), len(expected["concepts"]))
        count("concept_precision", len(pairs), len(concepts))
        exact = sum(name_rank(expected["concepts"][i], concepts[j]["name"]) == 0
                    for i, j in pairs)
        counts["name_exact"] = (exact, len(pairs))  # informative: not part of "fully right"
        ops = sum(expected["concepts"][i]["operation"] == concepts[j]["operation"]
                  for i, j in pairs)
        refs = sum(sorted(expected["concepts"][i]["references"]) == concepts[j]["references"]
                   for i, j in pairs)
        count("operation", ops, len(pairs))
        count("references", refs, len(pairs))
        if entry.get("expected_language"):
            said = " ".join((got or {}).get("notes", []) + [error or ""])
            count("english_only", int(bool(ENGLISH_NOTE.search(said))), 1)
    if result.get("crashed"):
        wrong.append("crash")
    counts["fully_right"] = (int(not wrong), 1)
    return {"id": entry["id"], "category": entry.get("category", expected.get("domain", "other")),
            "counts": counts, "wrong": wrong}


def _summary(expected_or_got: dict | None) -> dict | None:
    if expected_or_got is None:
        return None
    out = {k: expected_or_got[k] for k in ("trigger_words", "domain") if k in expected_or_got}
    out["concepts"] = [_concept_text(c) for c in expected_or_got["concepts"]]
    return out


def _percent(right: int, total: int) -> float | None:
    return round(100.0 * right / total, 1) if total else None


def score(results: Sequence[dict]) -> dict:
    """Per-field and per-category accuracy over ``results`` (see ``run_entry``).

    Returns ``{"n", "crashes", "fields": {field: {"right", "total", "percent"}},
    "categories": {category: {"entries", "fully_right", "percent", "concept_recall"}},
    "failures": [{"id", "category", "wrong", "expected", "got", "error"}]}``; a field with
    nothing to score has ``percent`` None.
    """
    totals = {f: [0, 0] for f in FIELDS}
    categories: dict[str, dict] = {}
    failures = []
    for result in results:
        verdict = score_entry(result)
        for field, (right, total) in verdict["counts"].items():
            totals[field][0] += right
            totals[field][1] += total
        cat = categories.setdefault(verdict["category"], {"entries": 0, "fully_right": 0,
                                                          "recall": [0, 0]})
        cat["entries"] += 1
        cat["fully_right"] += verdict["counts"]["fully_right"][0]
        right, total = verdict["counts"].get("concept_recall", (0, 0))
        cat["recall"][0] += right
        cat["recall"][1] += total
        if verdict["wrong"]:
            entry = result["entry"]
            failures.append({"id": entry["id"], "category": verdict["category"],
                             "wrong": verdict["wrong"], "description": entry["description"],
                             "expected": _summary(entry["expected"]),
                             "expected_error": bool(entry.get("expected_error")),
                             "got": _summary(result["got"]),
                             "notes": (result["got"] or {}).get("notes", []),
                             "unplaced": (result["got"] or {}).get("unplaced", []),
                             "error": result["error"]})
    return {
        "n": len(results),
        "crashes": sum(bool(r.get("crashed")) for r in results),
        "fields": {f: {"right": r, "total": t, "percent": _percent(r, t)}
                   for f, (r, t) in totals.items()},
        "categories": {name: {"entries": c["entries"], "fully_right": c["fully_right"],
                              "percent": _percent(c["fully_right"], c["entries"]),
                              "concept_recall": _percent(*c["recall"])}
                       for name, c in sorted(categories.items())},
        "failures": failures,
    }


# --- report --------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.1f}"


def report(scores: dict, show_failures: bool = False) -> str:
    lines = [f"intent accuracy on {scores['n']} held-out descriptions"
             f" ({scores['crashes']} crashed)", "",
             f"{'field':<18} {'right':>6} {'total':>6} {'%':>6}"]
    for field, s in scores["fields"].items():
        lines.append(f"{field:<18} {s['right']:6d} {s['total']:6d} {_pct(s['percent'])}")
    lines += ["", f"{'category':<18} {'fully right':>12} {'%':>6} {'recall %':>9}"]
    for name, c in scores["categories"].items():
        lines.append(f"{name:<18} {c['fully_right']:5d} / {c['entries']:<4d} "
                     f"{_pct(c['percent'])} {_pct(c['concept_recall']):>9}")
    if show_failures:
        lines += ["", f"failures ({len(scores['failures'])}):"]
        for f in scores["failures"]:
            lines += [f"- {f['id']} [{f['category']}] wrong: {', '.join(f['wrong'])}",
                      f"    text:     {f['description']!r}",
                      "    expected: " + ("refusal" if f["expected_error"] else
                                          json.dumps(f["expected"], ensure_ascii=False)),
                      "    got:      " + (f"error: {f['error']}" if f["got"] is None else
                                          json.dumps(f["got"], ensure_ascii=False))]
            if f["unplaced"]:
                lines.append(f"    unplaced: {f['unplaced']}")
            if f["notes"]:
                lines.append(f"    notes:    {f['notes']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=HELDOUT, help="held-out set JSON")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--show-failures", action="store_true",
                        help="list each wrong entry, expected vs got")
    args = parser.parse_args()
    scores = evaluate(entries=load_set(args.set))
    if args.json:
        print(json.dumps(scores, indent=2, ensure_ascii=False))
    else:
        print(report(scores, show_failures=args.show_failures))


if __name__ == "__main__":
    main()
