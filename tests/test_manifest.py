"""The shipped manifest of default weights is complete and safe."""

from __future__ import annotations

import json

import pytest

from intenttuner.errors import InputError
from intenttuner.families import FAMILIES
from intenttuner.weights.folders import MODEL_FOLDERS
from intenttuner.weights.manifest import MANIFEST_PATH, load_manifest, parse_manifest

# Families whose models the pack trains from the user's own data: nothing to download.
TRAINED_HERE = {"reward_model"}


def test_every_family_has_exactly_one_default_where_its_loader_looks():
    manifest = load_manifest()
    for name, family in FAMILIES.items():
        if name in TRAINED_HERE:
            assert not manifest.for_family(name), name
            continue
        defaults = [e for e in manifest.entries if e.family == name and e.default]
        assert len(defaults) == 1, f"{name}: {[e.id for e in defaults]}"
        assert manifest.default_for(name) is defaults[0]
        assert defaults[0].folder in (family.folder, *family.extra_folders), name


def test_large_files_have_a_published_size_or_checksum():
    for entry in load_manifest().entries:
        assert entry.folder in MODEL_FOLDERS
        assert entry.licence
        for f in entry.files:
            if f.name.endswith((".safetensors", ".pth", ".bin")):
                # Without a published sha256, only a Hub file is checked (against the LFS
                # sha256 the Hub declares); anything else must state one.
                assert f.sha256 or (entry.hf_repo and not f.url), \
                    f"{entry.id}/{f.name} has no sha256"


def test_requirements_point_at_existing_entries():
    manifest = load_manifest()
    for entry in manifest.entries:
        for required in entry.requires:
            manifest.get(required)


@pytest.mark.parametrize("bad", ["../escape.pth", "/abs/path.pth", "a/../../b.pth"])
def test_unsafe_paths_are_rejected(bad):
    data = json.loads(MANIFEST_PATH.read_text())
    data["weights"] = [data["weights"][0]]
    data["weights"][0]["target"] = bad
    with pytest.raises(InputError, match="unsafe path"):
        parse_manifest(data)
