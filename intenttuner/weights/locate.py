"""Finding weights users already have, and turning widget values into safe paths.

Search order for a manifest entry: the runtime's model folders (ComfyUI's, including
``extra_model_paths.yaml`` locations, or the plain models root), then the Hugging Face cache
(``HF_HUB_CACHE``, ``HF_HOME/hub`` or ``~/.cache/huggingface/hub``). Only then is anything
downloaded (see ``download.py``).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path, PurePath

from ..errors import InputError, WeightsNotFoundError
from ..runtime import get_runtime
from .folders import MODEL_FOLDERS
from .manifest import WeightEntry

log = logging.getLogger(__name__)

# Files that mark a directory as one model (Hugging Face / diffusers layouts).
_MODEL_DIR_MARKERS = ("config.json", "model_index.json")


def find_entry(entry: WeightEntry) -> Path | None:
    """The local path of ``entry`` if all its files are present, else None."""
    for folder_dir in get_runtime().model_dirs(entry.folder):
        if entry_complete(entry, folder_dir):
            return entry.local_path(folder_dir)
    return _adopt_from_hf_cache(entry)


def entry_complete(entry: WeightEntry, folder_dir: Path) -> bool:
    return all(file_complete(entry.destination(folder_dir, f), f.size) for f in entry.files)


def file_complete(path: Path, size: int | None) -> bool:
    return path.is_file() and (size is None or path.stat().st_size == size)


def hf_cache_root() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(hf_home).expanduser() / "hub"


def hf_snapshot_dirs(repo: str, revision: str = "main") -> list[Path]:
    """Snapshot folders of ``repo`` in the Hugging Face cache, the wanted revision first."""
    repo_dir = hf_cache_root() / f"models--{repo.replace('/', '--')}"
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return []
    wanted = [snapshots / revision]
    ref = repo_dir / "refs" / revision
    if ref.is_file():  # a branch name such as "main" → the commit it pointed to
        wanted.append(snapshots / ref.read_text().strip())
    others = sorted(p for p in snapshots.iterdir() if p not in wanted)
    return [p for p in (*wanted, *others) if p.is_dir()]


def _adopt_from_hf_cache(entry: WeightEntry) -> Path | None:
    """Use a complete copy of ``entry`` from the Hugging Face cache.

    Directory entries are used in place. A single file whose cache name differs from the name
    loaders expect (``open_clip_model.safetensors`` vs ``ViT-B-32.laion2b....safetensors``) is
    hard-linked into the models folder (no extra disk), or copied when linking is impossible.
    """
    if not entry.hf_repo:
        return None
    for snapshot in hf_snapshot_dirs(entry.hf_repo, entry.revision):
        files = [snapshot / f.name for f in entry.files]
        if not all(file_complete(p, f.size) for p, f in zip(files, entry.files, strict=True)):
            continue
        if entry.is_directory:
            log.info("using %s from the Hugging Face cache: %s", entry.id, snapshot)
            return snapshot
        if files[0].name == entry.target:
            return files[0]
        return _link_into_models(files[0], entry)
    return None


def _link_into_models(source: Path, entry: WeightEntry) -> Path:
    dest = get_runtime().download_dir(entry.folder) / entry.target
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source.resolve(), dest)
        log.info("linked %s from the Hugging Face cache to %s", entry.id, dest)
    except OSError:
        shutil.copyfile(source, dest)
        log.info("copied %s from the Hugging Face cache to %s", entry.id, dest)
    return dest


def list_models(folder: str) -> list[str]:
    """Names (relative to the folder, '/'-separated) of the models in ``folder``: weight files
    with the folder's extensions and, where the folder holds them, model directories."""
    spec = MODEL_FOLDERS[folder]
    names: set[str] = set()
    for base in get_runtime().model_dirs(folder):
        if not base.is_dir():
            continue
        for root, dirs, files in os.walk(base, followlinks=True):
            root_path = Path(root)
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = root_path.relative_to(base)
            if spec.holds_directories and rel != Path(".") and _is_model_dir(root_path):
                names.add(rel.as_posix())
                dirs[:] = []  # a model directory's own files are not separate models
                continue
            names.update(
                (rel / f).as_posix() for f in files if f.lower().endswith(spec.extensions)
            )
    return sorted(names, key=str.lower)


def resolve_model(folder: str, name: str) -> Path:
    """The path of model ``name`` (a value from `list_models`) in ``folder``.

    ``name`` comes from a widget, so it is untrusted: absolute paths and ``..`` are refused,
    which keeps every result inside one of the folder's directories.
    """
    check_relative_name(name, f"model name for models/{folder}")
    dirs = get_runtime().model_dirs(folder)
    for base in dirs:
        candidate = base / name
        if candidate.exists():
            return candidate
    searched = ", ".join(str(d) for d in dirs)
    raise WeightsNotFoundError(
        f"'{name}' is not in models/{folder} (searched: {searched}). Pick a model from the list, "
        f"or put the file there ({MODEL_FOLDERS[folder].purpose}) and refresh the page."
    )


def check_relative_name(name: str, what: str) -> None:
    """Refuse empty, absolute or parent-escaping names (used for every widget-given name)."""
    pure = PurePath(name.replace("\\", "/"))
    if (not name.strip() or pure.is_absolute() or ".." in pure.parts or ":" in name
            or "\0" in name or not pure.parts or pure.parts == (".",)):
        raise InputError(
            f"{what} {name!r} is not allowed: use a plain name inside the folder "
            "(no absolute path, no '..', no drive letter)."
        )


def _is_model_dir(path: Path) -> bool:
    return any((path / marker).is_file() for marker in _MODEL_DIR_MARKERS)
