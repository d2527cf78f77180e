"""The training set on disk: kohya layout, manifest round trip, repeats, captions, naming, never
overwriting, atomic writes, and reading sets made elsewhere."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from intenttuner.dataset import kohya
from intenttuner.dataset.kohya import (
    TrainingSetExistsError,
    balance_repeats,
    read_training_set,
    write_training_set,
)
from intenttuner.dataset.naming import set_name
from intenttuner.dataset.training_set import MANIFEST, TrainingItem
from intenttuner.errors import InputError
from tests.dataset_helpers import noise, sample_augmented, sample_intent

LAYOUT = re.compile(r"^(?P<repeats>\d+)_(?P<group>[a-z0-9_-]+)/(?P<stem>[a-z0-9_-]+)\.png$")


@pytest.fixture
def written(tmp_path):
    augmented, intent = sample_augmented(), sample_intent()
    return augmented, write_training_set(augmented, intent, tmp_path / "sets", "My Set")


def files_under(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_layout_is_kohya_with_a_caption_beside_every_image(written):
    augmented, ts = written
    root = ts.path
    assert root.name == "My_Set" and root.parent.name == "sets"
    assert files_under(root) == ({MANIFEST} | {i.image for i in ts.items}
                                 | {i.caption_file for i in ts.items})
    for item in ts.items:
        match = LAYOUT.match(item.image)
        assert match, item.image
        assert int(match["repeats"]) == item.repeats == ts.groups[item.group]
        assert item.caption_file == item.image.removesuffix(".png") + ".txt"
        # ComfyUI's reader finds captions with str.replace of the extension on the whole path
        full = str(root / item.image)
        assert full.replace(os.path.splitext(full)[1], ".txt") == str(root / item.caption_file)
    assert {p.name for p in root.iterdir() if p.is_dir()} == {"1_original", "2_jacket",
                                                            "3_face"}


def test_images_are_the_planned_regions_scaled_independently_of_render(written):
    augmented, ts = written
    resample = {"none": None, "lanczos": Image.Resampling.LANCZOS,
                "bicubic": Image.Resampling.BICUBIC}
    for item, planned in zip(ts.items, augmented.plan.items, strict=True):
        expected = augmented.sources[planned.source_index].crop(planned.region)
        if resample[planned.resample] is not None:
            expected = expected.resize(planned.out_size, resample[planned.resample])
        with Image.open(ts.image_path(item)) as image:
            assert image.mode == "RGB" and image.size == tuple(planned.out_size) == item.size
            assert np.array_equal(np.asarray(image), np.asarray(expected))


def test_placeholder_captions_and_provenance(written):
    augmented, ts = written
    by_group = {}
    for item in ts.items:
        by_group.setdefault(item.group, []).append(item)
        assert ts.caption_path(item).read_text(encoding="utf-8") == item.caption + "\n"
        assert item.caption_source == "placeholder"
    assert {i.caption for i in by_group["original"]} == {"ohwx, man"}
    assert by_group["face"][0].caption == "ohwx, man, face"
    # a value-detected modify crop names its value; the phrase is inside the value already
    assert [i.caption for i in by_group["jacket"]] == ["ohwx, man, black leather jacket",
                                                      "ohwx, man, jacket, red wool coat"]
    face = by_group["face"][0]
    assert (face.source_name, face.operation, face.concept) == (
        "shoot/IMG 0042.final.jpg", "keep", "face")
    assert face.region == (20, 10, 120, 110) and face.box == (40.0, 30.0, 100.0, 90.0)
    assert face.removed == ["necklace"]
    assert by_group["jacket"][0].value == "black leather jacket"
    manifest = json.loads((ts.path / MANIFEST).read_text())
    assert "root" not in manifest  # the set can move
    assert manifest["intent"]["trigger_words"] == ["ohwx", "man"]
    assert all(r.get("crop_png") is None for r in manifest["intent"]["references"])
    assert manifest["augment"]["skipped"] == ["été 2.png: face not found"]
    assert manifest["augment"]["inpaint"] == {"backend": "opencv"}


def test_file_names_are_ascii_safe_unique_and_hold_one_dot(written):
    _, ts = written
    names = [i.image.split("/")[1] for i in ts.items]
    assert len(set(names)) == len(names)
    assert all(n.isascii() and n.count(".") == 1 for n in names)
    assert names[0] == "img_0042_final_full_0001.png"  # 'shoot/IMG 0042.final.jpg'
    assert names[1] == "ete_2_full_0002.png"  # 'été 2.png': transliterated
    assert names[2] == "image_full_0003.png"  # '写真.png': nothing ASCII is left


def test_round_trip_through_the_manifest(written):
    _, ts = written
    again = read_training_set(ts.root, check_hashes=True)
    assert again.model_dump() == ts.model_dump()
    assert again.root == ts.root and again.warnings == ts.warnings
    assert again.steps_per_epoch() == 3 * 1 + 2 * 2 + 1 * 3


@pytest.mark.parametrize(("sizes", "expected"), [
    ({"original": 12, "face": 4}, {"original": 1, "face": 3}),
    ({"original": 10, "face": 4}, {"original": 1, "face": 3}),  # 2.5 rounds up
    ({"original": 9, "face": 4}, {"original": 1, "face": 2}),  # 2.25 rounds down
    ({"original": 3, "face": 5}, {"original": 2, "face": 1}),  # crops may outnumber originals
    ({"original": 10, "face": 1}, {"original": 1, "face": 10}),  # exactly at the cap
    ({"original": 40, "face": 1}, {"original": 1, "face": 10}),  # capped
    ({"original": 7}, {"original": 1}),
])
def test_repeats_balance_the_groups(sizes, expected):
    assert balance_repeats(sizes) == expected


def test_repeat_multiplier_and_cap():
    assert balance_repeats({"a": 12, "b": 4}, multiplier=2) == {"a": 2, "b": 6}
    assert balance_repeats({"a": 40, "b": 1}, max_repeats=50) == {"a": 1, "b": 40}
    with pytest.raises(InputError, match="at least 1"):
        balance_repeats({"a": 1}, max_repeats=0)


def test_capped_group_is_warned_about(tmp_path):
    augmented, intent = sample_augmented(), sample_intent()
    ts = write_training_set(augmented, intent, tmp_path, "s", max_repeats=2)
    assert ts.groups == {"original": 1, "face": 2, "jacket": 2}
    assert any("group 'face'" in w and "capped at 2" in w for w in ts.warnings)
    assert not any("'jacket'" in w for w in ts.warnings)


def test_an_existing_set_is_never_overwritten(tmp_path):
    augmented, intent = sample_augmented(), sample_intent()
    first = write_training_set(augmented, intent, tmp_path, "set")
    (first.path / "mine.txt").write_text("keep me")
    second = write_training_set(augmented, intent, tmp_path, "set")
    third = write_training_set(augmented, intent, tmp_path, "set")
    assert [first.name, second.name, third.name] == ["set", "set_00002", "set_00003"]
    assert (first.path / "mine.txt").read_text() == "keep me"
    with pytest.raises(TrainingSetExistsError, match=re.escape(str(tmp_path / "set"))):
        write_training_set(augmented, intent, tmp_path, "set", if_exists="error")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "set_00002", "set_00003"]


def test_a_crash_mid_write_leaves_no_folder(tmp_path, monkeypatch):
    augmented, intent = sample_augmented(), sample_intent()
    calls = []

    def failing_render(source, item):
        calls.append(item)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return source.crop(item.region).resize(item.out_size)

    monkeypatch.setattr(kohya, "render_item", failing_render)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_training_set(augmented, intent, tmp_path / "sets", "set")
    assert list((tmp_path / "sets").iterdir()) == []  # no half set, no temporary folder


def test_temporary_folders_of_killed_writes_are_removed_once_stale(tmp_path):
    stale = tmp_path / f"{kohya.PARTIAL_PREFIX}old-1"
    fresh = tmp_path / f"{kohya.PARTIAL_PREFIX}new-2"  # perhaps a parallel write: kept
    for folder in (stale, fresh):
        folder.mkdir()
    day_ago = stale.stat().st_mtime - kohya.STALE_PARTIAL_S - 60
    os.utime(stale, (day_ago, day_ago))
    write_training_set(sample_augmented(), sample_intent(), tmp_path, "s")
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, "s"]


@pytest.mark.parametrize(("name", "message"), [
    ("../escape", "plain folder name"), ("a/b", "plain folder name"),
    ("a\\b", "plain folder name"), ("..", "plain folder name"), ("C:x", "plain folder name"),
    ("CON", "reserved"), ("nul", "reserved"), ("   ", "empty"), ("写真", "no letters"),
])
def test_bad_set_names_are_refused(name, message):
    with pytest.raises(InputError, match=message):
        set_name(name)


def test_set_names_are_sanitised():
    assert set_name("My Set été v1.5") == "My_Set_ete_v1_5"
    assert set_name("  lora-set_2 ") == "lora-set_2"


def test_set_caption_rewrites_only_the_caption_and_the_manifest(written):
    _, ts = written
    images = {i.image: (ts.image_path(i).read_bytes(), ts.image_path(i).stat().st_mtime_ns)
              for i in ts.items}
    other_captions = {i.caption_file: ts.caption_path(i).read_bytes() for i in ts.items[1:]}
    target = ts.items[0]
    ts.set_caption(target, "  ohwx man,\n standing on a beach  ")
    ts.set_caption(3, "ohwx man, close-up of his face", source="captioner")
    ts.save_manifest()
    assert ts.caption_path(target).read_text() == "ohwx man, standing on a beach\n"
    assert {i.image: (ts.image_path(i).read_bytes(), ts.image_path(i).stat().st_mtime_ns)
            for i in ts.items} == images
    assert all(ts.caption_path(i).read_bytes() == other_captions[i.caption_file]
               for i in ts.items[1:] if i is not ts.items[3])
    again = read_training_set(ts.root, check_hashes=True)
    assert (again.items[0].caption, again.items[0].caption_source) == (
        "ohwx man, standing on a beach", "refined")
    assert again.items[3].caption_source == "captioner"
    assert not again.all_warnings()
    assert not [p for p in ts.path.rglob("*") if p.name.startswith(".")]  # no temp files left
    with pytest.raises(InputError, match="not an image of the training set"):
        ts.set_caption("1_original/nope.png", "x")


def test_reading_reports_edits_missing_and_extra_files(written):
    _, ts = written
    first, second = ts.items[0], ts.items[1]
    ts.caption_path(first).write_text("edited by hand\n")
    noise(64, 64).save(ts.path / "1_original" / "added.png")
    again = read_training_set(ts.root)
    assert (again.items[0].caption, again.items[0].caption_source) == ("edited by hand", "user")
    assert any("edited outside IntentTuner" in w and first.caption_file in w
               for w in again.all_warnings())
    assert any("not in dataset.json" in w and "1_original/added.png" in w
               for w in again.all_warnings())
    ts.image_path(second).unlink()
    ts.caption_path(first).unlink()
    with pytest.raises(InputError) as info:
        read_training_set(ts.root)
    assert "2 file(s)" in str(info.value)
    assert second.image in str(info.value) and first.caption_file in str(info.value)


def test_changed_image_bytes_are_reported_with_check_hashes(written):
    _, ts = written
    noise(*ts.items[0].size, seed=99).save(ts.image_path(ts.items[0]))
    assert not any("changed" in w for w in read_training_set(ts.root).all_warnings())
    assert any("changed since" in w for w in read_training_set(ts.root, True).all_warnings())


def test_a_broken_manifest_is_a_clear_error(written):
    _, ts = written
    (ts.path / MANIFEST).write_text("{not json")
    with pytest.raises(InputError, match="cannot be read"):
        read_training_set(ts.root)
    (ts.path / MANIFEST).write_text(json.dumps({"schema_version": 7}))
    with pytest.raises(InputError, match="schema_version 7"):
        read_training_set(ts.root)


def test_reading_a_plain_kohya_folder_made_elsewhere(tmp_path):
    root = tmp_path / "theirs"
    (root / "10_face").mkdir(parents=True)
    (root / "2_full body").mkdir()
    (root / "notes").mkdir()
    noise(64, 48, 1).save(root / "10_face" / "a.png")
    (root / "10_face" / "a.txt").write_text("sks woman, smiling\n\n")
    noise(80, 60, 2).save(root / "10_face" / "b.jpg")  # no caption
    noise(70, 70, 3).save(root / "2_full body" / "img10.webp")
    noise(70, 70, 4).save(root / "2_full body" / "img2.png")
    (root / "2_full body" / "img2.txt").write_text("sks woman standing")
    (root / "2_full body" / "broken.png").write_bytes(b"not a png")
    noise(50, 50, 5).save(root / "stray.png")
    ts = read_training_set(root)
    assert ts.intent is None and ts.groups == {"face": 10, "full body": 2}
    assert [(i.image, i.caption, i.repeats) for i in ts.items] == [  # natural order
        ("2_full body/img2.png", "sks woman standing", 2),
        ("2_full body/img10.webp", "", 2),
        ("10_face/a.png", "sks woman, smiling", 10),
        ("10_face/b.jpg", "", 10),
    ]
    assert all(i.caption_source == "file" and i.source_name is None for i in ts.items)
    assert ts.items[3].size == (80, 60)
    text = "\n".join(ts.all_warnings())
    for expected in ["no dataset.json", "notes", "2_full body/broken.png", "no .txt caption",
                     "stray.png"]:
        assert expected in text
    ts.set_caption(3, "sks woman, close-up", source="user")  # captions can be added
    assert (root / "10_face" / "b.txt").read_text() == "sks woman, close-up\n"


def test_a_folder_that_is_no_training_set_is_a_clear_error(tmp_path):
    (tmp_path / "photos").mkdir()
    noise(64, 64).save(tmp_path / "photos" / "a.png")
    with pytest.raises(InputError, match="not a training set"):
        read_training_set(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        read_training_set(tmp_path / "missing")


def test_writing_refuses_empty_plans_and_bad_options(tmp_path):
    augmented, intent = sample_augmented(), sample_intent()
    with pytest.raises(InputError, match="if_exists"):
        write_training_set(augmented, intent, tmp_path, "s", if_exists="overwrite")
    augmented.plan.items = []
    with pytest.raises(InputError, match="no items"):
        write_training_set(augmented, intent, tmp_path, "s")
    assert list(tmp_path.iterdir()) == []


# -- nothing outside the set is read or written through the manifest ---------------------------
@pytest.mark.parametrize("field", ["image", "caption_file"])
@pytest.mark.parametrize("bad", ["../outside.txt", "1_original/../../outside.txt", "/etc/passwd",
                                 "C:/Users/x.txt", "1_original\\x.txt", "x.txt",
                                 "1_original/sub/x.txt", "./x.txt", "1_original/"])
def test_manifest_paths_outside_a_group_folder_are_refused(written, field, bad):
    _, ts = written
    manifest = ts.path / MANIFEST
    data = json.loads(manifest.read_text())
    data["items"][2][field] = bad
    manifest.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        read_training_set(ts.root)
    message = str(info.value)
    assert f"items.2.{field}" in message and repr(bad) in message
    assert "'<group folder>/<file name>'" in message or "no '..'" in message
    assert "delete dataset.json" in message


def test_set_caption_never_writes_outside_the_set(written, tmp_path):
    _, ts = written
    item = ts.items[0]
    with pytest.raises(ValueError, match="is not allowed"):  # checked on assignment too
        item.caption_file = "../../outside.txt"
    with pytest.raises(ValueError, match="is not allowed"):
        TrainingItem(image="/etc/passwd", caption_file="1_a/x.txt", group="a", repeats=1)
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    ts.caption_path(item).unlink()
    (ts.path / item.caption_file).symlink_to(outside)
    with pytest.raises(InputError, match="leads outside the set folder") as info:
        ts.set_caption(item, "ohwx man")
    assert item.image in str(info.value)
    assert outside.read_text() == "secret\n" and item.caption != "ohwx man"
    with pytest.raises(InputError, match="lead outside its folder") as info:  # nor read
        read_training_set(ts.root)
    assert item.caption_file in str(info.value) and str(outside) in str(info.value)


def test_a_manifest_image_linked_to_outside_is_refused(written, tmp_path):
    _, ts = written
    item = ts.items[1]
    outside = tmp_path / "elsewhere.png"
    ts.image_path(item).rename(outside)
    (ts.path / item.image).symlink_to(outside)
    with pytest.raises(InputError, match="lead outside its folder") as info:
        read_training_set(ts.root, check_hashes=True)
    assert item.image in str(info.value)


def test_links_within_the_set_still_work(written):
    _, ts = written
    item = ts.items[0]
    real = ts.path / "1_original" / "real.txt"
    ts.caption_path(item).rename(real)
    (ts.path / item.caption_file).symlink_to(real)
    assert read_training_set(ts.root).items[0].caption == item.caption


def test_the_plain_kohya_reader_leaves_out_files_linked_to_outside(tmp_path):
    root, elsewhere = tmp_path / "theirs", tmp_path / "elsewhere"
    (root / "1_a").mkdir(parents=True)
    elsewhere.mkdir()
    noise(64, 64, 1).save(root / "1_a" / "real.png")
    noise(64, 64, 2).save(elsewhere / "photo.png")
    (elsewhere / "secret.txt").write_text("the secret\n")
    (root / "1_a" / "linked.png").symlink_to(elsewhere / "photo.png")
    noise(64, 64, 3).save(root / "1_a" / "captioned.png")
    (root / "1_a" / "captioned.txt").symlink_to(elsewhere / "secret.txt")
    (root / "1_a" / "inner.png").symlink_to(root / "1_a" / "real.png")  # within: kept
    (root / "2_b").symlink_to(elsewhere, target_is_directory=True)
    ts = read_training_set(root)
    assert [i.image for i in ts.items] == ["1_a/inner.png", "1_a/real.png"]
    assert not any("secret" in i.caption for i in ts.items)
    text = "\n".join(ts.all_warnings())
    assert "linked to outside the set folder" in text
    for name in ["1_a/linked.png", "1_a/captioned.txt", "2_b/photo.png"]:
        assert name in text


def test_the_fingerprint_ignores_captions_the_pack_writes_but_not_hand_edits(written):
    from intenttuner.dataset.kohya_read import training_set_fingerprint

    _, ts = written
    before = training_set_fingerprint(ts.root)
    ts.set_caption(0, "ohwx, man, a new caption", source="refined")
    ts.save_manifest()
    assert training_set_fingerprint(ts.root) == before  # file and manifest agree
    (ts.path / ts.items[1].caption_file).write_text("typed by hand\n", encoding="utf-8")
    edited = training_set_fingerprint(ts.root)
    assert edited != before
    image = ts.path / ts.items[2].image
    image.write_bytes(image.read_bytes() + b"\0")
    assert training_set_fingerprint(ts.root) != edited



def test_read_warnings_are_not_saved_into_the_manifest(written):
    _, ts = written
    (ts.path / ts.items[0].caption_file).write_text("by hand\n", encoding="utf-8")
    again = read_training_set(ts.root)
    assert any("edited outside" in w for w in again.all_warnings())
    again.save_manifest()
    assert "edited outside" not in (ts.path / "dataset.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("caption_file", ["1_original/x.png", "1_original/x.jpg", "same"])
def test_a_caption_file_that_is_not_its_own_txt_is_refused(written, caption_file):
    """A damaged manifest could otherwise make a caption write overwrite a training image."""
    _, ts = written
    data = json.loads((ts.path / "dataset.json").read_text(encoding="utf-8"))
    first, second = data["items"][0], data["items"][1]
    second["caption_file"] = {"1_original/x.png": first["image"],
                              "1_original/x.jpg": first["image"].rsplit(".", 1)[0] + ".jpg",
                              "same": first["caption_file"]}[caption_file]
    (ts.path / "dataset.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError, match="must be a .txt file of its own"):
        read_training_set(ts.root)
