"""``python -m intenttuner eval-prompts`` and ``evaluate``: a plan from an intent file, then the
images generated from it scored from a folder with the tiny random models of every family the
metrics use (written by TINY_BUILDERS, loaded by name through the real loading path). The
command's scores are the library's own on the same images; files that do not fit the plan are
named, never dropped."""

from __future__ import annotations

import pytest
from PIL import Image

from intenttuner.__main__ import main
from intenttuner.evaluation.evaluate import EvalModels, evaluate
from intenttuner.evaluation.files import load_plan
from intenttuner.evaluation.pairing import pair_images
from intenttuner.evaluation.prompts import PlanSettings, build_plan
from intenttuner.evaluation.types import EvalScores
from intenttuner.families import FAMILIES
from intenttuner.families.aesthetic import AestheticScorer
from intenttuner.intent.schema import Intent
from intenttuner.loading import load_model
from intenttuner.tiny import TINY_BUILDERS
from tests.evaluation_helpers import draw, intent, noise

VINCENT = ("trigger: vin. Keep his face [1]. His hair colour should switch between red hair and "
           "blue hair. Never a necklace.")
FAMILY_FLAGS = {"detector": "--detector", "identity_encoder": "--identity-encoder",
                "image_encoder": "--clip", "aesthetic": "--quality"}
OUTPUTS = ["scores.json", "report.png", "stability.png", "controllability.png", "leakage.png"]


@pytest.fixture
def tiny_names(models_root):
    """Family -> the name its loader lists for the tiny model written into ``models_root``."""
    names = {}
    for family in FAMILY_FLAGS:
        folder = models_root / FAMILIES[family].folder
        names[family] = TINY_BUILDERS[family](folder).relative_to(folder).as_posix()
    return names


@pytest.fixture
def setup(tmp_path, tiny_names, capsys):
    """An intent file, the plan eval-prompts wrote for it and a folder of one image per item
    (two for the first), named as ComfyUI's Save Image names them with the id as prefix (the
    tiny models are written first, so what is captured afterwards is the commands' alone)."""
    the_intent = intent(VINCENT, [(noise(40, 40, seed=9), (10, 10, 50, 50))])
    intent_path = tmp_path / "intent.json"
    the_intent.save(intent_path)
    plan_path = tmp_path / "plan.json"
    code, out, err = run(capsys, "eval-prompts", intent_path, "--out", plan_path,
                         "--prompts-per-test", 1, "--images-per-prompt", 2, "--seed", 5)
    assert code == 0, err
    plan = load_plan(plan_path)
    images = tmp_path / "renders"
    images.mkdir()
    for n, item in enumerate(plan.items):
        picture = draw(noise(64 + 8 * (n % 2), 64, seed=n), "face", (10, 10, 50, 50),
                       the_intent.references[0].crop())
        picture.save(images / f"{item.id}_00001_.png")
    noise(48, 48, seed=99).save(images / f"{plan.items[0].id}_00002_.png")
    return {"intent": intent_path, "plan": plan_path, "images": images, "printed": out,
            "tmp": tmp_path}


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def evaluate_args(setup, models_root, tiny_names, *extra) -> list:
    args = ["evaluate", "--plan", setup["plan"], "--intent", setup["intent"],
            "--images", setup["images"], "--models-dir", models_root]
    for family, flag in FAMILY_FLAGS.items():
        args += [flag, tiny_names[family]]
    return [*args, *extra]


def test_eval_prompts_writes_the_plan_and_prints_every_item(setup):
    the_intent = Intent.load(setup["intent"])
    plan = load_plan(setup["plan"])
    assert plan == build_plan(the_intent, PlanSettings(prompts_per_test=1, images_per_prompt=2,
                                                       seed=5))
    for item in plan.items:
        assert f"{item.id}  seed {item.seed}  {item.prompt}" in setup["printed"]
    assert f"plan: {setup['plan']} ({len(plan.items)} images)" in setup["printed"]


def test_eval_prompts_never_overwrites_a_plan(setup, capsys):
    before = setup["plan"].read_text()
    code, out, err = run(capsys, "eval-prompts", setup["intent"], "--out", setup["plan"])
    assert code == 1 and out == "" and "already exists" in err
    assert setup["plan"].read_text() == before
    code, _, err = run(capsys, "eval-prompts", setup["intent"], "--out", setup["tmp"] / "p.json",
                       "--prompts-per-test", 0)
    assert code == 1 and "prompts_per_test" in err


def test_evaluate_scores_the_folder_as_the_library_scores_the_images(setup, models_root,
                                                                      tiny_names, capsys):
    code, out, err = run(capsys, *evaluate_args(setup, models_root, tiny_names))
    assert code == 0, err
    folder = setup["tmp"] / "renders-evaluation"
    assert sorted(p.name for p in folder.iterdir()) == sorted(OUTPUTS)
    scores = EvalScores.model_validate_json((folder / "scores.json").read_text())

    # The same images, paired by position, through the library with the same models.
    plan = load_plan(setup["plan"])
    batches = [sorted(setup["images"].glob(f"{item.id}_*.png")) for item in plan.items]
    generated = pair_images(plan, [[Image.open(p).convert("RGB") for p in b] for b in batches])
    clip = load_model("image_encoder", tiny_names["image_encoder"])
    models = EvalModels(detector=load_model("detector", tiny_names["detector"]),
                        identity_encoder=load_model("identity_encoder",
                                                    tiny_names["identity_encoder"]),
                        clip=clip,
                        quality=AestheticScorer(load_model("aesthetic", tiny_names["aesthetic"]),
                                                clip))
    expected = evaluate(generated, Intent.load(setup["intent"]), models, label="renders")
    assert scores == expected
    assert scores.results["stability"].parts["quality"] is not None  # the tiny scorer ran

    assert f"renders: {len(plan.items) + 1} images" in out  # two images for the first item
    for title in ("Stability", "Controllability", "Delete leakage (lower is better)"):
        assert f"  {title}" in out
    assert f"results: {folder} ({', '.join(OUTPUTS)})" in out

    # Again: a new numbered folder, the first left as it was.
    code, out, err = run(capsys, *evaluate_args(setup, models_root, tiny_names,
                                                "--quality", "none", "--label", "no-quality"))
    assert code == 0, err
    again = EvalScores.model_validate_json(
        (setup["tmp"] / "renders-evaluation_00002" / "scores.json").read_text())
    assert again.label == "no-quality" and again.results["stability"].parts["quality"] is None
    assert EvalScores.model_validate_json((folder / "scores.json").read_text()) == scores


def test_a_quality_predictor_without_its_clip_is_named(setup, models_root, tiny_names, capsys):
    from intenttuner.tiny.aesthetic import make_tiny

    folder = models_root / FAMILIES["aesthetic"].folder / "narrow"
    make_tiny(folder, input_dim=16).rename(folder.parent / "narrow.pth")  # the tiny CLIP has 32
    code, _, err = run(capsys, *evaluate_args(setup, models_root, tiny_names,
                                              "--quality", "narrow.pth"))
    assert code == 1
    assert "Which CLIP encoder feeds the quality predictor narrow.pth?" in err
    assert "--quality-clip" in err
    code, _, err = run(capsys, *evaluate_args(setup, models_root, tiny_names, "--quality",
                                              "narrow.pth", "--quality-clip",
                                              tiny_names["image_encoder"]))
    assert code == 1 and "(16 values)" in err and "gives 32" in err


def test_files_that_do_not_fit_the_plan_are_listed(setup, models_root, tiny_names, capsys):
    plan = load_plan(setup["plan"])
    (setup["images"] / f"{plan.items[-1].id}_00001_.png").unlink()
    (setup["images"] / "portrait.png").write_bytes(b"")
    code, out, err = run(capsys, *evaluate_args(setup, models_root, tiny_names))
    assert code == 1 and out == ""
    assert err.startswith(f"error: The images do not fit the {len(plan.items)} items of the "
                          "evaluation plan")
    assert "1 file(s) name no plan item: portrait.png" in err
    assert f"1 plan item(s) have no image: {plan.items[-1].id}" in err
    assert not (setup["tmp"] / "renders-evaluation").exists()


def test_bad_inputs_are_named_before_anything_is_scored(setup, models_root, tiny_names,
                                                        capsys):
    used = setup["tmp"] / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, *evaluate_args(setup, models_root, tiny_names, "--out", used))
    assert code == 1 and "already holds files" in err
    assert [p.name for p in used.iterdir()] == ["notes.txt"]

    other = setup["tmp"] / "other.json"
    intent("trigger: bob. Keep his face [1].", [("red", (10, 10, 50, 50))]).save(other)
    args = evaluate_args(setup, models_root, tiny_names)
    args[args.index(setup["intent"])] = other
    code, _, err = run(capsys, *args)
    assert code == 1 and "The plan was made for another intent" in err

    args[args.index(other)] = setup["tmp"] / "missing.json"
    code, _, err = run(capsys, *args)
    assert code == 1 and "No intent JSON at" in err

    code, _, err = run(capsys, *evaluate_args(setup, models_root, tiny_names, "--detector",
                                              "no-such-detector"))
    assert code == 1 and "no-such-detector" in err
    assert not (setup["tmp"] / "renders-evaluation").exists()


def test_reference_images_the_folder_leaves_out_are_named(setup, models_root, tiny_names,
                                                         capsys):
    """--reference-images (the training images) adds references; a file it cannot read is
    reported on stderr, not silently left out of them."""
    references = setup["tmp"] / "training"
    references.mkdir()
    noise(160, 128, seed=3).save(references / "vin 1.png")
    (references / "broken.png").write_bytes(b"not an image")
    code, _, err = run(capsys, *evaluate_args(setup, models_root, tiny_names,
                                              "--reference-images", references))
    assert code == 0, err
    assert "1 of 2 loaded" in err and "broken.png" in err, err


def test_a_folder_taken_while_scoring_gets_the_next_number(setup, models_root, tiny_names,
                                                           capsys, monkeypatch):
    """The numbered output folder is picked when the results are ready: a run that took
    ``renders-evaluation`` meanwhile keeps it, and these results go to ``_00002``."""
    import intenttuner.evaluation.evaluate as evaluate_module

    taken = setup["tmp"] / "renders-evaluation"
    real = evaluate_module.evaluate

    def evaluate_while_another_run_writes(*args, **kwargs):
        taken.mkdir()
        (taken / "scores.json").write_text("another run's")
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", evaluate_while_another_run_writes)
    code, out, err = run(capsys, *evaluate_args(setup, models_root, tiny_names))
    assert code == 0, err
    assert (taken / "scores.json").read_text() == "another run's"
    assert (setup["tmp"] / "renders-evaluation_00002" / "scores.json").is_file()
