"""The dataset nodes as ComfyUI calls them (the pack loaded as ComfyUI loads it)."""

from __future__ import annotations

import sys

import pytest

from tests.dataset_helpers import noise, sample_augmented, sample_intent, write


@pytest.fixture
def folders(tmp_path, monkeypatch, models_root):
    """An input folder (the runtime's input_dir) and the output folder of `models_root`."""
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    monkeypatch.setenv("INTENTTUNER_INPUT_DIR", str(input_dir))
    return input_dir, tmp_path / "output"


def node(pack, name):
    return pack.NODE_CLASS_MAPPINGS[f"IntentTuner{name}"]


def lib(pack) -> str:
    return f"{pack.__name__}.intenttuner"


def error_type(pack):
    return sys.modules[f"{lib(pack)}.errors"].InputError


def test_load_training_images_lists_folders_loads_a_list_and_reports(pack, folders):
    input_dir, _ = folders
    shoot = input_dir / "shoot 2"
    shoot.mkdir()
    (input_dir / "shoot 10").mkdir()
    noise(120, 80, 1).save(shoot / "b.png")
    noise(64, 96, 2).convert("RGBA").save(shoot / "a.png")
    write(shoot, "broken.jpg", b"\xff\xd8 not really")
    cls = node(pack, "LoadTrainingImages")
    options, extra = cls.INPUT_TYPES()["required"]["folder"]
    assert options == ["(type a path below)", "shoot 2", "shoot 10"]
    assert extra["default"] == "shoot 2"

    out = cls().load("shoot 2", "", False, 2048)
    images, names, report = out["result"]
    assert cls.OUTPUT_IS_LIST == (True, True, False)
    assert names == ["a.png", "b.png"]
    assert [tuple(i.shape) for i in images] == [(1, 96, 64, 3), (1, 80, 120, 3)]
    assert report.startswith("2 of 3 loaded") and "broken.jpg (not an image" in report
    assert out["ui"]["text"] == [report]
    assert cls.IS_CHANGED("shoot 2", "", False, 2048) == cls.IS_CHANGED("shoot 2", "", True, 0)
    before = cls.IS_CHANGED("shoot 2", "", False, 2048)
    noise(70, 70, 3).save(shoot / "c.png")
    assert cls.IS_CHANGED("shoot 2", "", False, 2048) != before  # new files re-run it


def test_load_training_images_typed_path_wins_and_bad_choices_are_refused(pack, folders,
                                                                          tmp_path):
    input_dir, _ = folders
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    noise(100, 100).save(elsewhere / "x.png")
    (input_dir / "empty").mkdir()
    cls = node(pack, "LoadTrainingImages")
    assert cls().load("empty", str(elsewhere), False, 2048)["result"][1] == ["x.png"]
    with pytest.raises(error_type(pack), match="is not allowed"):
        cls().load("../elsewhere", "", False, 2048)
    with pytest.raises(error_type(pack), match="holds no files"):
        cls().load("empty", "", False, 2048)
    message = cls.VALIDATE_INPUTS("gone", "")
    assert isinstance(message, str) and "does not exist" in message
    assert cls.VALIDATE_INPUTS("empty", "") is True


@pytest.mark.parametrize("location", ["input", "output"])
def test_save_then_load_training_set(pack, folders, location):
    input_dir, output_dir = folders
    augmented, intent = sample_augmented(lib(pack)), sample_intent(lib(pack))
    save = node(pack, "SaveTrainingSet")
    assert save.INPUT_TYPES()["required"]["location"][1]["default"] == "input"
    out = save().save(augmented, intent, "ohwx set", "new", 10, 1, location)
    training_set, path, summary = out["result"]
    base = input_dir if location == "input" else output_dir
    assert path == str((base / "training_sets" / "ohwx_set").resolve())
    assert summary.startswith("6 images in 3 group(s), 10 per epoch")
    assert "original 3 x 1, face 1 x 3, jacket 2 x 2" in summary
    assert out["ui"]["text"] == [summary]
    second = save().save(augmented, intent, "ohwx set", "new", 10, 1, location)["result"][1]
    assert second.endswith("ohwx_set_00002")

    load = node(pack, "LoadTrainingSet")
    options = load.INPUT_TYPES()["required"]["folder"][0]
    if location == "input":  # listed, the way ComfyUI's own dataset loader lists it
        assert options == ["(type a path below)", "training_sets/ohwx_set",
                           "training_sets/ohwx_set_00002"]
        loaded, text = load().load("training_sets/ohwx_set", "")["result"]
    else:
        assert options == ["(type a path below)"]
        loaded, text = load().load("(type a path below)", path)["result"]
    assert loaded.model_dump() == training_set.model_dump()
    assert text == summary


def test_save_training_set_error_mode_names_the_folder(pack, folders):
    augmented, intent = sample_augmented(lib(pack)), sample_intent(lib(pack))
    save = node(pack, "SaveTrainingSet")()
    save.save(augmented, intent, "s", "error", 10, 1, "input")
    with pytest.raises(error_type(pack), match="already exists"):
        save.save(augmented, intent, "s", "error", 10, 1, "input")
    with pytest.raises(error_type(pack), match="plain folder name"):
        save.save(augmented, intent, "../s", "new", 10, 1, "input")


def test_load_training_set_reads_a_kohya_folder_made_elsewhere(pack, folders):
    input_dir, _ = folders
    (input_dir / "theirs" / "5_style").mkdir(parents=True)
    noise(64, 64).save(input_dir / "theirs" / "5_style" / "a.png")
    (input_dir / "theirs" / "5_style" / "a.txt").write_text("in the style of xyz")
    (input_dir / "photos").mkdir()
    noise(64, 64).save(input_dir / "photos" / "p.png")
    load = node(pack, "LoadTrainingSet")
    assert load.INPUT_TYPES()["required"]["folder"][0] == ["(type a path below)", "theirs"]
    training_set, summary = load().load("theirs", "")["result"]
    assert training_set.groups == {"style": 5}
    assert training_set.items[0].caption == "in the style of xyz"
    assert "no dataset.json" in summary
    with pytest.raises(error_type(pack), match="not a training set"):
        load().load("photos", "")


@pytest.mark.parametrize("name", ["LoadTrainingImages", "LoadTrainingSet"])
def test_linked_folder_inputs_are_checked_when_the_node_runs(pack, folders, name):
    # ComfyUI validates a linked input as None; the folder is known only at execution.
    cls = node(pack, name)
    assert cls.VALIDATE_INPUTS(None, "") is True
    assert cls.VALIDATE_INPUTS("(type a path below)", None) is True
    assert cls.VALIDATE_INPUTS(None, None) is True
    args = (False, 2048) if name == "LoadTrainingImages" else ()
    with pytest.raises(error_type(pack), match="does not exist"):
        cls().load("(type a path below)", "no/such/folder", *args)
