"""Reading a training set back: ours (``dataset.json`` checked against the files) or any kohya
folder made elsewhere (repeats from ``<repeats>_<name>`` folder names, captions from ``.txt``).

What trainers read is the folder, so the folder decides where it and the manifest disagree:

- an image or caption file the manifest lists but the folder lacks is an error that lists them
  all (a trainer would silently train on less);
- a caption edited outside IntentTuner is kept (``caption_source='user'``) and reported;
- an image in a group folder that the manifest does not list is reported (trainers will use it;
  it has no provenance);
- with ``check_hashes``, an image whose bytes changed since writing is reported.

Nothing outside the set's folder is read: a manifest entry whose file is a symlink leading out
of it is an error naming the entry; in a plain kohya folder, image and caption files (or whole
group folders) linked to elsewhere are left out and reported. Links within the set work.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from PIL import Image
from pydantic import ValidationError

from ..errors import InputError
from .folders import is_hidden, natural_key, sha256_of, some_of
from .training_set import (
    MANIFEST,
    TrainingItem,
    TrainingSet,
    clean_caption,
    outside_target,
)

log = logging.getLogger(__name__)

KOHYA_FOLDER = re.compile(r"^(?P<repeats>\d+)_(?P<name>.+)$")
# What kohya's sd-scripts read as images (ComfyUI's reader: png, jpg, jpeg and webp only).
KOHYA_IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
LISTED = 10  # file names shown per warning or error


def read_training_set(root: str | os.PathLike, check_hashes: bool = False) -> TrainingSet:
    """The training set in folder ``root``: from its ``dataset.json`` when there is one
    (validated against the files), else read as a plain kohya folder (provenance unknown)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; choose the training set's folder (the one "
                         "holding dataset.json or the <repeats>_<name> folders).")
    if (root / MANIFEST).is_file():
        training_set = TrainingSet.from_manifest(root)
        _check_against_files(training_set, check_hashes)
    else:
        training_set = read_plain_kohya(root)
    return training_set


def looks_like_training_set(folder: Path) -> bool:
    """True when ``folder`` holds a ``dataset.json`` or a ``<repeats>_<name>`` folder with an
    image in it (cheap enough for a dropdown: one listing per candidate)."""
    if (folder / MANIFEST).is_file():
        return True
    try:
        children = [c for c in folder.iterdir() if c.is_dir() and KOHYA_FOLDER.match(c.name)]
        return any(_images_in(c, folder) for c in children)
    except OSError:
        return False


def read_plain_kohya(root: Path) -> TrainingSet:
    """A kohya folder without our manifest: one group per ``<repeats>_<name>`` folder."""
    items: list[TrainingItem] = []
    groups: dict[str, int] = {}
    ignored_folders, unreadable, no_caption, outside, odd_names = [], [], [], [], []
    for folder in sorted((p for p in root.iterdir() if p.is_dir() and not is_hidden(p.name)),
                         key=lambda p: natural_key(p.name)):
        match = KOHYA_FOLDER.match(folder.name)
        if not match or int(match["repeats"]) < 1:
            ignored_folders.append(folder.name)
            continue
        group = match["name"] if match["name"] not in groups else folder.name
        repeats = int(match["repeats"])
        for image in _images_in(folder, root, outside):
            relative = f"{folder.name}/{image.name}"
            caption_path = image.with_suffix(".txt")
            if caption_path.is_file() and outside_target(root, caption_path) is not None:
                outside.append(f"{folder.name}/{caption_path.name}")
                continue
            size = _header_size(image)
            if size is None:
                unreadable.append(relative)
                continue
            if caption_path.is_file():
                caption = clean_caption(caption_path.read_text(encoding="utf-8",
                                                               errors="replace"))
            else:
                caption = ""
                no_caption.append(relative)
            try:
                item = TrainingItem(
                    image=relative, caption_file=f"{folder.name}/{caption_path.name}",
                    caption=caption, caption_source="file", group=group, repeats=repeats,
                    size=size)
            except ValidationError:  # a '\\' or ':' in a name: a different file on Windows
                odd_names.append(relative)
                continue
            groups[group] = repeats
            items.append(item)
    if not items:
        raise InputError(f"{root} is not a training set: it has no {MANIFEST} and no "
                         "<repeats>_<name> folder (e.g. '10_face') with images in it.")
    warnings = ["no dataset.json: read as a plain kohya folder (repeats from folder names, "
                "captions from .txt files, provenance unknown)"]
    if ignored_folders:
        warnings.append("ignored folders not named <repeats>_<name>: "
                        + some_of(ignored_folders, LISTED))
    if unreadable:
        warnings.append("left out unreadable images (trainers will fail on them; fix or "
                        "remove them): " + some_of(unreadable, LISTED))
    if no_caption:
        warnings.append(f"{len(no_caption)} image(s) have no .txt caption (kohya then uses "
                        "the folder's class name): " + some_of(no_caption, LISTED))
    if outside:
        warnings.append("left out files linked to outside the set folder (copy them in to "
                        "use them): " + some_of(outside, LISTED))
    if odd_names:
        warnings.append("left out files whose names hold '\\' or ':' (rename them): "
                        + some_of(odd_names, LISTED))
    top_level = _images_in(root, root)
    if top_level:
        warnings.append(f"{len(top_level)} image(s) directly in the set folder are ignored "
                        "here and by kohya (ComfyUI's reader uses them once): "
                        + some_of([p.name for p in top_level], LISTED))
    training_set = TrainingSet(groups=groups, items=items, read_warnings=warnings)
    training_set.root = str(root.resolve())
    return training_set


def training_set_fingerprint(root: str | os.PathLike) -> str:
    """What a re-read of the set at ``root`` would see differently, as a digest (for Load
    Training Set's IS_CHANGED): every file's name, size and modification time, except the
    manifest and the caption files, of which only the names count, plus the text of any caption
    that differs from its manifest entry (a hand edit). So the captions the pack itself writes
    (Caption Refine, Caption Review: file and manifest together) leave the loader cached, and
    the nodes between it and them do not run again; a caption edited in a text editor does not."""
    root = Path(root)
    try:
        manifest = {item.caption_file: item.caption
                    for item in TrainingSet.from_manifest(root).items}
    except InputError:
        manifest = {}
    entries = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if relative == MANIFEST or is_hidden(name):
                continue
            if path.suffix.lower() == ".txt":
                text = clean_caption(path.read_text(encoding="utf-8", errors="replace"))
                entries.append(relative if manifest.get(relative) == text
                               else f"{relative}|{text}")
                continue
            stat = path.stat()
            entries.append(f"{relative}|{stat.st_size}|{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def _check_against_files(training_set: TrainingSet, check_hashes: bool) -> None:
    root = training_set.path
    escaping = [f"{item.image!r}: {name!r} -> {target}" for item in training_set.items
                for name in (item.image, item.caption_file)
                if (target := outside_target(root, root / name)) is not None]
    if escaping:
        raise InputError(f"{MANIFEST} of the training set at {root} lists {len(escaping)} "
                         "file(s) that lead outside its folder (symlinks): "
                         f"{some_of(escaping, LISTED)}. "
                         "Replace the links with the files themselves, or remove those "
                         f"entries from {MANIFEST}.")
    missing = [name for item in training_set.items for name in (item.image, item.caption_file)
               if not (root / name).is_file()]
    if missing:
        raise InputError(f"The training set at {root} is incomplete: {len(missing)} file(s) "
                         f"that {MANIFEST} lists are missing: {some_of(missing, LISTED)}. "
                         "Restore them, "
                         f"or delete {MANIFEST} to read the folder as it is (provenance lost).")
    edited, changed = [], []
    for item in training_set.items:
        text = clean_caption((root / item.caption_file).read_text(encoding="utf-8",
                                                                  errors="replace"))
        if text != item.caption:
            item.caption, item.caption_source = text, "user"
            edited.append(item.caption_file)
        if check_hashes and item.sha256 and sha256_of(root / item.image) != item.sha256:
            changed.append(item.image)
    listed = {item.image for item in training_set.items}
    folders = {item.image.split("/")[0] for item in training_set.items}
    extra = [f"{f}/{p.name}" for f in sorted(folders) for p in _images_in(root / f, root)
             if f"{f}/{p.name}" not in listed]
    if edited:
        training_set.read_warnings.append(f"{len(edited)} caption(s) edited outside IntentTuner, "
                                     "kept as they are on disk: " + some_of(edited, LISTED))
    if changed:
        training_set.read_warnings.append(f"{len(changed)} image(s) changed since the set was "
                                     "written: " + some_of(changed, LISTED))
    if extra:
        training_set.read_warnings.append(f"{len(extra)} image(s) in the set's folders are not in "
                                     f"{MANIFEST} (trainers will use them; no provenance): "
                                     + some_of(extra, LISTED))


def _images_in(folder: Path, root: Path, outside: list[str] | None = None) -> list[Path]:
    """Image files in ``folder``, natural order, leaving out those whose real path is outside
    ``root`` (their ``<folder>/<name>`` is added to ``outside``)."""
    try:
        files = [p for p in folder.iterdir() if p.is_file() and not is_hidden(p.name)
                 and p.suffix.lower() in KOHYA_IMAGE_EXTENSIONS]
    except OSError:
        return []
    inside = []
    for path in sorted(files, key=lambda p: natural_key(p.name)):
        if outside_target(root, path) is None:
            inside.append(path)
        elif outside is not None:
            outside.append(f"{folder.name}/{path.name}")
    return inside


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header (no decode), or None when it is not readable."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
