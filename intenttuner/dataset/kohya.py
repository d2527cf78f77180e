"""Writing the augmented items as a kohya-layout training set (see `training_set` for the layout).

    ts = write_training_set(augmented, intent, input_dir / "training_sets", "my_set")
    ts = read_training_set(ts.root)  # the same set again (or any kohya folder made elsewhere)

Rules:

- Groups: items are grouped by ``CropItem.group`` ('original', or the concept a crop shows).
- Repeats balance the groups, so each group weighs about the same per epoch however many
  images it has: ``repeats = min(max_repeats, max(1, round_half_up(largest / size)))`` times
  ``repeat_multiplier``, where ``size`` is the group's item count and ``largest`` the largest
  group's. 12 originals and 4 face crops: originals 1, faces 3. ``max_repeats`` (10) bounds
  how often one image is shown (a group of 1 beside 40 originals is not seen 40 times, which
  would overfit that single crop); a capped group is reported in the set's warnings. The
  multiplier scales every group alike (longer epochs) without changing the balance.
- Placeholder captions: the intent's trigger words; a crop adds its concept's phrase, and a
  crop of one value of a *modify* concept adds the value ("ohwx, black leather jacket"; the
  phrase is left out when the value already contains it). CaptionRefine rewrites them later.
- File names: ``<source stem>_<concept or 'full'>_<index>.png`` beside ``.txt`` (`naming`).
- Never a half set, never an overwrite: everything is written into a hidden temporary folder
  next to the target and renamed into place at the end; on any error (or Cancel) the temporary
  folder is removed. An existing folder of the same name is never touched: ``if_exists='new'``
  writes ``<name>_00002`` (then ``_00003``...), ``'error'`` refuses with the folder's path.
"""

from __future__ import annotations

import io
import logging
import math
import os
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from ..augment.render import render_item
from ..augment.types import ORIGINAL_GROUP, Augmented, CropItem
from ..errors import InputError
from ..imageio import to_rgb_pil
from ..intent.schema import Intent
from ..runtime import get_runtime
from .folders import sha256_of
from .kohya_read import read_training_set
from .naming import group_folder, item_stem, next_free, set_name
from .training_set import TrainingItem, TrainingSet, clean_caption

log = logging.getLogger(__name__)

IF_EXISTS = ("new", "error")
MAX_REPEATS = 10
PARTIAL_PREFIX = ".intenttuner-partial-"  # hidden: readers and dropdowns skip dot folders
STALE_PARTIAL_S = 24 * 3600  # a temporary folder this old belongs to no running write

__all__ = ["IF_EXISTS", "PARTIAL_PREFIX", "TrainingSetExistsError", "balance_repeats",
           "move_into_place", "placeholder_caption", "read_training_set",
           "remove_stale_partials", "write_training_set"]


class TrainingSetExistsError(InputError, FileExistsError):
    """``if_exists='error'`` and the target folder exists."""


def balance_repeats(sizes: dict[str, int], max_repeats: int = MAX_REPEATS,
                    multiplier: int = 1) -> dict[str, int]:
    """Repeats per group that balance the groups (rule in the module docstring)."""
    if max_repeats < 1 or multiplier < 1:
        raise InputError(f"max_repeats ({max_repeats}) and repeat_multiplier ({multiplier}) "
                         "must be at least 1.")
    largest = max(sizes.values(), default=0)
    # round half up, not Python's round-half-to-even: 2.5 should be 3 every time
    return {group: min(max_repeats, max(1, math.floor(largest / size + 0.5))) * multiplier
            for group, size in sizes.items()}


def placeholder_caption(item: CropItem, intent: Intent) -> str:
    """The caption an item gets before CaptionRefine (rule in the module docstring)."""
    parts = list(intent.trigger_words)
    if item.operation != "original" and item.concept:
        concept = next((c for c in intent.concepts if c.name == item.concept), None)
        phrase = concept.phrase if concept else item.concept
        value = item.value or ""
        if not value or phrase.lower() not in value.lower():
            parts.append(phrase)
        if value:
            parts.append(value)
    return clean_caption(", ".join(parts))


def write_training_set(augmented: Augmented, intent: Intent, root_parent: str | os.PathLike,
                       name: str = "training_set", if_exists: str = "new",
                       max_repeats: int = MAX_REPEATS, repeat_multiplier: int = 1
                       ) -> TrainingSet:
    """Render every item of ``augmented`` and write the set as ``root_parent/<name>`` (or the
    next free ``<name>_0000n``); returns it, with ``root`` set to the folder written."""
    name = set_name(name)
    if if_exists not in IF_EXISTS:
        raise InputError(f"if_exists must be one of {IF_EXISTS}, got {if_exists!r}.")
    if not augmented.plan.items:
        raise InputError("The augment plan has no items to write: check IntentCrop's report "
                         "(every image skipped?) and its inputs.")
    parent = Path(root_parent)
    parent.mkdir(parents=True, exist_ok=True)
    if if_exists == "error" and (parent / name).exists():
        raise _exists(parent / name)
    training_set = _plan(augmented, intent, max_repeats, repeat_multiplier)
    remove_stale_partials(parent)

    temp = parent / f"{PARTIAL_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        _write_files(augmented, training_set, temp)
        training_set.root = str(temp)
        training_set.save_manifest()
        final = move_into_place(temp, parent, name, if_exists)
    except BaseException:  # Cancel (an interrupt exception) included: no half set stays behind
        shutil.rmtree(temp, ignore_errors=True)
        raise
    training_set.root = str(final.resolve())
    log.info("wrote training set %s: %d images", final, len(training_set.items))
    return training_set


def _plan(augmented: Augmented, intent: Intent, max_repeats: int,
          multiplier: int) -> TrainingSet:
    """The manifest to write (no pixels yet): groups, repeats, file names, captions."""
    items = augmented.plan.items
    sizes: dict[str, int] = {}
    for item in sorted(items, key=lambda i: i.group != ORIGINAL_GROUP):  # originals first
        sizes[item.group] = sizes.get(item.group, 0) + 1
    repeats = balance_repeats(sizes, max_repeats, multiplier)
    taken: set[str] = set()
    folders = {group: group_folder(repeats[group], group, taken) for group in sizes}
    warnings = _repeat_warnings(sizes, max_repeats, multiplier)
    known = {c.name for c in intent.concepts}
    unknown = sorted({i.concept for i in items if i.concept and i.concept not in known})
    if unknown:
        warnings.append(f"crops of concepts the intent does not have: {', '.join(unknown)} "
                        "(captioned with the concept name); was IntentCrop given this intent?")
    manifest_items = []
    for index, item in enumerate(items, start=1):
        stem = f"{folders[item.group]}/{item_stem(item.source_name, item.concept, index)}"
        manifest_items.append(TrainingItem(
            image=f"{stem}.png", caption_file=f"{stem}.txt",
            caption=placeholder_caption(item, intent), caption_source="placeholder",
            group=item.group, repeats=repeats[item.group], size=tuple(item.out_size),
            source_name=item.source_name, operation=item.operation, concept=item.concept,
            value=item.value, region=item.region, box=item.box, removed=list(item.removed)))
    plan = augmented.plan
    return TrainingSet(
        intent=intent.public_dict(), groups=repeats, items=manifest_items,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        settings={"max_repeats": max_repeats, "repeat_multiplier": multiplier,
                  "repeats_rule": "min(max_repeats, max(1, round_half_up(largest group / "
                                  "group size))) * repeat_multiplier"},
        augment={"settings": dict(plan.settings), "skipped": list(plan.skipped),
                 "warnings": list(plan.warnings), "inpaint": augmented.inpaint},
        warnings=warnings)


def _repeat_warnings(sizes: dict[str, int], max_repeats: int, multiplier: int) -> list[str]:
    largest = max(sizes.values())
    capped = [g for g, n in sizes.items() if math.floor(largest / n + 0.5) > max_repeats]
    return [f"group '{g}' has {sizes[g]} image(s) against {largest}: balancing would need "
            f"{math.floor(largest / sizes[g] + 0.5)} repeats, capped at {max_repeats} "
            f"(x{multiplier}); add more images of it or raise max_repeats" for g in capped]


def _write_files(augmented: Augmented, training_set: TrainingSet, temp: Path) -> None:
    runtime = get_runtime()
    sources = augmented.sources
    with runtime.progress(total=len(training_set.items), desc="Writing training set") as bar:
        for item, planned in zip(training_set.items, augmented.plan.items, strict=True):
            runtime.check_interrupted()
            if not 0 <= planned.source_index < len(sources):
                raise InputError(f"Item of {planned.source_name} refers to source image "
                                 f"{planned.source_index}, but there are {len(sources)}; "
                                 "re-run IntentCrop on these images.")
            # RGB whatever the source's mode: an RGBA PNG would train on hidden colours
            image = to_rgb_pil(render_item(sources[planned.source_index], planned))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")  # no metadata: nothing of the source leaks in
            data = buffer.getvalue()
            path = temp / item.image
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            (temp / item.caption_file).write_text(item.caption + "\n", encoding="utf-8",
                                                  newline="\n")
            item.size, item.sha256 = image.size, sha256_of(data)
            bar.update(1)


def move_into_place(temp: Path, parent: Path, name: str, if_exists: str) -> Path:
    """Rename the finished folder ``temp`` to ``parent/name`` (``if_exists='new'``: the next
    free ``name_0000N``; ``'error'``: refuse a taken name) and return where it went. A rename
    is atomic, so readers never see a half-written set; also used by the reward sets."""
    for _ in range(100):  # retried only when a parallel writer takes the name first
        target = parent / name if if_exists == "error" else next_free(parent, name)
        if target.exists():
            raise _exists(target)
        try:
            os.rename(temp, target)
            return target
        except OSError:
            if not target.exists():
                raise
            if if_exists == "error":
                raise _exists(target) from None
    raise InputError(f"Could not find a free folder name for '{name}' in {parent}.")


def remove_stale_partials(parent: Path) -> None:
    """Temporary folders a killed process left behind (a crash that ran no cleanup, e.g. the
    power went). Only ours (by prefix) and only old ones: a parallel writer's is never touched."""
    cutoff = time.time() - STALE_PARTIAL_S
    for entry in parent.glob(f"{PARTIAL_PREFIX}*"):
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                log.info("removed %s, left by an interrupted write", entry)
        except OSError:
            continue


def _exists(target: Path) -> TrainingSetExistsError:
    return TrainingSetExistsError(
        f"{target} already exists and if_exists is 'error'. Choose another name, set "
        "if_exists to 'new' (writes a numbered folder), or move the old set away.")
