"""Caption review: edits written into the set on disk, keyed by image content so they survive
upstream re-runs, never dropped or lost; the contact sheet; the node as ComfyUI calls it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from intenttuner.augment.types import Augmented, AugmentPlan, CropItem
from intenttuner.captions.contact_sheet import (
    COLUMNS,
    MAX_ITEMS,
    PAD,
    TILE,
    render_contact_sheet,
)
from intenttuner.captions.review import (
    RECORD,
    apply_edits,
    edit_key,
    parse_edits,
    review_entries,
)
from intenttuner.dataset.folders import sha256_of
from intenttuner.dataset.kohya import read_training_set, write_training_set
from intenttuner.dataset.training_set import MANIFEST
from intenttuner.errors import InputError
from intenttuner.intent.preview import BACKGROUND
from tests.dataset_helpers import module, noise, sample_augmented, sample_intent

NON_ASCII = "ohwx man, Amélie, 写真"


@pytest.fixture
def training_set(tmp_path):
    """Six items (3 originals, a face crop, 2 jacket crops) with placeholder captions."""
    return write_training_set(sample_augmented(), sample_intent(), tmp_path / "sets", "ohwx")


def caption_file(ts, index: int) -> Path:
    return Path(ts.root) / ts.items[index].caption_file


def on_disk(root) -> list[tuple[str, str, str]]:
    """(image, caption, source) per item as a fresh Load Training Set sees the folder."""
    return [(i.image, i.caption, i.caption_source) for i in read_training_set(root).items]


def stamps(ts) -> dict[str, int]:
    root = Path(ts.root)
    files = [root / MANIFEST, *(root / i.caption_file for i in ts.items)]
    return {f.name: f.stat().st_mtime_ns for f in files}


# --- the edits text -------------------------------------------------------------------------


def test_parse_edits_reads_the_panel_json_and_blank_means_none():
    assert parse_edits("") == {} and parse_edits(" \n ") == {}
    assert parse_edits(json.dumps({"k": NON_ASCII}, ensure_ascii=False)) == {"k": NON_ASCII}
    assert parse_edits(json.dumps({"k": NON_ASCII})) == {"k": NON_ASCII}  # \\u escapes too


@pytest.mark.parametrize(("text", "says"), [
    ('{"abc": "x"', "is not valid JSON"),
    ('["x"]', "must be a JSON object, got list"),
    ('{"abc": 3}', "not a caption text"),
    ('{"abc": null}', "not a caption text"),
])
def test_bad_edits_name_the_input_and_the_fix(text, says):
    with pytest.raises(InputError, match=says) as info:
        parse_edits(text)
    assert "'edits'" in str(info.value) and "Discard all edits" in str(info.value)


# --- applying edits -------------------------------------------------------------------------


def test_edit_is_written_to_the_caption_file_and_the_manifest(training_set):
    key = edit_key(training_set.items[3])  # the face crop
    assert key == sha256_of(Path(training_set.root) / training_set.items[3].image)
    before = on_disk(training_set.root)

    result = apply_edits(training_set, {key: "  ohwx man,\n  close-up of his face "})

    assert caption_file(training_set, 3).read_text(encoding="utf-8") == \
        "ohwx man, close-up of his face\n"
    after = on_disk(training_set.root)
    assert after[3] == (training_set.items[3].image, "ohwx man, close-up of his face", "user")
    assert after[:3] + after[4:] == before[:3] + before[4:]  # the others untouched
    manifest = json.loads((Path(training_set.root) / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["items"][3]["caption"] == "ohwx man, close-up of his face"
    assert manifest["items"][3]["caption_source"] == "user"
    assert result.edited == [training_set.items[3].image] and result.written == 1
    # ComfyUI caches the incoming set as the upstream node's output: it is not changed
    assert training_set.items[3].caption == "ohwx, man, face"
    assert training_set.items[3].caption_source == "placeholder"
    assert result.training_set.items[3].caption_source == "user"


def test_edits_keyed_by_content_reapply_to_a_rewritten_copy_of_the_set(training_set, tmp_path):
    edits = {edit_key(training_set.items[0]): "ohwx man, first shot",
             edit_key(training_set.items[5]): "ohwx man, red wool coat, outdoors"}
    apply_edits(training_set, edits)
    # The upstream nodes run again: the same items written afresh, into <name>_00002.
    again = write_training_set(sample_augmented(), sample_intent(), tmp_path / "sets", "ohwx")
    assert Path(again.root).name == "ohwx_00002"
    assert [i.caption_source for i in again.items] == ["placeholder"] * 6

    result = apply_edits(again, edits)

    captions = [(c, s) for _, c, s in on_disk(again.root)]
    assert captions[0] == ("ohwx man, first shot", "user")
    assert captions[5] == ("ohwx man, red wool coat, outdoors", "user")
    assert [s for _, s in captions[1:5]] == ["placeholder"] * 4
    assert result.unmatched == {} and result.written == 2


def test_an_edit_for_an_image_not_in_the_set_is_reported_and_kept(training_set):
    gone = "f" * 64
    key = edit_key(training_set.items[1])
    result = apply_edits(training_set, {gone: "a caption for a deleted crop", key: "ohwx man"})
    assert result.unmatched == {gone: "a caption for a deleted crop"}
    (warning,) = result.warnings
    assert warning.startswith("edit for an image that is no longer in the set: sha256 ffffff")
    assert "kept in the node, not applied" in warning
    assert "warning: edit for an image that is no longer in the set" in result.summary()
    assert on_disk(training_set.root)[1][1:] == ("ohwx man", "user")  # the other one applies


def test_an_empty_edit_is_refused_before_anything_is_written(training_set):
    good, empty = edit_key(training_set.items[0]), edit_key(training_set.items[3])
    before = stamps(training_set)
    with pytest.raises(InputError, match="a caption cannot be empty; discard the edit instead"):
        apply_edits(training_set, {good: "ohwx man, fine", empty: " \n\t "})
    assert stamps(training_set) == before
    assert caption_file(training_set, 0).read_text(encoding="utf-8") == "ohwx, man\n"


def test_an_edit_equal_to_the_caption_on_disk_writes_nothing(training_set):
    key = edit_key(training_set.items[2])
    before = stamps(training_set)
    result = apply_edits(training_set, {key: "ohwx,   man"})  # the placeholder, spaced out
    assert result.written == 0 and result.edited == []
    assert stamps(training_set) == before
    assert not (Path(training_set.root) / RECORD).exists()


def test_a_rerun_with_the_same_edits_on_the_cached_input_writes_nothing(training_set):
    """ComfyUI hands Caption Review the same (cached) incoming set on every run; an edit
    written by the previous run is on disk already and is not written again."""
    edits = {edit_key(training_set.items[4]): "ohwx man, black leather jacket, night"}
    apply_edits(training_set, edits)
    before = stamps(training_set)
    result = apply_edits(training_set, edits)
    assert stamps(training_set) == before
    assert result.written == 0 and result.edited == [training_set.items[4].image]
    assert result.training_set.items[4].caption == "ohwx man, black leather jacket, night"
    assert result.training_set.items[4].caption_source == "user"


def test_a_discarded_edit_brings_back_the_caption_that_came_in(training_set):
    key = edit_key(training_set.items[3])
    apply_edits(training_set, {key: "ohwx man, his face"})
    result = apply_edits(training_set, {})
    assert result.restored == [training_set.items[3].image]
    assert on_disk(training_set.root)[3][1:] == ("ohwx, man, face", "placeholder")
    assert caption_file(training_set, 3).read_text(encoding="utf-8") == "ohwx, man, face\n"
    assert json.loads((Path(training_set.root) / RECORD).read_text(encoding="utf-8")) == {}


def test_a_caption_edited_outside_intenttuner_is_never_overwritten(training_set):
    """Only what Caption Review wrote itself is undone; a caption typed into the .txt file
    by hand (the incoming set predates it) is kept and reported."""
    caption_file(training_set, 1).write_text("typed in a text editor\n", encoding="utf-8")
    result = apply_edits(training_set, {edit_key(training_set.items[0]): "ohwx man"})
    assert caption_file(training_set, 1).read_text(encoding="utf-8") == \
        "typed in a text editor\n"
    assert result.kept_outside == [training_set.items[1].image]
    assert result.training_set.items[1].caption == "typed in a text editor"
    assert any("edited outside IntentTuner kept" in w for w in result.warnings)
    # and still not on the next run, when another edit changes
    apply_edits(training_set, {edit_key(training_set.items[0]): "ohwx man, again"})
    assert caption_file(training_set, 1).read_text(encoding="utf-8") == \
        "typed in a text editor\n"


def test_discarding_after_the_set_was_read_again_restores_the_refined_caption(training_set):
    """Caption Refine (or Load Training Set) re-reads the folder after an edit, so the edit
    comes back in as the caption; discarding it must still bring back what it replaced."""
    training_set.set_caption(1, "ohwx, man, a refined caption", source="refined")
    training_set.save_manifest()
    key = edit_key(training_set.items[1])
    apply_edits(training_set, {key: "ohwx, man, my edit"})
    reread = read_training_set(training_set.root)  # what a re-run upstream node passes on
    assert reread.items[1].caption_source == "user"
    result = apply_edits(reread, {})
    assert result.restored == [training_set.items[1].image]
    assert on_disk(training_set.root)[1][1:] == ("ohwx, man, a refined caption", "refined")


def test_a_text_editor_change_after_an_edit_wins_until_the_panel_edit_changes(training_set):
    key = edit_key(training_set.items[2])
    apply_edits(training_set, {key: "ohwx, man, from the panel"})
    caption_file(training_set, 2).write_text("ohwx, man, typed in an editor\n", encoding="utf-8")
    result = apply_edits(training_set, {key: "ohwx, man, from the panel"})
    assert result.conflicts == [training_set.items[2].image] and result.written == 0
    assert any("changed on disk after your edit" in w for w in result.warnings)
    assert caption_file(training_set, 2).read_text(encoding="utf-8") == \
        "ohwx, man, typed in an editor\n"
    result = apply_edits(training_set, {key: "ohwx, man, a newer panel edit"})
    assert result.written == 1 and not result.conflicts
    assert caption_file(training_set, 2).read_text(encoding="utf-8") == \
        "ohwx, man, a newer panel edit\n"


def test_edits_a_trainer_would_read_differently_are_warned_about(training_set):
    long = "ohwx, man, " + ", ".join(f"detail number {n}" for n in range(40))
    result = apply_edits(training_set, {edit_key(training_set.items[0]): long,
                                        edit_key(training_set.items[1]): "a man, no trigger"})
    assert result.written == 2  # written as typed
    assert any("tokens: trainers without long-prompt support" in w for w in result.warnings)
    assert any("does not begin with the trigger words 'ohwx, man'" in w
               for w in result.warnings)


def test_non_ascii_captions_round_trip(training_set):
    key = edit_key(training_set.items[0])
    result = apply_edits(training_set, parse_edits(json.dumps({key: NON_ASCII})))
    assert caption_file(training_set, 0).read_bytes() == (NON_ASCII + "\n").encode("utf-8")
    assert on_disk(training_set.root)[0][1] == NON_ASCII
    assert review_entries(result.training_set)[0]["caption"] == NON_ASCII


def test_a_set_made_elsewhere_is_keyed_by_image_path(tmp_path):
    root = tmp_path / "plain"
    (root / "5_cat").mkdir(parents=True)
    noise(64, 64, 1).save(root / "5_cat" / "a.png")
    (root / "5_cat" / "a.txt").write_text("a cat\n", encoding="utf-8")
    noise(64, 64, 2).save(root / "5_cat" / "b.png")
    (root / "5_cat" / "b.txt").write_text("another cat\n", encoding="utf-8")
    ts = read_training_set(root)
    assert [edit_key(i) for i in ts.items] == ["5_cat/a.png", "5_cat/b.png"]
    apply_edits(ts, {"5_cat/b.png": "a grey cat"})
    assert (root / "5_cat" / "b.txt").read_text(encoding="utf-8") == "a grey cat\n"
    assert on_disk(root)[1] == ("5_cat/b.png", "a grey cat", "user")


def test_items_showing_the_same_image_share_their_edit(tmp_path):
    """A crop that is the whole photo, unscaled, is byte-identical to the original."""
    whole = {"source_index": 0, "source_name": "a.png", "region": (0, 0, 64, 48),
             "out_size": (64, 48), "resample": "none"}
    plan = AugmentPlan(items=[CropItem(operation="original", group="original", **whole),
                              CropItem(operation="keep", concept="face", group="face",
                                       **whole)])
    ts = write_training_set(Augmented(plan=plan, sources=[noise(64, 48)]), sample_intent(),
                            tmp_path, "same")
    assert edit_key(ts.items[0]) == edit_key(ts.items[1])
    result = apply_edits(ts, {edit_key(ts.items[0]): "ohwx man, the whole photo"})
    assert [c for _, c, _ in on_disk(ts.root)] == ["ohwx man, the whole photo"] * 2
    assert result.edited == [i.image for i in ts.items]


def test_review_entries_are_what_the_panel_shows(training_set):
    entries = review_entries(training_set)
    assert [e["key"] for e in entries] == [i.sha256 for i in training_set.items]
    assert entries[4] == {"key": training_set.items[4].sha256,
                          "image": training_set.items[4].image, "group": "jacket",
                          "concept": "jacket", "caption": "ohwx, man, black leather jacket",
                          "caption_source": "placeholder"}


# --- the contact sheet ----------------------------------------------------------------------


def plain_set(root: Path, count: int):
    (root / "1_x").mkdir(parents=True)
    for i in range(count):
        noise(40, 30, i).save(root / "1_x" / f"{i:03}.png")
        (root / "1_x" / f"{i:03}.txt").write_text(f"caption {i}\n", encoding="utf-8")
    return read_training_set(root)


def test_contact_sheet_size_is_bounded_for_big_sets(tmp_path):
    small = render_contact_sheet(plain_set(tmp_path / "a", 3))
    full = render_contact_sheet(plain_set(tmp_path / "b", MAX_ITEMS))
    big = render_contact_sheet(plain_set(tmp_path / "c", 3 * MAX_ITEMS))
    assert small.width == PAD + 3 * (TILE + PAD) < full.width == PAD + COLUMNS * (TILE + PAD)
    assert big.width == full.width and big.height <= full.height + 2 * 16  # + "... and N more"
    assert big.width * big.height < 3_000_000


def test_contact_sheet_shows_thumbnails_with_their_own_captions(training_set):
    sheet = np.asarray(render_contact_sheet(training_set)).astype(int)
    result = apply_edits(training_set, {edit_key(training_set.items[0]):
                                        "a much longer caption " * 8})
    edited = np.asarray(render_contact_sheet(result.training_set,
                                             edited=set(result.edited))).astype(int)
    assert sheet.shape == edited.shape
    differs = np.abs(sheet - edited).sum(axis=2) > 0
    top = PAD + 16 + PAD
    assert differs[:top].any()  # the header counts the edit
    ys, xs = np.nonzero(differs[top:])
    # below the header only the first tile's text changed: under its thumbnail, in its column
    assert xs.min() >= PAD and xs.max() < PAD + TILE
    assert ys.min() >= TILE
    # the first tile shows the item's image (200 x 160) fitted into 192 x 192, centred
    with Image.open(Path(training_set.root) / training_set.items[0].image) as image:
        expected = np.asarray(image.convert("RGB").resize((192, 154), Image.Resampling.LANCZOS))
    y0 = top + (TILE - 154) // 2
    shown = sheet[y0:y0 + 154, PAD:PAD + 192]
    assert np.abs(shown - expected.astype(int)).mean() < 4
    assert (sheet[top:y0, PAD:PAD + 192] == BACKGROUND).all()  # nothing above it


# --- the node as ComfyUI calls it ---------------------------------------------------------------


@pytest.fixture
def pack_set(pack, models_root, tmp_path):
    lib = f"{pack.__name__}.intenttuner"
    write = module(lib, "dataset.kohya").write_training_set
    return write(sample_augmented(lib), sample_intent(lib), tmp_path / "sets", "ohwx")


def test_node_applies_edits_and_fills_the_panel(pack, pack_set, monkeypatch):
    runtime = module(f"{pack.__name__}.intenttuner", "runtime")
    saved = []

    class Recording(runtime.TorchRuntime):
        def save_ui_images(self, images, prefix):
            saved.extend(images)
            return [{"filename": f"{prefix}_{i}.png", "subfolder": "intenttuner",
                     "type": "temp"} for i in range(len(images))]

    monkeypatch.setattr(runtime, "_current", Recording())
    cls = pack.NODE_CLASS_MAPPINGS["IntentTunerCaptionReview"]
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["IntentTunerCaptionReview"] == "Caption Review"
    assert cls.CATEGORY == "IntentTuner/Captions" and cls.OUTPUT_NODE is True
    spec = cls.INPUT_TYPES()["required"]
    assert spec["training_set"][0] == "TRAINING_SET"
    assert spec["edits"][0] == "STRING" and spec["edits"][1]["multiline"] is True

    key = pack_set.items[2].sha256
    out = cls().review(pack_set, json.dumps({key: NON_ASCII}, ensure_ascii=False))
    reviewed, sheet, summary = out["result"]
    assert (Path(pack_set.root) / pack_set.items[2].caption_file).read_text(
        encoding="utf-8") == NON_ASCII + "\n"
    assert reviewed.items[2].caption_source == "user"
    assert tuple(sheet.shape[::3]) == (1, 3) and sheet.dtype.is_floating_point
    assert summary.startswith("Caption Review: 6 image(s)") and "edited by hand: 1" in summary
    entries = out["ui"]["it_captions"]
    assert [e["key"] for e in entries] == [i.sha256 for i in pack_set.items]
    assert entries[2]["caption"] == NON_ASCII and entries[2]["caption_source"] == "user"
    # one thumbnail per item, same order, small
    assert len(out["ui"]["it_thumbnails"]) == len(saved) == 6
    assert [im.size for im in saved[:2]] == [(160, 128), (160, 107)]
    assert out["ui"]["text"] == [summary]


def test_node_reports_bad_edits_naming_the_input(pack, pack_set):
    cls = pack.NODE_CLASS_MAPPINGS["IntentTunerCaptionReview"]
    error = module(f"{pack.__name__}.intenttuner", "errors").InputError
    with pytest.raises(error, match="'edits' is not valid JSON"):
        cls().review(pack_set, "{not json")
