"""The inputs of a headless run: the intent as text or a file, the boxes as JSON or a file, the
reference images, and the output folder that never loses an earlier run's results silently."""

from __future__ import annotations

import pytest
from PIL import Image

from intenttuner.errors import InputError
from intenttuner.jobs.inputs import (
    OUTPUTS,
    boxes_text,
    check_boxes,
    intent_text,
    prepare_out,
    reference_images,
)

BOXES = '[{"image": 0, "box": [0, 0, 20, 20], "label": "face"}]'


def test_the_intent_is_the_text_or_the_file_it_names(tmp_path):
    assert intent_text("  Keep his face. ") == "Keep his face."
    (tmp_path / "intent.txt").write_text("Never a necklace.\n", encoding="utf-8")
    assert intent_text(str(tmp_path / "intent.txt")) == "Never a necklace."
    (tmp_path / "intent").write_text("Keep her hat.", encoding="utf-8")  # any existing file
    assert intent_text(str(tmp_path / "intent")) == "Keep her hat."
    # A sentence that happens to end like a file name is a file name that was not found.
    with pytest.raises(InputError, match="intent file .*notes.txt was not found"):
        intent_text(str(tmp_path / "notes.txt"))
    with pytest.raises(InputError, match="it is a folder"):
        intent_text(str(tmp_path))
    (tmp_path / "blank.txt").write_text(" \n")
    with pytest.raises(InputError, match="The intent is empty"):
        intent_text(str(tmp_path / "blank.txt"))


def test_boxes_are_json_or_a_json_file(tmp_path):
    assert boxes_text("") == "" and boxes_text(BOXES) == BOXES
    (tmp_path / "boxes.json").write_text(BOXES + "\n")
    assert boxes_text(str(tmp_path / "boxes.json")) == BOXES
    with pytest.raises(InputError, match="boxes file .*other.json was not found"):
        boxes_text(str(tmp_path / "other.json"))


def test_boxes_must_be_valid_and_on_a_given_reference(tmp_path):
    check_boxes(BOXES, [tmp_path / "a.png"], 1)
    check_boxes("", [], 0)
    with pytest.raises(InputError, match="not valid: .*not valid JSON"):
        check_boxes("[{", [], 0)
    with pytest.raises(InputError, match=r"box \[1\] is drawn on reference image 1 .* no "
                                         "reference images are given"):
        check_boxes(BOXES, [], 0)
    two = '[{"image": 0, "box": [0, 0, 5, 5]}, {"image": 1, "box": [1, 1, 9, 9]}]'
    with pytest.raises(InputError, match=r"box \[2\] .*only 1 reference image"):
        check_boxes(two, [tmp_path / "a.png"], 1)


def test_reference_images_are_files_or_folders_of_them(tmp_path):
    folder = tmp_path / "refs"
    folder.mkdir()
    Image.new("RGB", (30, 20), "red").save(folder / "b.png")
    Image.new("RGBA", (10, 10)).save(folder / "a.png")
    (folder / "boxes.json").write_text(BOXES)  # beside the images, as in the example: skipped
    loaded = reference_images([folder, folder / "b.png"])
    assert [image.size for image in loaded] == [(10, 10), (30, 20), (30, 20)]
    assert all(image.mode == "RGB" for image in loaded)
    with pytest.raises(InputError, match="does not exist"):
        reference_images([tmp_path / "missing.png"])
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="cannot be read as an image"):
        reference_images([tmp_path / "bad.png"])
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        reference_images([tmp_path / "none"])


def test_an_earlier_runs_results_are_refused_or_with_overwrite_replaced_alone(tmp_path):
    out = tmp_path / "out"
    assert prepare_out(out, overwrite=False, inputs=[]) == out and out.is_dir()
    (out / "dataset").mkdir()
    (out / "dataset" / "a.png").write_bytes(b"x")
    (out / "report.json").write_text("{}")
    (out / "models").mkdir()  # a smoke run's models: not a result
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"already holds the results of a run \(dataset, "
                                         r"report.json\).*--overwrite"):
        prepare_out(out, overwrite=False, inputs=[])
    assert (out / "dataset" / "a.png").exists()
    prepare_out(out, overwrite=True, inputs=[])
    assert sorted(p.name for p in out.iterdir()) == ["models", "notes.txt"]
    assert set(OUTPUTS) >= {"dataset", "lora", "report.png", "report.json", "curves.png"}


def test_overwrite_never_removes_an_input_and_a_file_is_no_folder(tmp_path):
    out = tmp_path / "out"
    (out / "dataset" / "train").mkdir(parents=True)
    with pytest.raises(InputError, match="holds the input"):
        prepare_out(out, overwrite=True, inputs=[out / "dataset" / "train"])
    assert (out / "dataset" / "train").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        prepare_out(tmp_path / "file", overwrite=False, inputs=[])
