"""Getting a loaded model by the name a user picked: the one entry point loaders use.

Names are what loader widgets list (`model_choices`): files and model folders already in the
family's models folder, plus every manifest entry of the family, present or not. Picking an
entry that is not on disk downloads it on first use, so a workflow shared with someone who lacks
the weights still runs. Each (family, file, options) is loaded once and shared while anything
holds it.
"""

from __future__ import annotations

import logging
import time
import weakref
from pathlib import Path
from typing import Any

from .families import get_family
from .families.base import Family
from .weights.download import ensure_entry
from .weights.locate import list_models, resolve_model
from .weights.manifest import WeightEntry, load_manifest

log = logging.getLogger(__name__)

# Extra folders a family also lists, shown as "name [folder]" (diffusers model directories for
# base models live in models/diffusers, next to the single files in models/checkpoints).
_FOLDER_TAG = " [{}]"

_cache: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def model_choices(family_name: str) -> list[str]:
    """Widget options for a family: local models first, then downloadable manifest entries."""
    family = get_family(family_name)
    local = list_models(family.folder)
    for folder in family.extra_folders:
        local += [name + _FOLDER_TAG.format(folder) for name in list_models(folder)]
    downloadable = [e.target for e in _entries(family) if e.target not in local]
    return local + downloadable


def default_choice(family_name: str) -> str:
    """The widget default: the manifest's default entry for the family."""
    return load_manifest().default_for(family_name).target


def resolve_weights(family: Family, name: str) -> Path:
    """The local path for widget value ``name``, downloading a manifest entry if needed."""
    for folder in family.extra_folders:
        tag = _FOLDER_TAG.format(folder)
        if name.endswith(tag):
            return resolve_model(folder, name.removesuffix(tag))
    entry = next((e for e in _entries(family) if e.target == name), None)
    if entry is not None:
        return ensure_entry(entry)
    return resolve_model(family.folder, name)


def load_model(family_name: str, name: str | None = None, **options: Any) -> Any:
    """Load model ``name`` of ``family_name`` (default: the manifest default) once.

    ``options`` go to the family's loader (e.g. ``precision="fp16"``) and are part of the
    cache key. Raises MissingDependencyError, WeightsError subclasses or InputError with a
    message meant for the user.
    """
    family = get_family(family_name)
    family.require()
    path = resolve_weights(family, name or default_choice(family_name))
    key = (family.name, str(path.resolve()), _mtime(path), tuple(sorted(options.items())))
    model = _cache.get(key)
    if model is None:
        started = time.perf_counter()
        model = family.load(path, **options)
        _cache[key] = model
        log.info("loaded %s from %s in %.1f s", family.title, path,
                 time.perf_counter() - started)
    return model


def _entries(family: Family) -> list[WeightEntry]:
    return load_manifest().for_family(family.name)


def _mtime(path: Path) -> float:
    """Changes when the file (or a model directory's config) is replaced, invalidating the cache."""
    probes = [path / "config.json", path / "model_index.json"] if path.is_dir() else [path]
    return max((p.stat().st_mtime for p in probes if p.exists()), default=path.stat().st_mtime)
