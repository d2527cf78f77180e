"""The intent schema: JSON round trip, validation messages, reference boxes, edits."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from PIL import Image

from intenttuner.errors import InputError
from intenttuner.intent.offline import parse_offline
from intenttuner.intent.preview import render_preview, summary
from intenttuner.intent.references import build_references, parse_boxes
from intenttuner.intent.schema import Intent, IntentFileExistsError
from intenttuner.intent.store import apply_edits, merge_patch

IMAGES = [Image.new("RGB", (100, 60), (10, 20, 30)), Image.new("RGB", (50, 80), (200, 0, 0))]


def intent_with_refs() -> Intent:
    refs = build_references(IMAGES, parse_boxes(
        '[{"image": 0, "box": [10, 5, 60, 50], "label": "jacket"}, {"image": 1, "box": [0, 0, 50, 80]}]'))
    return parse_offline("trigger: vin. Keep the jacket [1]. The hat [2] should be removed. "
                         "Hair colour adjustable.", refs)


def test_json_round_trip_keeps_everything_including_crops():
    intent = intent_with_refs()
    again = Intent.from_json(intent.to_json())
    assert again == intent
    assert again.reference(1).crop().size == (50, 45)
    assert again.reference(2).crop().getpixel((0, 0)) == (200, 0, 0)


def test_saving_without_crops_drops_only_the_crops():
    full = json.loads(intent_with_refs().to_json())
    data = json.loads(intent_with_refs().to_json(with_crops=False))
    assert all(r.pop("crop_png") for r in full["references"])  # the crops were there...
    assert data == full  # ...and are all that is missing
    assert Intent.from_data(data).reference(1).crop() is None


def noisy_intent() -> Intent:
    """Reference crops of random noise: large PNGs, so any leak of pixel data shows."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)),
              Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8))]
    refs = build_references(images, parse_boxes(
        '[{"image": 0, "box": [0, 0, 380, 290], "label": "face"}, '
        '{"image": 1, "box": [10, 10, 190, 190], "label": "jacket"}]'))
    return parse_offline("trigger: vin. Keep his face [1]. The jacket can change between "
                         "the leather jacket [2] and a raincoat.", refs)


def _strings(data) -> list[str]:
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return [data] if isinstance(data, str) else []


def _is_png_base64(text: str) -> bool:
    try:
        return base64.b64decode(text, validate=True).startswith(b"\x89PNG")
    except ValueError:
        return False


def test_public_export_has_no_pixel_data():
    intent = noisy_intent()
    full = intent.to_json()
    public = intent.public_json()

    assert len(full) > 100_000  # the crops are big...
    assert len(public) < 3_000  # ...and none of them is in the export
    assert "crop_png" not in public and "iVBORw0KGgo" not in public  # PNG's base64 signature
    assert not re.search(r"[A-Za-z0-9+/]{100,}", public)  # no base64 run of any kind
    strings = _strings(json.loads(public))
    assert not any(_is_png_base64(s) for s in strings)
    assert any(_is_png_base64(s) for s in _strings(json.loads(full)))  # the check can fire
    assert json.loads(public) == intent.public_dict()


def test_public_export_keeps_everything_else_and_loads_back():
    intent = noisy_intent()
    exported = intent.public_dict()

    assert [(r["index"], r["image"], r["box"], r["label"]) for r in exported["references"]] == [
        (1, 0, [0.0, 0.0, 380.0, 290.0], "face"), (2, 1, [10.0, 10.0, 190.0, 190.0], "jacket")]
    assert exported["trigger_words"] == ["vin"]
    assert [(c["name"], c["operation"]) for c in exported["concepts"]] == [
        ("face", "keep"), ("jacket", "modify")]

    again = Intent.from_json(intent.public_json(), what="LoRA metadata")
    expected = intent.model_copy(deep=True)
    for ref in expected.references:
        ref.crop_png = None
    assert again == expected
    assert again.missing_crops() == [1, 2] and intent.missing_crops() == []
    assert again.reference(1).crop() is None
    assert again.public_json() == intent.public_json()


def test_intent_without_crops_is_a_stated_state_not_a_crash():
    again = Intent.from_json(noisy_intent().public_json())
    text = summary(again)
    assert "reference box(es) [1], [2] have no crop" in text
    assert "re-run Intent Parse with the reference images" in text
    assert render_preview(again).size[0] == 768
    assert "have no crop" not in summary(noisy_intent())


def test_save_never_overwrites_an_existing_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text("precious", encoding="utf-8")
    with pytest.raises(IntentFileExistsError, match=f"{re.escape(str(path))} already exists.*"
                                                    "never overwrites.*another file name"):
        intent_with_refs().save(path)
    assert path.read_text(encoding="utf-8") == "precious"
    assert issubclass(IntentFileExistsError, InputError)


def test_save_and_load_round_trip_with_and_without_crops(tmp_path):
    intent = intent_with_refs()
    intent.save(tmp_path / "full.json")
    intent.save(tmp_path / "public.json", with_crops=False)
    assert Intent.load(tmp_path / "full.json") == intent
    assert Intent.load(tmp_path / "public.json").missing_crops() == [1, 2]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(schema_version=2), "schema_version 2"),
    (lambda d: d.update(trigger_words=[]), "trigger_words"),
    (lambda d: d.update(trigger_words=["a, b"]), "no commas"),
    (lambda d: d["concepts"][0].update(operation="destroy"), "concepts.0.operation"),
    (lambda d: d["concepts"][0].update(colour="red"), "concepts.0.colour"),
    (lambda d: d["concepts"][0].update(references=[7]), r"refers to \[7\]"),
    (lambda d: d["concepts"].append(dict(d["concepts"][0], operation="delete")),
     "'jacket' is both keep"),
    (lambda d: d["concepts"][2].update(values=d["concepts"][2]["values"][:1]),
     "at least two values"),
    (lambda d: d["concepts"][0].update(values=[{"text": "a", "references": []},
                                               {"text": "b", "references": []}]),
     "only modify concepts have values"),
    (lambda d: d["references"].reverse(), "numbered 1..2 in order"),
    (lambda d: d["references"][0].update(box=[900, 900, 910, 910]), "lies outside its image"),
    (lambda d: d["references"][0].update(box=[5, 5, float("nan"), 9]), "must be finite"),
    (lambda d: d["references"][0].update(box=[50, 5, 10, 9]), "x1 < x2"),
    (lambda d: d["references"][0].update(image_size=[-3, 0]), "must be positive"),
    (lambda d: d["concepts"][0].update(name="   "), "must not be empty or blank"),
    (lambda d: d["concepts"][0].update(phrase="\t"), "must not be empty or blank"),
    (lambda d: d["concepts"][2]["values"][0].update(text=" "), "must not be empty or blank"),
])
def test_invalid_intents_are_refused_with_the_field_named(change, message):
    data = json.loads(intent_with_refs().to_json())
    change(data)
    with pytest.raises(InputError, match=message):
        Intent.from_data(data)


def test_damaged_crop_is_a_clear_error():
    data = json.loads(intent_with_refs().to_json())
    data["references"][0]["crop_png"] = "not base64 at all!"
    with pytest.raises(InputError, match=r"crop of reference box \[1\] in this intent is damaged"):
        Intent.from_data(data).reference(1).crop()


def test_not_json_is_refused():
    with pytest.raises(InputError, match="not valid JSON"):
        Intent.from_json("{oops")


@pytest.mark.parametrize(("text", "expected"), [
    ("", []),
    ("[]", []),
    ('[{"image": 1, "box": [1, 2, 30, 40], "label": "hat"}]', [(1, (1, 2, 30, 40), "hat")]),
    ("[[[1, 2, 30, 40]], [[5, 5, 9, 9], [0, 0, 4, 4]]]",
     [(0, (1, 2, 30, 40), ""), (1, (5, 5, 9, 9), ""), (1, (0, 0, 4, 4), "")]),
    ("[[1, 2, 30, 40], [3, 3, 8, 8]]", [(0, (1, 2, 30, 40), ""), (0, (3, 3, 8, 8), "")]),
])
def test_box_formats(text, expected):
    assert [(b.image, b.box, b.label) for b in parse_boxes(text)] == expected


@pytest.mark.parametrize(("text", "message"), [
    ("{oops", "not valid JSON"),
    ('{"box": [1, 2, 3, 4]}', "must be a JSON list"),
    ('[{"image": 0, "box": [1, 2, 3]}]', r"box \[1\] must be four numbers"),
    ('[{"image": -1, "box": [1, 2, 3, 4]}]', r"box \[1\]: 'image' must be a 0-based"),
    ('[{"image": 5, "box": [1, 2, 30, 40]}]', r"box \[1\] is drawn on reference image 6, but only 2"),
    ('[{"image": 0, "box": [50, 5, 10, 40]}]', "corners swapped"),
    ('[{"image": 0, "box": [10, 5, 150, 40]}]', r"box \[1\] \(10, 5, 150, 40\) on a 100x60 image "
                                                 "lies \\(partly\\) outside"),
    ('[{"image": 0, "box": [10, 5, 10.5, 40]}]', "zero area"),
])
def test_bad_boxes_get_clear_errors(text, message):
    with pytest.raises(InputError, match=message):
        build_references(IMAGES, parse_boxes(text))


def test_box_drawn_a_pixel_past_the_edge_is_clamped():
    (ref,) = build_references(IMAGES, parse_boxes('[{"image": 0, "box": [-0.5, 0, 100.8, 60]}]'))
    assert ref.box == (0.0, 0.0, 100.0, 60.0)


def test_boxes_without_images_are_refused():
    with pytest.raises(InputError, match="no reference images are connected"):
        build_references([], parse_boxes("[[1, 2, 30, 40]]"))


def test_greyscale_and_rgba_reference_images_crop_as_rgb():
    grey = Image.new("L", (20, 20), 128)
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))  # fully transparent → white
    refs = build_references([grey, rgba], parse_boxes("[[[0, 0, 10, 10]], [[0, 0, 10, 10]]]"))
    assert refs[0].crop().getpixel((0, 0)) == (128, 128, 128)
    assert refs[1].crop().getpixel((0, 0)) == (255, 255, 255)


def test_edits_change_remove_and_add_concepts():
    intent = intent_with_refs()
    edited = apply_edits(intent, json.dumps({
        "trigger_words": ["vncnt"],
        "concepts": {"hat": None,
                     "hair colour": {"values": [{"text": "red hair", "references": []},
                                                {"text": "grey hair", "references": []}]},
                     "scar": {"phrase": "scar", "granularity": "instance",
                              "operation": "keep"}}}))
    assert edited.trigger_words == ["vncnt"]
    assert [c.name for c in edited.concepts] == ["jacket", "hair colour", "scar"]
    assert [v.text for v in edited.concepts[1].values] == ["red hair", "grey hair"]
    assert intent.trigger_words == ["vin"]  # the input intent is not modified


@pytest.mark.parametrize(("edits", "message"), [
    ("{nope", "not valid JSON"),
    ("[1]", "must be a JSON object"),
    ('{"concepts": {"moustache": null}}', r"remove concept\(s\) \['moustache'\]"),
    ('{"concepts": {"jacket": {"operation": "explode"}}}', "concepts.0.operation"),
    ('{"domain": "space opera"}', "domain"),
    ('{"concepts": {"jacket": "keep"}}', "must be an object of fields to change"),
    ('{"concepts": {"jacket": [1, 2]}}', "must be an object of fields to change"),
])
def test_bad_edits_are_refused(edits, message):
    with pytest.raises(InputError, match=message):
        apply_edits(intent_with_refs(), edits)


def test_merge_patch_follows_rfc7386():
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]},
                       {"a": None, "b": {"c": 5}, "e": [2], "f": "x"}) == \
        {"b": {"c": 5, "d": 3}, "e": [2], "f": "x"}
