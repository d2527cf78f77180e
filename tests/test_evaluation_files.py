"""The evaluation on disk (intenttuner/evaluation/files.py): images paired with plan items by
file name, never by order and never dropping one; plans and results written without
overwriting anything."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from intenttuner.errors import InputError
from intenttuner.evaluation.evaluate import EvalModels, evaluate
from intenttuner.evaluation.files import (
    load_generated,
    load_plan,
    output_folder,
    pair_names,
    save_plan,
    write_results,
)
from intenttuner.evaluation.prompts import PlanSettings, build_plan
from intenttuner.evaluation.types import EvalItem, EvalPlan, EvalScores, Test
from tests.evaluation_helpers import ColourClip, MarkerDetector, MeanColourEncoder, intent, noise

VINCENT = ("trigger: vin. Keep his face [1]. His hair colour should switch between red hair and "
           "blue hair. Never a necklace.")


def plan_of(*ids: str) -> EvalPlan:
    items = [EvalItem(id=i, test=Test(i.split("-")[0]), prompt=f"prompt {i}", seed=n)
             for n, i in enumerate(ids)]
    return EvalPlan(intent_fingerprint="x", trigger="vin", items=items)


@pytest.fixture
def vincent():
    return intent(VINCENT, [("red", (10, 10, 50, 50))])


@pytest.fixture
def plan(vincent):
    return build_plan(vincent, PlanSettings(prompts_per_test=1, images_per_prompt=1))


def test_names_pair_with_the_id_they_start_with():
    plan = plan_of("stability-000", "stability-001", "leakage-000")
    names = ["stability-000.png", "stability-001_00001_.png", "stability-001_00002_.png",
             "leakage-000-seed7.jpg"]
    assert pair_names(plan, names) == {
        "stability-000": ["stability-000.png"],
        "stability-001": ["stability-001_00001_.png", "stability-001_00002_.png"],
        "leakage-000": ["leakage-000-seed7.jpg"]}


def test_an_id_that_begins_another_never_takes_its_files():
    plan = plan_of("stability-100", "stability-1000")
    assert pair_names(plan, ["stability-1000_00001_.png", "stability-100.png"]) == {
        "stability-100": ["stability-100.png"], "stability-1000": ["stability-1000_00001_.png"]}


def test_every_stray_file_and_every_item_without_an_image_is_named():
    plan = plan_of("stability-000", "stability-001", "leakage-000")
    with pytest.raises(InputError) as error:
        pair_names(plan, ["stability-000.png", "stability-0001.png", "portrait.png"])
    message = str(error.value)
    assert "2 file(s) name no plan item: stability-0001.png, portrait.png" in message
    assert "2 plan item(s) have no image: stability-001, leakage-000" in message
    assert "stability-000_00001_.png" in message  # says how to name them


def test_a_plan_without_items_pairs_nothing():
    with pytest.raises(InputError, match="has no items"):
        pair_names(plan_of(), ["stability-000.png"])


def test_the_folder_is_read_in_plan_order_whatever_the_file_order(tmp_path, plan):
    sizes = {}
    for n, item in enumerate(reversed(plan.items)):  # written in reverse, sizes differ
        sizes[item.id] = (40 + n, 30 + 2 * n)
        noise(*sizes[item.id], seed=n).save(tmp_path / f"{item.id}_00001_.png")
    noise(20, 20).save(tmp_path / f"{plan.items[0].id}_00002_.png")  # a second image
    (tmp_path / f"{plan.items[0].id}.txt").write_text("a caption: not an image, not counted")
    noise(8, 8).save(tmp_path / ".hidden.png")
    generated = load_generated(plan, tmp_path)
    assert [(g.item.id, g.index) for g in generated] == (
        [(plan.items[0].id, 0), (plan.items[0].id, 1)]
        + [(item.id, n + 1) for n, item in enumerate(plan.items) if n > 0])
    assert [g.image.size for g in generated[2:]] == [sizes[i.id] for i in plan.items[1:]]
    assert generated[1].image.size == (20, 20) and all(g.image.mode == "RGB" for g in generated)


def test_folders_that_cannot_be_scored_are_refused(tmp_path, plan):
    with pytest.raises(InputError, match="is not a folder"):
        load_generated(plan, tmp_path / "missing")
    with pytest.raises(InputError, match=r"holds no images.*\(stability-000\.png\)"):
        load_generated(plan, tmp_path)
    for item in plan.items:
        noise(16, 16).save(tmp_path / f"{item.id}.png")
    (tmp_path / f"{plan.items[1].id}_00002_.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=rf"{plan.items[1].id}_00002_\.png cannot be scored"):
        load_generated(plan, tmp_path)


def test_a_plan_round_trips_and_is_never_overwritten(tmp_path, plan):
    path = save_plan(plan, tmp_path / "plan.json")
    assert load_plan(path) == plan
    with pytest.raises(InputError, match="already exists"):
        save_plan(plan, path)
    assert load_plan(path) == plan
    with pytest.raises(InputError, match="No evaluation plan at"):
        load_plan(tmp_path / "other.json")


def test_the_default_output_folder_is_new_and_a_used_one_is_refused(tmp_path):
    images = tmp_path / "renders"
    images.mkdir()
    assert output_folder(None, images) == tmp_path / "renders-evaluation"
    (tmp_path / "renders-evaluation").mkdir()
    assert output_folder(None, images) == tmp_path / "renders-evaluation_00002"
    assert not (tmp_path / "renders-evaluation_00002").exists()  # nothing made before writing
    chosen = tmp_path / "chosen"
    assert output_folder(chosen, images) == chosen
    chosen.mkdir()
    assert output_folder(chosen, images) == chosen  # empty: fine
    (chosen / "old.txt").write_text("someone's")
    with pytest.raises(InputError, match="already holds files"):
        output_folder(chosen, images)
    with pytest.raises(InputError, match="is a file"):
        output_folder(chosen / "old.txt", images)


def test_results_are_written_as_new_files(tmp_path, vincent, plan):
    generated = load_generated(plan, _write_plan_images(tmp_path / "renders", plan))
    models = EvalModels(detector=MarkerDetector(), identity_encoder=MeanColourEncoder(),
                        clip=ColourClip())
    scores = evaluate(generated, vincent, models, label="lora")
    out = tmp_path / "out"
    paths = write_results(out, generated, scores)
    assert [p.name for p in paths] == ["scores.json", "report.png", "stability.png",
                                       "controllability.png", "leakage.png"]
    assert EvalScores.model_validate_json((out / "scores.json").read_text()) == scores
    assert json.loads((out / "scores.json").read_text())["results"]["stability"]["records"]
    for path in paths[1:]:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 640
    before = (out / "scores.json").read_bytes()
    with pytest.raises(InputError, match="appeared while the results were written"):
        write_results(out, generated, scores.model_copy(update={"label": "other"}))
    assert (out / "scores.json").read_bytes() == before


def _write_plan_images(folder, plan):
    folder.mkdir()
    for n, item in enumerate(plan.items):
        Image.new("RGB", (64, 64), (200, 10 * n, 30)).save(folder / f"{item.id}.png")
    return folder
