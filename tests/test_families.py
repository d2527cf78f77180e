"""What every model family must do, checked across the registry: its tiny model goes through the
real resolution + loading path and runs; a file of another family, or a truncated file, gets a
clear error instead of a traceback from inside a library."""

from __future__ import annotations

import re
import shutil

import pytest

from intenttuner import loading
from intenttuner.errors import WeightsCorruptError, WrongModelFamilyError
from intenttuner.families import FAMILIES
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny.detector import make_tiny_detector_original

# Families whose tiny model is one file, and how to write it.
SINGLE_FILE_BUILDERS = {
    "detector": make_tiny_detector_original,
    "segmenter": TINY_BUILDERS["segmenter"],
    "image_encoder": TINY_BUILDERS["image_encoder"],
    "base_model": TINY_BUILDERS["base_model"],
    "inpainter": TINY_BUILDERS["inpainter"],
    "aesthetic": TINY_BUILDERS["aesthetic"],
    "reward_model": TINY_BUILDERS["reward_model"],
}


# What each family's exercise must report for its tiny model: outputs that the synthetic inputs
# call for (a family added to the registry needs an entry here).
EXERCISE_REPORTS = {
    # thresholds 0: at least one box, with its score
    "detector": r"[1-9]\d* boxes for 2 phrases on a 96x64 image \(hf, best score [01]\.\d\d\)",
    "segmenter": r"2 masks 64x48 \(custom\)",  # one mask per box, at the image's size
    "image_encoder": r".+: image \(1, (\d+)\), texts \(2, \1\)",  # one embedding width
    "captioner": r"caption (['\"]).+\1",  # some words, not an empty caption
    "base_model": r"sd15 image 64x64 \(2 steps, torch\.\w+\)",
    # random weights still fill: LaMa's output replaces every masked pixel
    "inpainter": r"LaMa filled 384 of 384 masked px of a 64x48 image \(torch\.float32\)",
    # a random model writes words until the limit: some text, never an empty answer
    "local_llm": r"answer (['\"]).+\1 \(8 new tokens at most\)",
    "identity_encoder": r"tiny-dino: image \(1, 32\), CLS of a 32x32 crop",
    # the tiny MLP's last bias is 5 (mid-scale), its random weights spread the scores around it
    "aesthetic": r"tiny-aesthetic: 4 scores of 32-value embeddings, \d\.\d\d to \d\.\d\d",
    # the paper's beam search; a random model writes words until the limit
    "prompt_adapter": r"rewrite (['\"]).+\1 of 'a cat' \(2 beams, 8 new tokens at most\)",
    # random weights: probabilities strictly between 0 and 1
    "reward_model": (r"tiny-reward: 4 pairs of 32-value embeddings, "
                     r"P\(good\) 0\.\d\d to [01]\.\d\d"),
}


def test_every_family_has_a_tiny_builder_and_no_builder_lacks_a_family():
    assert sorted(TINY_BUILDERS) == sorted(FAMILIES)


@pytest.fixture(scope="module")
def single_files(tmp_path_factory):
    """One tiny single-file model per family, built once for the module."""
    folder = tmp_path_factory.mktemp("tiny-files")
    return {name: build(folder / name) for name, build in SINGLE_FILE_BUILDERS.items()}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_tiny_model_loads_through_the_registry_once_and_runs(models_root, name):
    family = FAMILIES[name]
    folder = models_root / family.folder
    path = TINY_BUILDERS[name](folder)
    widget = path.relative_to(folder).as_posix()

    assert widget in loading.model_choices(name)
    model = loading.load_model(name, widget)
    assert loading.load_model(name, widget) is model  # loaded once, shared
    report = family.exercise(model)
    assert re.fullmatch(EXERCISE_REPORTS[name], report), report


@pytest.mark.parametrize(("victim", "intruder"), [
    (v, i) for v in FAMILIES for i in SINGLE_FILE_BUILDERS if v != i])
def test_file_of_another_family_is_refused(models_root, single_files, victim, intruder):
    family = FAMILIES[victim]
    dest = models_root / family.folder / single_files[intruder].name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(single_files[intruder], dest)

    with pytest.raises(WrongModelFamilyError) as info:
        family.load(dest)

    message = str(info.value)
    assert str(dest) in message
    if victim != "captioner":  # captioners are folders: told so instead
        assert f"models/{FAMILIES[intruder].folder}" in message


@pytest.mark.parametrize("name", list(SINGLE_FILE_BUILDERS))
def test_truncated_file_is_reported_corrupt(models_root, single_files, name):
    family = FAMILIES[name]
    dest = models_root / family.folder / single_files[name].name
    dest.parent.mkdir(parents=True, exist_ok=True)
    data = single_files[name].read_bytes()
    dest.write_bytes(data[: len(data) // 2])

    with pytest.raises(WeightsCorruptError, match="truncated or corrupt"):
        family.load(dest)
