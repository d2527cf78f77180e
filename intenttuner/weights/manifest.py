"""The manifest of default weights (``models/manifest.json``) as typed, validated objects.

A `WeightEntry` is one model: its files, where they come from, their sizes and checksums, and
the models sub-folder they belong in. A single-file entry's ``target`` is the file name on disk
(which may differ from the name in the source repository); a multi-file entry's ``target`` is a
directory under the folder ("" = the folder itself) and its files keep their names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from ..errors import InputError
from .folders import MODEL_FOLDERS
from .hub import hf_endpoint, hub_url

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "models" / "manifest.json"


@dataclass(frozen=True)
class WeightFile:
    name: str  # file name in the source (repo-relative path for Hugging Face repos)
    size: int | None  # bytes, when a public source states it
    sha256: str | None  # hex digest, when a public source states it
    url: str | None = None  # direct download URL; None → built from the entry's hf_repo


@dataclass(frozen=True)
class WeightEntry:
    id: str
    family: str
    default: bool
    title: str
    folder: str  # MODEL_FOLDERS key
    target: str  # file name (single-file entry) or directory ("" = the folder itself)
    files: tuple[WeightFile, ...]
    licence: str
    hf_repo: str | None = None
    revision: str = "main"
    requires: tuple[str, ...] = ()  # ids of entries this one cannot work without

    @property
    def is_directory(self) -> bool:
        return len(self.files) > 1 or self.target == ""

    def destination(self, folder_dir: Path, file: WeightFile) -> Path:
        """Where ``file`` goes when the entry lives in ``folder_dir``."""
        if self.is_directory:
            return folder_dir / self.target / file.name
        return folder_dir / self.target

    def local_path(self, folder_dir: Path) -> Path:
        """The path a loader is given: the file, or the directory holding the files."""
        return folder_dir / self.target

    def url(self, file: WeightFile) -> str:
        if file.url:
            return file.url
        return hub_url(self.hf_repo, self.revision, file.name)

    def source_page(self) -> str:
        """A page a person can open to fetch the files by hand."""
        if self.hf_repo:
            # A ref such as refs/pr/1 must be one path segment, as the Hub's own links escape it.
            return f"{hf_endpoint()}/{self.hf_repo}/tree/{quote(self.revision, safe='')}"
        return self.files[0].url or "(no source)"

    @property
    def total_size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Manifest:
    entries: tuple[WeightEntry, ...]

    def get(self, entry_id: str) -> WeightEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        known = ", ".join(e.id for e in self.entries)
        raise InputError(f"no weight entry '{entry_id}' in the manifest; known: {known}")

    def with_requirements(self, entry: WeightEntry) -> list[WeightEntry]:
        """``entry`` followed by every entry it requires, directly or not, each once."""
        found: dict[str, WeightEntry] = {}
        pending = [entry]
        while pending:
            current = pending.pop(0)
            if current.id not in found:
                found[current.id] = current
                pending += [self.get(r) for r in current.requires]
        return list(found.values())

    def for_family(self, family: str) -> list[WeightEntry]:
        return [e for e in self.entries if e.family == family]

    def default_for(self, family: str) -> WeightEntry:
        defaults = [e for e in self.for_family(family) if e.default]
        if len(defaults) != 1:
            raise InputError(f"the manifest has {len(defaults)} defaults for family '{family}'")
        return defaults[0]


def parse_manifest(data: dict) -> Manifest:
    """Build a Manifest from its JSON form, checking what later code relies on."""
    entries = []
    for raw in data["weights"]:
        files = tuple(WeightFile(**f) for f in raw.pop("files"))
        entry = WeightEntry(files=files, requires=tuple(raw.pop("requires", ())), **raw)
        _validate(entry)
        entries.append(entry)
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise InputError(f"manifest has duplicate ids: {sorted(ids)}")
    return Manifest(tuple(entries))


@lru_cache(maxsize=1)
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    with open(path, encoding="utf-8") as f:
        return parse_manifest(json.load(f))


def _validate(entry: WeightEntry) -> None:
    problems = []
    if entry.folder not in MODEL_FOLDERS:
        problems.append(f"unknown folder '{entry.folder}'")
    for name in [entry.target, *(f.name for f in entry.files)]:
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts:
            problems.append(f"unsafe path '{name}'")
    for f in entry.files:
        if f.sha256 is not None and len(f.sha256) != 64:
            problems.append(f"{f.name}: sha256 must be 64 hex digits")
        if f.url is None and entry.hf_repo is None:
            problems.append(f"{f.name}: needs a url or the entry's hf_repo")
    if problems:
        raise InputError(f"manifest entry '{entry.id}': " + "; ".join(problems))
