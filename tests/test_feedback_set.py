"""Feedback sets (intenttuner.reward.feedback_set): rating sets that keep images with their
prompts and marks (idempotent, never rewritten, the latest mark wins), a training run's monitor
marks read the same way, names refused when they are paths, and the list of sets."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from intenttuner import runtime
from intenttuner.errors import InputError
from intenttuner.monitor import events
from intenttuner.reward import feedback_set as fsets
from tests import monitor_record_helpers as rec

LINE_KEYS = ["image", "item", "prompt", "step", "mark", "time"]


def picture(colour) -> Image.Image:
    return Image.new("RGB", (24, 16), colour)


@pytest.fixture
def output(models_root):
    return runtime.get_runtime().output_dir()


def run_with_samples(name="demo", marks=True):
    loras = runtime.get_runtime().model_dirs("loras")[0]
    run_dir = rec.write_run(loras / name, [(events.START, rec.start(name)),
                                           (events.SAMPLE, rec.sample(name, 10, 0.6))])
    if marks:
        fsets.set_mark(fsets.open_feedback_set(f"run:{name}"), rec.image_path(10, "s0"), "good")
    return run_dir


def test_images_are_kept_with_their_prompts_once_and_marks_survive_adding_again(output):
    fs = fsets.rating_set("my ratings")  # spaces become _
    assert (fs.name, fs.kind, fs.folder) == ("my_ratings", "rating",
                                            output / "intenttuner" / "feedback" / "my_ratings")
    red, blue = picture((200, 0, 0)), picture((0, 0, 200))
    added = fsets.add_images(fs, [red, blue, red], ["a red box", "a blue box", "a box"],
                             seeds=[1, 2, 3])
    assert len(set(added)) == 3  # the same pixels under another prompt: another example
    assert all(a.startswith("images/") and (fs.folder / a).is_file() for a in added)
    listing = [json.loads(line) for line in (fs.folder / "images.jsonl").open()]
    assert listing[0] == {"image": added[0], "item": added[0][7:-4], "prompt": "a red box",
                          "step": None, "seed": 1}

    fsets.set_mark(fs, added[0], "good")
    fsets.set_mark(fs, added[1], "bad")
    files = {a: (fs.folder / a).stat().st_mtime_ns for a in added}
    again = fsets.add_images(fs, [red, picture((0, 200, 0))], ["a red box", "green"])
    assert again[0] == added[0]
    assert len((fs.folder / "images.jsonl").read_text().splitlines()) == 4  # one new line
    assert {a: (fs.folder / a).stat().st_mtime_ns for a in added} == files  # not rewritten
    items = fs.items()
    assert [i.image for i in items] == [*added, again[1]]
    assert [i.mark for i in items] == ["good", "bad", None, None]
    assert items[0].prompt == "a red box" and items[0].seed == 1 and items[0].source == "my_ratings"
    assert items[3].seed is None and items[0].path == fs.folder / added[0]
    assert [i.image for i in fs.marked()] == added[:2]
    assert fs.counts() == {"good": 1, "bad": 1, "unmarked": 2}
    assert "4 image(s), 1 good, 1 bad, 2 unmarked" in fs.summary()


def test_marks_are_revised_and_skipped_in_the_monitors_line_format(output):
    fs = fsets.rating_set("r")
    (first,) = fsets.add_images(fs, [picture((9, 9, 9))], ["two cats"], seeds=[7])
    before = fs.fingerprint(listing=False)
    line = fsets.set_mark(fs, first, "good")
    assert list(line) == LINE_KEYS and line["prompt"] == "two cats" and line["step"] is None
    assert fs.fingerprint(listing=False) != before
    fsets.set_mark(fs, first, "bad")
    assert fs.counts()["bad"] == 1  # the latest line wins
    fsets.set_mark(fs, first, None)  # skipped: cleared
    assert fs.marked() == [] and fs.counts() == {"good": 0, "bad": 0, "unmarked": 1}
    lines = [json.loads(x) for x in (fs.folder / "feedback.jsonl").open()]
    assert [x["mark"] for x in lines] == ["good", "bad", None]
    assert all(list(x) == LINE_KEYS for x in lines)


def test_the_listing_fingerprint_follows_new_images_and_damaged_lines_are_skipped(output):
    fs = fsets.rating_set("r")
    marks_only, full = fs.fingerprint(listing=False), fs.fingerprint()
    fsets.add_images(fs, [picture((1, 2, 3))], ["p"])
    assert fs.fingerprint(listing=False) == marks_only and fs.fingerprint() != full
    with (fs.folder / "images.jsonl").open("a") as out:
        out.write('{"image": "../../secret.png", "prompt": "x"}\n{"imag\n[]\n')
    assert len(fs.items()) == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda fs, image: fsets.set_mark(fs, "images/nope.png", "good"), "not an image of"),
    (lambda fs, image: fsets.set_mark(fs, "../x.png", "good"), "not an image of"),
    (lambda fs, image: fsets.set_mark(fs, image, "great"), "mark must be"),
    (lambda fs, image: fsets.add_images(fs, [picture(0)], ["a", "b"]), "one prompt"),
    (lambda fs, image: fsets.add_images(fs, [picture(0)], ["a"], seeds=[]), "one seed"),
    (lambda fs, image: fsets.add_images(fs, ["x.png"], ["a"]), "PIL images"),
])
def test_bad_calls_are_refused_and_write_no_mark(output, call, message):
    fs = fsets.rating_set("r")
    (image,) = fsets.add_images(fs, [picture((5, 5, 5))], ["p"])
    with pytest.raises(InputError, match=message):
        call(fs, image)
    assert not (fs.folder / "feedback.jsonl").exists()
    assert len(fs.items()) == 1


@pytest.mark.parametrize(("name", "message"), [
    ("", "feedback_set is empty"), ("  ", "feedback_set is empty"),
    (None, "feedback_set is empty"), ("../x", "plain folder name"), ("a/b", "plain folder name"),
    ("x:y", "plain folder name"), (".hidden", "plain folder name"), ("写真", "no letters or digits"),
])
def test_set_names_that_are_paths_or_empty_are_refused(output, name, message):
    with pytest.raises(InputError, match=message):
        fsets.rating_set(name)
    assert not (output / "intenttuner").exists()


def test_a_missing_set_is_named_with_the_sets_there_are(output):
    with pytest.raises(InputError, match="there is none yet"):
        fsets.rating_set("nope", create=False)
    fsets.add_images(fsets.rating_set("mine"), [picture(0)], ["p"])
    with pytest.raises(InputError, match="No feedback set or training run named 'nope'.*'mine'"):
        fsets.open_feedback_set("nope")


def test_a_runs_monitor_marks_are_a_feedback_set(output):
    run_dir = run_with_samples()
    for name in ("run:demo", "demo", run_dir):  # by label, by run name, by folder
        fs = fsets.open_feedback_set(name)
        assert (fs.kind, fs.name, fs.label, fs.folder) == ("run", "demo", "run:demo", run_dir)
    items = fs.items()
    assert [(i.image, i.mark, i.seed) for i in items] == [
        (rec.image_path(10, "s0"), "good", 0), (rec.image_path(10, "c0"), None, 1)]
    assert items[0].prompt == "photo of ohwx, s0" and items[0].path.is_file()
    line = json.loads((run_dir / "feedback.jsonl").read_text().splitlines()[-1])
    assert list(line) == LINE_KEYS and line["step"] == 10  # as the monitor panel writes them
    with pytest.raises(InputError, match="rating sets only"):
        fsets.add_images(fs, [picture(0)], ["p"])
    rating = fsets.rating_set("demo")  # a rating set of the same name wins the plain name
    fsets.add_images(rating, [picture(0)], ["p"])
    assert fsets.open_feedback_set("demo").kind == "rating"
    assert fsets.open_feedback_set("run:demo").kind == "run"
    with pytest.raises(InputError, match="neither images.jsonl"):
        fsets.open_feedback_set(output)


def test_the_list_has_rating_sets_then_runs_with_marks(output):
    run_with_samples("marked")
    run_with_samples("unmarked", marks=False)
    fsets.add_images(fsets.rating_set("empty"), [], [])  # no images: not listed
    fs = fsets.rating_set("mine")
    (image,) = fsets.add_images(fs, [picture(0)], ["p"])
    fsets.set_mark(fs, image, "bad")
    listed = fsets.list_feedback_sets()
    assert [(e["name"], e["kind"]) for e in listed] == [("mine", "rating"), ("run:marked", "run")]
    assert listed[0] == {"name": "mine", "set": "mine", "kind": "rating", "images": 1,
                         "counts": {"good": 0, "bad": 1, "unmarked": 0}}
    assert listed[1]["counts"] == {"good": 1, "bad": 0, "unmarked": 1}
