"""Names on disk for training sets: the set's folder, its group folders and its files.

Everything written is ASCII letters, digits, ``_`` and ``-`` (file names add one ``.png`` /
``.txt``), because the readers are many and fragile: kohya parses ``<repeats>_<name>`` folder
names; ComfyUI's "Load Image and Text Dataset from Folder" finds a caption with
``path.replace(ext, ".txt")`` on the *whole path*, so a name holding ``.png`` twice would send it
to the wrong file; Windows refuses ``CON``, ``NUL``... and trailing dots. Non-ASCII letters are
transliterated where Unicode can (``é`` -> ``e``) and dropped otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from ..errors import InputError

_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_NUMBERED = re.compile(r"^(?P<stem>.+)_(?P<n>\d{5})$")
MAX_NAME = 64  # characters of a set name; paths stay well inside Windows' 260


def slug(text: str, fallback: str, max_len: int = 40, lower: bool = True) -> str:
    """``text`` as ``[a-z0-9_-]`` (``lower``) words joined by ``_``; ``fallback`` if nothing
    is left (e.g. a name written only in CJK characters)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_text).strip("_-")[:max_len].strip("_-")
    cleaned = cleaned.lower() if lower else cleaned
    return cleaned or fallback


def set_name(name: str) -> str:
    """A user-given training-set name as a safe folder name (`plain_name`)."""
    return plain_name(name, "Training set name", "my_lora_set",
                      "the set is always written inside the chosen location")


def plain_name(name: object, label: str, example: str, where: str) -> str:
    """A user-given ``name`` as a safe folder name. Path separators, ``..``, a leading ``.``
    and names Windows reserves are refused (they are mistakes or attacks, not names); spaces and
    other characters become ``_``. Errors start with ``label`` and say ``where`` the folder
    goes; ``example`` is a good name to suggest."""
    raw = name.strip() if isinstance(name, str) else ""
    if not raw:
        raise InputError(f"{label} is empty; type a name such as {example!r}.")
    if any(part in raw for part in ("/", "\\", "..", ":", "\0")) or raw.startswith("."):
        raise InputError(f"{label} {name!r} must be a plain folder name (no '/', '\\', '..', "
                         f"':' or leading '.'); {where}. Try "
                         f"{slug(raw, example, MAX_NAME, lower=False)!r}.")
    safe = slug(raw, "", MAX_NAME, lower=False)
    if not safe:
        raise InputError(f"{label} {name!r} has no letters or digits that are safe in a folder "
                         "name; use ASCII letters, digits, '_' or '-'.")
    if safe.lower() in _WINDOWS_RESERVED:
        raise InputError(f"{label} {name!r} is reserved by Windows; use e.g. '{safe}_1'.")
    return safe


def group_folder(repeats: int, group: str, taken: set[str]) -> str:
    """``<repeats>_<group>`` (kohya's layout), made unique among ``taken`` (case-insensitively,
    for Windows and macOS file systems) by a numeric suffix; the result is added to ``taken``."""
    base = f"{repeats}_{slug(group, 'group')}"
    name, n = base, 2
    while name.lower() in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name.lower())
    return name


def item_stem(source_name: str, concept: str | None, index: int) -> str:
    """``<source stem>_<concept or 'full'>_<index>``: readable, sorted by source in a file
    manager, and unique because ``index`` (the item's position in the set) is."""
    stem = slug(Path(source_name.replace("\\", "/")).stem, "image", 32)
    return f"{stem}_{slug(concept or 'full', 'concept', 24)}_{index:04d}"


def next_free(parent: Path, name: str) -> Path:
    """``parent/name`` if it is free, else ``name_00002``, ``name_00003``... numbered one past
    the highest that exists, the way ComfyUI's save nodes number their files (gaps are not
    reused, so a newer set always sorts after an older one)."""
    if not (parent / name).exists():
        return parent / name
    highest = 1
    if parent.is_dir():
        for entry in parent.iterdir():
            match = _NUMBERED.match(entry.name)
            if match and match["stem"] == name:
                highest = max(highest, int(match["n"]))
    return parent / f"{name}_{highest + 1:05d}"
