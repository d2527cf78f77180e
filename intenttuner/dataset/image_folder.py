"""Loading a folder of training images: every usable image, and a reason for every other file.

    loaded = load_image_folder("input/shoot", recursive=True)
    loaded.images   # PIL RGB images, natural file-name order (img2 before img10)
    loaded.names    # their paths relative to the folder ('day 2/IMG_0042.jpg'), for provenance
    loaded.report() # '14 of 17 loaded; skipped: a.txt (not an image), ...'

Each file is decoded under a stated size policy (`image_decode`); a file that cannot be used is
skipped with one of `image_decode.SKIP_KINDS` and a detail, never raising. Exact duplicates
(same bytes, by SHA-256) of a loaded image are dropped and named with that first copy (first in
sorted order). Hidden files (dot files, Thumbs.db) are ignored silently. Only a folder with no
usable image at all is an error, and it lists why each file was skipped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import InputError
from ..runtime import get_runtime
from .folders import is_hidden, natural_key, sha256_of, some_of, walk_dirs
from .image_decode import (
    CORRUPT,
    DUPLICATE,
    EMPTY,
    IMAGE_EXTENSIONS,
    NOT_AN_IMAGE,
    UNREADABLE,
    DecodePolicy,
    SkipFile,
    decode_image,
)

log = logging.getLogger(__name__)

REPORT_LIST_LIMIT = 40  # entries per report line; the rest are counted ("... and 12 more")


@dataclass(frozen=True)
class SkippedFile:
    name: str  # path relative to the folder, '/'-separated
    kind: str  # one of image_decode.SKIP_KINDS
    detail: str = ""

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


@dataclass
class LoadedImages:
    """What `load_image_folder` found. ``images`` and ``names`` are parallel lists."""

    folder: Path
    images: list[Image.Image] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)  # duplicates included
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (dropped, first copy)
    resized: list[tuple[str, tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)  # (name, what was done)
    considered: int = 0  # files looked at (hidden files excluded)

    def report(self) -> str:
        """One line per section: counts, skipped files with reasons, duplicates, resizes and
        conversions (sections with nothing to say are left out)."""
        lines = [f"{len(self.images)} of {self.considered} loaded from {self.folder}"]
        others = [s for s in self.skipped if s.kind != DUPLICATE]
        sections = (
            ("skipped", [f"{s.name} ({s.reason})" for s in others]),
            ("duplicates", [f"{dropped} = {first}" for dropped, first in self.duplicates]),
            ("resized", [f"{n} {a[0]}x{a[1]} -> {b[0]}x{b[1]}" for n, a, b in self.resized]),
            ("converted", [f"{n} ({what})" for n, what in self.converted]),
        )
        for title, entries in sections:
            if entries:
                lines.append(f"{title}: " + some_of(entries, REPORT_LIST_LIMIT))
        return "\n".join(lines)


def load_image_folder(folder: str | os.PathLike, recursive: bool = False,
                      max_side: int = 2048, policy: DecodePolicy | None = None) -> LoadedImages:
    """Every usable image in ``folder`` (and its subfolders when ``recursive``), as upright RGB
    PIL images no larger than ``max_side`` on their longest side (0: full size).

    ``policy`` overrides the whole size policy (`image_decode.DecodePolicy`; then ``max_side``
    is ignored). Raises `InputError` when ``folder`` is not a folder or holds no usable image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; choose the folder that holds the images.")
    policy = policy or DecodePolicy(max_side=max_side)
    loaded = LoadedImages(folder=folder)
    names = list_files(folder, recursive)
    loaded.considered = len(names)
    first_by_hash: dict[str, str] = {}
    runtime = get_runtime()
    with runtime.progress(total=len(names), desc="Loading training images") as bar:
        for name in names:
            runtime.check_interrupted()
            _load_one(folder, name, policy, loaded, first_by_hash)
            bar.update(1)
    if not loaded.images:
        raise InputError(_nothing_usable(folder, loaded))
    log.info("%s", loaded.report().replace("\n", "; "))
    return loaded


def list_files(folder: Path, recursive: bool) -> list[str]:
    """Non-hidden files in ``folder`` (recursive: and below), '/'-separated, natural order."""
    roots = [folder, *walk_dirs(folder)] if recursive else [folder]
    names = []
    for root in roots:
        try:
            with os.scandir(root) as entries:
                for entry in entries:
                    if not is_hidden(entry.name) and entry.is_file():
                        names.append(Path(entry.path).relative_to(folder).as_posix())
        except OSError as exc:  # an unreadable subfolder costs its files, not the run
            log.warning("cannot list %s: %s", root, exc)
    return sorted(names, key=natural_key)


def _load_one(folder: Path, name: str, policy: DecodePolicy, loaded: LoadedImages,
              first_by_hash: dict[str, str]) -> None:
    path = folder / name
    try:
        _check_file(path)
        # Decoded before hashing: the header checks refuse a 10 GB video named .jpg at once,
        # where hashing it first would read all of it.
        decoded = decode_image(path, policy)
        digest = _sha256(path)
        if digest in first_by_hash:
            loaded.duplicates.append((name, first_by_hash[digest]))
            raise SkipFile(DUPLICATE, f"same bytes as {first_by_hash[digest]}")
        first_by_hash[digest] = name
    except SkipFile as skip:
        loaded.skipped.append(SkippedFile(name, skip.kind, skip.detail))
        log.debug("skipped %s: %s", name, skip)
        return
    except Exception as exc:  # noqa: BLE001 - Pillow's format plugins have raised struct.error,
        # IndexError, ZeroDivisionError... on crafted files; one hostile file must never end
        # the run (Cancel is not affected: check_interrupted runs outside this call).
        log.debug("unexpected error decoding %s", name, exc_info=True)
        loaded.skipped.append(SkippedFile(name, CORRUPT, f"{type(exc).__name__}: {exc}"))
        return
    loaded.images.append(decoded.image)
    loaded.names.append(name)
    if decoded.image.size != decoded.original_size:
        loaded.resized.append((name, decoded.original_size, decoded.image.size))
    if decoded.notes:
        loaded.converted.append((name, ", ".join(decoded.notes)))


def _check_file(path: Path) -> None:
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise SkipFile(NOT_AN_IMAGE)  # by its extension: a caption, a sidecar, a document
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SkipFile(UNREADABLE, exc.strerror or str(exc)) from None
    if size == 0:
        raise SkipFile(EMPTY, "0 bytes")


def _sha256(path: Path) -> str:
    try:
        return sha256_of(path)
    except OSError as exc:
        raise SkipFile(UNREADABLE, exc.strerror or str(exc)) from None


def _nothing_usable(folder: Path, loaded: LoadedImages) -> str:
    if not loaded.considered:
        return (f"{folder} holds no files. Put the training images (PNG, JPEG, WebP, ...) "
                "there, or choose another folder (recursive=True also reads subfolders).")
    reasons = "\n".join(f"  - {s.name}: {s.reason}" for s in loaded.skipped[:100])
    more = len(loaded.skipped) - 100
    return (f"No usable image in {folder}: fix or replace these files, or choose another "
            f"folder.\n{reasons}" + (f"\n  ... and {more} more" if more > 0 else ""))
