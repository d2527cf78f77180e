"""``python -m intenttuner run --smoke`` on the shipped example (in-process, one run shared by
the module): the captioned training set, a LoRA that loads, the report image and JSON with both
models' stability, controllability and leakage, the monitor's curves; and every bad input
refused with its own clear message before anything is trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from intenttuner.__main__ import main
from intenttuner.cli_run import SMOKE_MODELS_FILE, build_smoke_models
from intenttuner.dataset.kohya_read import read_training_set
from intenttuner.examples import shipped_example
from intenttuner.jobs import STAGES
from intenttuner.training.lora_file import read_lora_file

pytestmark = pytest.mark.usefixtures("one_thread")
METRICS = ("stability", "controllability", "leakage")


@pytest.fixture(scope="module")
def smoke(one_thread, tmp_path_factory):
    """One smoke run: (out folder, models folder, exit code, printed output)."""
    root = tmp_path_factory.mktemp("run")
    out, models = root / "out", root / "models"
    with pytest.MonkeyPatch.context() as patch:
        printed: list[str] = []
        patch.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
        code = main(["run", "--smoke", "--out", str(out), "--models-dir", str(models),
                     "--no-progress"])
    return out, models, code, "\n".join(printed)


def test_the_smoke_run_succeeds_and_prints_both_models_scores(smoke):
    out, _, code, printed = smoke
    assert code == 0, printed
    assert "base" in printed and "milo LoRA" in printed, printed
    assert f"report: {out / 'report.png'}" in printed, printed
    record = json.loads((out / "run.json").read_text())
    assert list(record["stage_seconds"]) == list(STAGES)  # every stage ran, in order


def test_the_training_set_is_captioned_as_the_intent_says(smoke):
    out = smoke[0]
    intent = json.loads((out / "intent.json").read_text())
    trigger = intent["trigger_words"][0]
    deleted = [c["name"] for c in intent["concepts"] if c["operation"] == "delete"]
    assert trigger == "milo" and deleted == ["necklace"], intent
    training_set = read_training_set(out / "dataset")
    originals = [i for i in training_set.items if i.operation == "original"]
    assert len(originals) == len(shipped_example().training_images())
    assert len(training_set.items) > len(originals)  # the intent's crops are in the set too
    images = sorted((out / "dataset").rglob("*.png"))
    assert len(images) == len(training_set.items)
    for image in images:
        caption = image.with_suffix(".txt").read_text(encoding="utf-8").strip()
        assert caption.startswith(f"{trigger}, "), (image.name, caption)
        assert "necklace" not in caption.lower(), (image.name, caption)
    assert all(i.caption_source == "refined" for i in training_set.items)


def test_the_lora_files_load(smoke):
    out = smoke[0]
    final = out / "lora" / "milo.safetensors"
    tensors, metadata = read_lora_file(final)
    assert tensors and all(k.startswith("lora_unet_") for k in tensors), sorted(tensors)[:3]
    assert metadata  # kohya metadata: the file is what LoRA Train writes
    record = json.loads((out / "run.json").read_text())
    evaluated = Path(record["training"]["evaluated"])
    assert evaluated.parent == out / "lora" and evaluated.name == "milo_best.safetensors"
    assert read_lora_file(evaluated)[0].keys() == tensors.keys()
    assert record["training"]["steps"] == 2


def test_the_report_compares_both_models_on_every_metric(smoke):
    out = smoke[0]
    with Image.open(out / "report.png") as image:
        assert image.format == "PNG" and image.width >= 640 and image.height > 300
    runs = json.loads((out / "report.json").read_text())["runs"]
    labels = [run["label"] for run in runs]
    assert labels[0] == "base" and labels[1].startswith("milo LoRA (step "), labels
    for run in runs:
        assert sorted(run["results"]) == sorted(METRICS), run["label"]
        for metric, result in run["results"].items():
            # The example keeps the face, modifies hair and jacket and deletes the necklace:
            # each metric applies, and is a number in [0, 1].
            assert result["applicable"], (run["label"], metric, result)
            assert 0.0 <= result["score"] <= 1.0, (run["label"], metric, result)


def test_both_models_generated_every_prompt_of_the_plan(smoke):
    out = smoke[0]
    plan = json.loads((out / "generated" / "plan.json").read_text())
    ids = sorted(f"{item['id']}.png" for item in plan["items"])
    for model in ("base", "lora"):
        assert sorted(p.name for p in (out / "generated" / model).iterdir()) == ids, model


def test_the_curves_show_the_monitor_points(smoke):
    out = smoke[0]
    with Image.open(out / "curves.png") as image:
        assert image.format == "PNG" and image.size[0] >= 480
    record = json.loads((out / "run.json").read_text())
    assert record["training"]["best"]["step"] in (1, 2)  # the monitor scored steps 1 and 2
    metrics = (out / "lora" / "milo" / "metrics.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in metrics if '"sample"' in line]
    assert [s["step"] for s in samples] == [1, 2], samples


def test_a_second_run_into_the_same_folder_is_refused_and_changes_nothing(smoke, capsys):
    out = smoke[0]
    before = (out / "report.json").stat().st_mtime_ns
    assert main(["run", "--smoke", "--out", str(out), "--no-progress",
                 "--models-dir", str(smoke[1])]) == 1
    error = capsys.readouterr().err
    assert "already holds the results of a run" in error and "--overwrite" in error, error
    assert (out / "report.json").stat().st_mtime_ns == before


def test_the_smoke_models_are_reused(smoke, monkeypatch):
    models = smoke[1]
    recorded = json.loads((models / SMOKE_MODELS_FILE).read_text())

    def no_build(folder):
        raise AssertionError("a tiny model was built again")

    from intenttuner import tiny

    monkeypatch.setattr(tiny, "TINY_BUILDERS", {name: no_build for name in tiny.TINY_BUILDERS})
    choices = build_smoke_models(models)
    assert (choices.detector, choices.base_model) == (recorded["detector"],
                                                      recorded["base_model"])


@pytest.mark.parametrize(("arguments", "message"), [
    (["--images", "{tmp}/missing", "--intent", "Keep his face."],
     "The training images folder {tmp}/missing does not exist"),
    (["--images", "{tmp}/empty", "--intent", "Keep his face."], "holds no files"),
    (["--images", "{tmp}/notes", "--intent", "Keep his face."], "No usable image in"),
    (["--images", "{example}", "--intent", "{tmp}/missing.txt"],
     "The intent file {tmp}/missing.txt was not found"),
    (["--images", "{example}", "--intent", "{tmp}/blank.txt"], "The intent is empty"),
    (["--images", "{example}"], "--images needs --intent too"),
    (["--boxes", "[[1, 2, 3]]"], "The reference boxes are not valid"),
    (["--boxes", "{tmp}/boxes.json"], "The boxes file {tmp}/boxes.json was not found"),
    (["--boxes", '[{"image": 1, "box": [0, 0, 20, 20]}]'],
     "Reference box [1] is drawn on reference image 2"),
    (["--references", "{tmp}/ref.png"], "The reference image {tmp}/ref.png does not exist"),
    (["--intent", "Hello there."], "could not be turned into keep / change / remove"),
    (["--set", "detect.box_threshold=2"], "detect settings: box_threshold must be between"),
    (["--set", "train.rank=abc"], "training setting rank"),
    (["--set", "train.training_set=x"], "train.training_set is set by the pipeline"),
])
def test_bad_inputs_are_refused_with_a_clear_message(models_root, tmp_path, capsys, arguments,
                                                    message):
    """Each refused before any model loads (models_root is empty and downloads are off, so a
    run that got further would fail with another message)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.png").write_bytes(b"not an image")
    (tmp_path / "blank.txt").write_text("  \n")

    def filled(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace(
            "{example}", str(shipped_example().images))

    out = tmp_path / "out"
    code = main(["run", "--out", str(out), "--no-progress", *map(filled, arguments)])
    error = capsys.readouterr().err
    assert code == 1, error
    assert filled(message) in error, error
    assert not out.exists()  # refused before anything was written
