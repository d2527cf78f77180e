"""Which folder a node means: a dropdown of ComfyUI input subfolders, or a path the user typed.

Dropdown values are relative to a base folder (ComfyUI's ``input/``) and are checked lexically
to stay inside it: no absolute path, no ``..``, no drive letter, the same rule as every other
widget-given name of the pack (`weights.locate.check_relative_name`). The check is lexical on
purpose, not ``resolve()``-based, so a subfolder that is a symlink to another drive still
works. A typed path is the user's explicit choice and may point anywhere; a relative one is
taken relative to the base folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import InputError
from ..weights.locate import check_relative_name

TYPE_A_PATH = "(type a path below)"  # the dropdown entry that means "use the path widget"
MAX_LISTED = 5000  # dropdown entries; a huge input folder must not stall ComfyUI's UI
_IGNORED_FILES = {"thumbs.db", "desktop.ini"}  # system files every photo folder collects


def some_of(names: list[str], limit: int) -> str:
    """The first ``limit`` of ``names``, comma-separated, the rest counted: "a, b ... and 3
    more" (reports and errors name files without listing thousands)."""
    shown = ", ".join(names[:limit])
    return shown + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


def natural_key(name: str) -> tuple:
    """Sort key: case-insensitive, digit runs compared as numbers (img2 before img10), path
    components compared one by one; the name itself breaks ties so the order is total."""
    parts = tuple(tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.casefold()))
                  for p in name.replace("\\", "/").split("/"))
    return parts, name


def is_hidden(name: str) -> bool:
    """Dot files (``.DS_Store``, macOS ``._x.jpg`` forks, our own partial writes) and Windows'
    thumbnail caches: never user content, never listed or reported."""
    return name.startswith(".") or name.casefold() in _IGNORED_FILES


def walk_dirs(base: Path) -> Iterator[Path]:
    """Every non-hidden folder below ``base`` (not ``base`` itself), top-down, without following
    symlinked folders (a link loop must not hang the dropdown)."""
    for root, dirs, _ in os.walk(base, followlinks=False):
        dirs[:] = sorted((d for d in dirs if not is_hidden(d)), key=natural_key)
        for name in dirs:
            yield Path(root) / name


def list_subfolders(base: Path, keep: Callable[[Path], bool] | None = None) -> list[str]:
    """Subfolders of ``base`` (recursive, '/'-separated, natural order) for which ``keep`` is
    true; [] when ``base`` does not exist. At most `MAX_LISTED`."""
    if not base.is_dir():
        return []
    found = []
    for path in walk_dirs(base):
        if keep is None or keep(path):
            found.append(path.relative_to(base).as_posix())
            if len(found) >= MAX_LISTED:
                break
    return sorted(found, key=natural_key)


def resolve_folder(choice: str, typed: str, base: Path, what: str = "folder") -> Path:
    """The folder a node's (dropdown ``choice``, ``typed`` path) pair names; ``typed`` wins when
    it is not blank. Raises `InputError` for a missing folder, a file, or a dropdown value that
    escapes ``base``."""
    typed = typed.strip().strip('"').strip("'")  # paths pasted from a file manager keep quotes
    if typed:
        path = Path(typed).expanduser()
        path = path if path.is_absolute() else base / path
        label = f"the typed path {typed!r}"
    else:
        if not choice or choice == TYPE_A_PATH:
            raise InputError(f"Choose a {what} in the dropdown (subfolders of {base}) or type a "
                             "path in the path box.")
        check_relative_name(choice, what)
        path = base / choice
        label = f"{what} {choice!r}"
    if not path.exists():
        raise InputError(f"{label} does not exist (looked at {path}). Put the images in a "
                         f"subfolder of {base} and refresh the page, or type the full path.")
    if not path.is_dir():
        raise InputError(f"{label} is a file, not a folder ({path}); choose the folder that "
                         "holds it.")
    return path


def sha256_of(data: bytes | os.PathLike) -> str:
    """Hex SHA-256 of ``data``, or of the file at that path (read in 1 MiB blocks); OSError
    when the file cannot be read."""
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(data, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(folder: Path, recursive: bool) -> str:
    """A cheap digest of a folder's listing (names, sizes, modification times), for ComfyUI's
    IS_CHANGED: adding, removing or editing a file re-runs the loader."""
    entries = []
    roots = [folder, *walk_dirs(folder)] if recursive else [folder]
    for root in roots:
        try:
            with os.scandir(root) as it:
                for entry in it:
                    if entry.is_file():
                        stat = entry.stat()
                        entries.append(f"{entry.path}|{stat.st_size}|{stat.st_mtime_ns}")
        except OSError:
            continue
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()
