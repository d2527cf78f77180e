"""Caption review: captions edited by hand before training, kept across re-runs.

The Caption Review node's panel writes the edits as JSON, ``{edit key: caption}``, into the
node's ``edits`` widget (saved with the workflow). `apply_edits` writes them into the set::

    result = apply_edits(training_set, parse_edits(widget_text))
    result.training_set  # a copy with the edits applied; its .txt files and dataset.json agree

Rules:

- Keys are the image's *content* (`edit_key`: its sha256, else its path for sets made
  elsewhere), so an edit re-applies when the upstream nodes run again and rewrite the set, even
  into a new folder (``<name>_00002``). Items showing the very same image share their edit.
- The incoming set is never changed in place: ComfyUI caches it as the upstream node's output,
  and it is what a discarded edit goes back to.
- Files are compared with what is on disk, not with the incoming captions alone (an earlier run
  may have written them): an edit equal to the caption on disk writes nothing.
- A discarded edit is undone: the caption it replaced is written back. Caption Review keeps a
  small hidden record in the set folder (`RECORD`): per image, the edit it wrote and the caption
  and source that edit replaced, so the undo works even after Caption Refine or ComfyUI ran
  again. A caption that differs on disk but that it did not write was edited outside IntentTuner
  and is kept, with a warning; so is one changed in a text editor after an edit was written,
  while the edit in the panel stays the same (a new edit in the panel wins). Nothing typed by a
  person is overwritten without an edit saying so.
- An edit is checked like a refined caption's length: over the text encoder's 77-token window,
  or not starting with the set's trigger words, it is written as typed and warned about.
- Edits for images no longer in the set stay in the node and are reported, never dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from ..dataset.folders import some_of
from ..dataset.training_set import (
    MANIFEST,
    TrainingItem,
    TrainingSet,
    clean_caption,
    write_text_atomic,
)
from ..errors import InputError
from .text import words

log = logging.getLogger(__name__)

EDITS_INPUT = "edits"  # the node input the panel writes
RECORD = ".intenttuner-caption-review.json"  # {image: {"edit", "before", "source"}}
LISTED = 5  # images named per summary line


def edit_key(item: TrainingItem) -> str:
    """What an edit is keyed by: the image's sha256 when known (sets written by Save Training
    Set), else its path in the set (``'2_face/x_0001.png'``, sets made elsewhere)."""
    return item.sha256 or item.image


def parse_edits(text: str) -> dict[str, str]:
    """The ``edits`` widget's JSON, ``{key: caption}``; blank text means no edits."""
    if not text or not text.strip():
        return {}
    fix = (f"The review panel writes the '{EDITS_INPUT}' input: use 'Discard all edits' in the "
           'panel, or fix the text to the form {"<image sha256>": "caption", ...}.')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"'{EDITS_INPUT}' is not valid JSON ({exc}). {fix}") from None
    if not isinstance(data, dict):
        raise InputError(f"'{EDITS_INPUT}' must be a JSON object, got {type(data).__name__}. "
                         f"{fix}")
    bad = [key for key, value in data.items() if not isinstance(value, str)]
    if bad:
        raise InputError(f"'{EDITS_INPUT}': the edit for {bad[0]!r} is "
                         f"{json.dumps(data[bad[0]])}, not a caption text. {fix}")
    return data


@dataclass
class ReviewResult:
    """What `apply_edits` did. Image lists hold item paths ('2_face/x_0001.png')."""

    training_set: TrainingSet  # the set with the edits applied (a copy of the incoming one)
    edited: list[str] = field(default_factory=list)  # images whose caption is an edit now
    written: int = 0  # caption files written this time (0 when every edit was already on disk)
    restored: list[str] = field(default_factory=list)  # discarded edits undone
    kept_outside: list[str] = field(default_factory=list)  # edited outside IntentTuner, kept
    conflicts: list[str] = field(default_factory=list)  # changed on disk after our edit: kept
    checks: list[str] = field(default_factory=list)  # edits over the token window etc.
    unmatched: dict[str, str] = field(default_factory=dict)  # edits for images not in the set
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        ts = self.training_set
        lines = [f"Caption Review: {len(ts.items)} image(s) at {ts.root}",
                 f"edited by hand: {len(self.edited)} ({self.written} caption file(s) written "
                 "this run)"]
        if self.restored:
            lines.append(f"discarded edits undone (caption from upstream written back): "
                         f"{some_of(self.restored, LISTED)}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def apply_edits(training_set: TrainingSet, edits: dict[str, str]) -> ReviewResult:
    """Write ``edits`` (`parse_edits`) into a copy of ``training_set``: each edited caption as
    the item's ``.txt`` (``caption_source='user'``), undo discarded edits, then `save_manifest`
    once if anything changed. Every edit is checked before anything is written."""
    result = ReviewResult(training_set=training_set.model_copy(deep=True))
    ts = result.training_set
    keys = {edit_key(item) for item in ts.items}
    wanted = {key: _checked(key, text, ts) for key, text in edits.items() if key in keys}
    result.unmatched = {key: text for key, text in edits.items() if key not in keys}
    result.checks = _edit_checks(ts, wanted)
    record = _read_record(ts)
    new_record: dict[str, dict] = {}
    for item in ts.items:
        key, entry = edit_key(item), record.get(item.image)
        on_disk = _caption_on_disk(ts, item)
        if key in wanted:
            _apply_one(ts, item, wanted[key], on_disk, entry, result, new_record)
        elif entry is not None and on_disk == entry["edit"]:
            # our edit, discarded since: write back the caption it replaced
            ts.set_caption(item, entry["before"], source=entry["source"])
            result.written += 1
            result.restored.append(item.image)
        elif on_disk is not None and on_disk != item.caption:
            item.caption, item.caption_source = on_disk, "user"
            result.kept_outside.append(item.image)
    listed = _manifest_captions(ts)
    if result.written or (listed is not None and listed != _captions(ts)):
        ts.save_manifest()
    if new_record != record and (new_record or record):
        write_text_atomic(ts.path / RECORD, json.dumps(new_record, ensure_ascii=False,
                                                        indent=1) + "\n")
    result.warnings = _warnings(result)
    log.info("caption review of %s: %d edited, %d written, %d restored", ts.root,
             len(result.edited), result.written, len(result.restored))
    return result


def _apply_one(ts: TrainingSet, item: TrainingItem, caption: str, on_disk: str | None,
               entry: dict | None, result: ReviewResult, new_record: dict) -> None:
    """Write one wanted edit (see the module docstring for who wins a conflict)."""
    if entry is None and caption == item.caption == on_disk:
        return  # the caption as it is: nothing to edit
    if entry is not None and caption == entry["edit"] and on_disk not in (None, caption):
        # changed in a text editor after our write, the panel's edit unchanged: the file wins
        item.caption, item.caption_source = on_disk, "user"
        result.conflicts.append(item.image)
        new_record[item.image] = entry
        return
    before = entry or {"before": on_disk if on_disk is not None else item.caption,
                       "source": item.caption_source}
    if caption != on_disk:
        ts.set_caption(item, caption, source="user")
        result.written += 1
    else:  # written by an earlier run; the incoming (cached) set predates it
        item.caption, item.caption_source = caption, "user"
    result.edited.append(item.image)
    new_record[item.image] = {**before, "edit": caption}


def review_entries(training_set: TrainingSet) -> list[dict]:
    """What the review panel shows per item, in set order: its edit key, image path, group,
    concept, caption and who wrote the caption."""
    return [{"key": edit_key(item), "image": item.image, "group": item.group,
             "concept": item.concept, "caption": item.caption,
             "caption_source": item.caption_source} for item in training_set.items]


def _checked(key: str, text: str, ts: TrainingSet) -> str:
    caption = clean_caption(text)
    if not caption:
        images = [item.image for item in ts.items if edit_key(item) == key]
        raise InputError(f"'{EDITS_INPUT}': the edit for {some_of(images, LISTED)} is empty: "
                         "a caption "
                         "cannot be empty; discard the edit instead (Discard edit in the "
                         "panel) to keep the caption it had.")
    return caption


def _edit_checks(ts: TrainingSet, wanted: dict[str, str]) -> list[str]:
    """Warnings for edits a trainer would read differently than typed: longer than one CLIP
    window (cut off there), or not starting with the set's trigger words."""
    if not wanted:
        return []
    from .tokens import CLIP_WINDOW, clip_counter  # the tokenizer only when there are edits

    counter = clip_counter()
    triggers = ", ".join((ts.intent or {}).get("trigger_words") or [])
    trigger_words = words(triggers)  # "ohwx man" begins with "ohwx, man" too
    warnings = []
    for key, caption in wanted.items():
        images = some_of([item.image for item in ts.items if edit_key(item) == key], LISTED)
        tokens = counter.count(caption)
        if tokens > CLIP_WINDOW:
            warnings.append(f"the edit for {images} is {tokens} tokens: trainers without "
                            f"long-prompt support read only the first {CLIP_WINDOW}")
        if trigger_words and words(caption)[:len(trigger_words)] != trigger_words:
            warnings.append(f"the edit for {images} does not begin with the trigger words "
                            f"'{triggers}': the LoRA binds what it shows to them only when "
                            "they are in the caption")
    return warnings


def _caption_on_disk(ts: TrainingSet, item: TrainingItem) -> str | None:
    """The item's caption file as a trainer reads it (cleaned); None when it is missing."""
    try:
        return clean_caption(ts.caption_path(item).read_text(encoding="utf-8",
                                                             errors="replace"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"The caption file {item.caption_file} of the set at {ts.root} cannot "
                         f"be read ({exc}). Check its permissions.") from None


def _read_record(ts: TrainingSet) -> dict[str, str]:
    """The captions an earlier Caption Review run wrote from edits; {} when none or unreadable
    (then a discarded edit is kept as an outside edit: nothing is lost)."""
    path = ts.path / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return {}
    if not isinstance(data, dict):
        return {}
    record = {}
    for image, entry in data.items():
        if isinstance(entry, str):  # the first version's record: the edit alone
            entry = {"edit": entry, "before": entry, "source": "user"}
        if isinstance(entry, dict) and all(isinstance(entry.get(k), str)
                                           for k in ("edit", "before", "source")):
            record[image] = entry
    return record


def _captions(ts: TrainingSet) -> dict[str, tuple[str, str]]:
    return {item.image: (item.caption, item.caption_source) for item in ts.items}


def _manifest_captions(ts: TrainingSet) -> dict[str, tuple[str, str]] | None:
    """Caption and source per image as the set's dataset.json on disk says; None without one
    (a set made elsewhere gets one only when a caption file is written)."""
    try:
        items = json.loads((ts.path / MANIFEST).read_text(encoding="utf-8"))["items"]
        return {i["image"]: (i["caption"], i["caption_source"]) for i in items}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


def _warnings(result: ReviewResult) -> list[str]:
    warnings = []
    for key, text in result.unmatched.items():
        warnings.append(f"edit for an image that is no longer in the set: {_short(key)} "
                        f"({_preview(text)}) kept in the node, not applied; discard it in the "
                        "panel if that image is gone for good")
    if result.kept_outside:
        warnings.append(f"{len(result.kept_outside)} caption(s) edited outside IntentTuner "
                        f"kept as they are on disk: {some_of(result.kept_outside, LISTED)}")
    if result.conflicts:
        warnings.append(f"{len(result.conflicts)} caption(s) changed on disk after your edit was "
                        "written, kept as they are on disk: "
                        f"{some_of(result.conflicts, LISTED)}; change "
                        "the edit in the panel to write yours again")
    return warnings + result.checks


def _short(key: str) -> str:
    return f"sha256 {key[:12]}..." if len(key) == 64 and "/" not in key else repr(key)


def _preview(text: str, limit: int = 40) -> str:
    text = clean_caption(text)
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")
