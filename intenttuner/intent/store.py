"""Saving, listing, loading and editing intents as JSON files.

Saved intents go to ``<output>/intents/`` as ``<prefix>_00001.json``, ``_00002``... (never
overwriting); loadable ones are listed from ``<output>/intents`` and ``<input>/intents`` as
``output/intents/<file>`` / ``input/intents/<file>``. Edits are JSON merge patches (RFC 7386)
with one convenience: ``"concepts"`` may be an object keyed by concept name, which edits,
adds (new name) or removes (``null``) single concepts instead of replacing the whole list.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import InputError
from ..runtime import get_runtime
from ..weights.locate import check_relative_name
from . import notes
from .schema import Intent, IntentFileExistsError, parse_json

SUBFOLDER = "intents"
_SAFE_PREFIX = re.compile(r"[\w\-. /]+")


def save_intent(intent: Intent, prefix: str = "intent", *, with_crops: bool = True) -> Path:
    """Write ``intent`` to a new numbered file under ``<output>/intents``; returns its path."""
    prefix = prefix.strip().strip("/") or "intent"
    check_relative_name(prefix, "filename_prefix")
    if not _SAFE_PREFIX.fullmatch(prefix):
        raise InputError(f"filename_prefix '{prefix}' may only contain letters, digits, '-', "
                         "'_', '.', spaces and '/'.")
    folder = get_runtime().output_dir() / SUBFOLDER / Path(prefix).parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(prefix).name
    for counter in range(1, 100_000):
        path = folder / f"{stem}_{counter:05}.json"
        try:  # exclusive create: a file that exists, or that a parallel save made, is skipped
            intent.save(path, with_crops=with_crops)
            return path
        except IntentFileExistsError:
            continue
    raise InputError(f"{folder} already holds 99999 intents named '{stem}_*'; use another prefix.")


def list_intents() -> list[str]:
    """Names of the saved intents for a dropdown: ``output/intents/...``, ``input/intents/...``."""
    names = []
    for root_name, root in _roots().items():
        folder = root / SUBFOLDER
        if folder.is_dir():
            names += [f"{root_name}/{SUBFOLDER}/{p.relative_to(folder).as_posix()}"
                      for p in sorted(folder.rglob("*.json"))]
    return names


def intent_path(name: str) -> Path:
    """The file behind a `list_intents` name (checked to stay inside its intents folder)."""
    check_relative_name(name, "intent file")
    root_name, _, rest = name.partition("/")
    roots = _roots()
    if root_name not in roots or not rest.startswith(f"{SUBFOLDER}/"):
        raise InputError(f"intent file '{name}' must start with output/{SUBFOLDER}/ or "
                         f"input/{SUBFOLDER}/.")
    path = roots[root_name] / rest
    if not path.is_file():
        raise InputError(f"intent file '{name}' does not exist (looked at {path}). Pick a "
                         "saved intent in the list (refresh the page after saving one), or "
                         "put the file there.")
    return path


def load_intent(name: str) -> Intent:
    return Intent.load(intent_path(name))


def apply_edits(intent: Intent, edits: str) -> Intent:
    """``intent`` with the JSON merge patch ``edits`` applied, validated again. Notes the edit
    made untrue are dropped (see `notes.after_edit`) unless the patch sets ``notes`` itself."""
    if not edits.strip():
        return intent
    patch = parse_json(edits, "edits (a JSON merge patch of the intent)", dict,
                       '{"trigger_words": ["vncnt"], "concepts": {"necklace": null}}')
    data = json.loads(intent.to_json())
    concepts = patch.pop("concepts", None)
    if isinstance(concepts, dict):
        data["concepts"] = _edit_concepts(data["concepts"], concepts)
    elif concepts is not None:
        data["concepts"] = concepts
    edited = Intent.from_data(merge_patch(data, patch), what="the edited intent")
    if "notes" not in patch:  # notes the user edits by hand are theirs; others follow the edit
        edited.notes = notes.after_edit(intent, edited)
    return edited


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386: objects merge recursively, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _edit_concepts(concepts: list[dict], edits: dict) -> list[dict]:
    bad = {n: e for n, e in edits.items() if e is not None and not isinstance(e, dict)}
    if bad:
        name, edit = next(iter(bad.items()))
        raise InputError(f"edits for concept '{name}' must be an object of fields to change "
                         f"(e.g. {{\"operation\": \"keep\"}}) or null to remove it, got "
                         f"{json.dumps(edit)}.")
    by_name = {c["name"]: c for c in concepts}
    unknown_removals = [n for n, e in edits.items() if e is None and n not in by_name]
    if unknown_removals:
        raise InputError(f"edits remove concept(s) {unknown_removals}, which the intent does not "
                         f"have; it has {sorted(by_name)}.")
    out = [merge_patch(c, edits.get(c["name"], {})) for c in concepts
           if c["name"] not in edits or edits[c["name"]] is not None]
    out += [dict(e, name=n) for n, e in edits.items() if e is not None and n not in by_name]
    return out


def _roots() -> dict[str, Path]:
    rt = get_runtime()
    return {"output": rt.output_dir(), "input": rt.input_dir()}
