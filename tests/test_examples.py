"""The shipped example (examples/milo): what the script draws, what the pictures show, the
intent the offline parser reads from it, and its installation into ComfyUI's input folder."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from intenttuner.examples import (
    INSTALLED_REFERENCE,
    INSTALLED_TRAIN,
    install_examples,
    shipped_example,
)
from intenttuner.examples.characters import GEM, HAIR, JACKETS, SKIN, Look
from intenttuner.examples.characters import draw_picture as draw
from intenttuner.examples.write import pose as example_pose
from intenttuner.examples.write import scenery as example_scenery
from intenttuner.imageio import pils_to_batch
from tests.conftest import PACK_DIR

EXAMPLE = shipped_example()
SIZE = 512
NEAR = 24.0  # colour distance still counted as a drawn colour (antialiased edges are not)
EDGE = 6  # px: how loose a tight box may be


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def near(array: np.ndarray, *colours) -> np.ndarray:
    """Mask of the pixels within `NEAR` of one of ``colours``."""
    return np.any([np.linalg.norm(array - np.asarray(c), axis=-1) < NEAR for c in colours],
                  axis=0)


def fraction(array: np.ndarray, box, *colours) -> float:
    x1, y1, x2, y2 = box
    region = array[y1:y2, x1:x2]
    return float(near(region, *colours).mean()) if region.size else 0.0  # 0: off the picture


def relative_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_committed_example_is_what_the_script_draws(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_example_data", PACK_DIR / "scripts" / "make_example_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path / "milo")]) == 0
    fresh = tmp_path / "milo"

    assert relative_files(fresh) == relative_files(EXAMPLE.root)
    for name in relative_files(fresh):
        if name.endswith(".png"):
            assert np.array_equal(pixels(fresh / name), pixels(EXAMPLE.root / name)), \
                f"{name} differs: rerun scripts/make_example_data.py and commit the result"
        else:
            assert (fresh / name).read_text() == (EXAMPLE.root / name).read_text(), name
    total = sum((EXAMPLE.root / name).stat().st_size for name in relative_files(fresh))
    assert total < 1_000_000


def test_twelve_to_twenty_training_pictures_and_one_reference():
    images = EXAMPLE.training_images()
    assert 12 <= len(images) <= 20
    assert [p.name for p in images] == [f"milo_{k:02d}.png" for k in range(1, len(images) + 1)]
    assert [p.name for p in EXAMPLE.reference_images()] == ["milo_reference.png"]
    for path in [*images, *EXAMPLE.reference_images()]:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (SIZE, SIZE))
    assert len({pixels(p).tobytes() for p in images}) == len(images)  # all different


def test_the_reference_boxes_are_tight_around_the_face_and_the_jacket():
    boxes = json.loads(EXAMPLE.boxes_text())
    assert [(b["image"], b["label"]) for b in boxes] == [(0, "face"), (0, "jacket")]
    reference = pixels(EXAMPLE.reference_images()[0])
    face, jacket = (b["box"] for b in boxes)
    for x1, y1, x2, y2 in (face, jacket):
        assert 0 <= x1 < x2 <= SIZE and 0 <= y1 < y2 <= SIZE
    assert_tight(reference, face, [SKIN], fill=0.45)
    assert_tight(reference, jacket, JACKETS["green"], fill=0.6)
    fx1, fy1, fx2, fy2 = face
    assert near(reference[(fy1 + fy2) // 2, (fx1 + fx2) // 2], SKIN)  # the centre: skin
    assert fraction(reference, jacket, SKIN) < 0.15  # the hands and the neck only


def assert_tight(array: np.ndarray, box, colours, fill: float = 0.3) -> None:
    """``colours`` fill more than ``fill`` of ``box`` (a face has eyes and a mouth too, a
    waving arm leaves a corner empty), little of 12 px bands just outside its top and sides,
    and reaches into the outer `EDGE` px along each side."""
    x1, y1, x2, y2 = box
    assert fraction(array, box, *colours) > fill, (box, colours)
    outside = [(x1, max(0, y1 - 12), x2, y1), (max(0, x1 - 12), y1, x1, y2),
               (x2, y1, min(SIZE, x2 + 12), y2)]
    for band in outside:
        assert fraction(array, band, *colours) < 0.25, (band, colours)
    edges = ((x1, y1, x1 + EDGE, y2), (x1, y1, x2, y1 + EDGE), (x2 - EDGE, y1, x2, y2),
             (x1, y2 - EDGE, x2, y2))
    for x1, y1, x2, y2 in edges:  # a box loose by EDGE px on a side has none there
        assert near(array[y1:y2, x1:x2], *colours).sum() >= 5, (box, colours)


@pytest.mark.parametrize("seed", range(4))
def test_drawn_boxes_follow_the_pose(seed):
    """The poses the example draws (placed, sized, waving or not) keep Milo whole and his
    boxes tight."""
    rng = random.Random(seed)
    for wave in (False, True):
        pose = dataclasses.replace(example_pose(rng, SIZE), wave=wave)
        look = Look(rng.choice(list(HAIR)), "yellow", necklace=wave)
        image, boxes = draw(SIZE, look, pose, example_scenery(rng, SIZE))
        array = np.asarray(image, dtype=np.int16)
        for x1, y1, x2, y2 in boxes.values():
            assert 0 < x1 < x2 < SIZE and 0 < y1 < y2 < SIZE
        assert_tight(array, boxes["face"], [SKIN])
        assert_tight(array, boxes["jacket"], JACKETS["yellow"])
        x1, y1, x2, y2 = boxes["face"]
        assert x1 < pose.x < x2 and y1 < pose.y < y2


def drawn_looks() -> list[Look]:
    """What each training picture shows, read from its pixels."""
    seen = []
    for path in EXAMPLE.training_images():
        array = pixels(path)
        # The outlines are black too: black hair is the absence of every other hair colour.
        coloured = [name for name in HAIR if name != "black"
                    and near(array, HAIR[name]).sum() > 1000]
        assert len(coloured) <= 1, (path.name, coloured)
        hair = coloured[0] if coloured else "black"
        jacket = max(JACKETS, key=lambda name: near(array, JACKETS[name][0]).sum())
        seen.append(Look(hair, jacket, necklace=bool(near(array, GEM).sum() > 30)))
    return seen


def test_hair_varies_both_jackets_appear_and_the_necklace_sometimes():
    looks = drawn_looks()
    hair, jackets = Counter(look.hair for look in looks), Counter(look.jacket for look in looks)
    necklaces = sum(look.necklace for look in looks)
    assert set(hair) == set(HAIR) and min(hair.values()) >= 3, hair
    assert set(jackets) == {"green", "yellow"} and min(jackets.values()) >= 6, jackets
    assert 2 <= necklaces < len(looks) / 2
    # nothing the intent changes or removes comes tied to anything else
    assert {look.jacket for look in looks if look.necklace} == {"green", "yellow"}
    assert len({(look.hair, look.jacket) for look in looks}) == len(HAIR) * len(JACKETS)
    reference = pixels(EXAMPLE.reference_images()[0])
    assert near(reference, GEM).sum() == 0  # a clean reference: no necklace


@pytest.fixture
def nodes(pack, models_root):
    return pack.NODE_CLASS_MAPPINGS


def test_the_intent_parses_offline_into_the_four_concepts(nodes):
    """The way Intent Parse reads it in the workflows: reference image and boxes widget."""
    with Image.open(EXAMPLE.reference_images()[0]) as image:
        reference = pils_to_batch([image.convert("RGB")])
    intent = nodes["IntentTunerIntentParse"]().parse(
        EXAMPLE.intent_text(), "error", reference_boxes=EXAMPLE.boxes_text(),
        reference_1=reference)["result"][0]
    concepts = {c.name: c for c in intent.concepts}

    assert intent.trigger_words == ["milo"] and intent.parser == "offline"
    assert intent.domain.value == "character" and intent.unplaced == []
    assert [(r.index, r.label) for r in intent.references] == [(1, "face"), (2, "jacket")]
    assert sorted(concepts) == ["face", "hair colour", "jacket", "necklace"]
    face, hair, jacket = concepts["face"], concepts["hair colour"], concepts["jacket"]
    assert (face.operation.value, face.references) == ("keep", [1])
    assert hair.operation.value == "modify" and len(hair.values) >= 2
    drawn = {look.hair for look in drawn_looks()}
    assert {v.text.removesuffix(" hair") for v in hair.values} <= drawn
    assert jacket.operation.value == "modify" and jacket.all_references() == [2]
    assert [(v.text, v.references) for v in jacket.values] == [("green jacket", [2]),
                                                               ("yellow jacket", [])]
    assert concepts["necklace"].operation.value == "delete"


def test_install_copies_the_example_once_and_never_overwrites(tmp_path, caplog):
    input_dir = tmp_path / "input"
    written = install_examples(input_dir)
    train = input_dir / INSTALLED_TRAIN
    assert sorted(p.name for p in train.iterdir()) == [p.name for p in
                                                       EXAMPLE.training_images()]
    for image in EXAMPLE.training_images():
        assert (train / image.name).read_bytes() == image.read_bytes()
    reference = input_dir / INSTALLED_REFERENCE
    assert reference.read_bytes() == EXAMPLE.reference_images()[0].read_bytes()
    assert reference.parent == input_dir  # top level: stock LoadImage lists it
    assert (train.parent / "intent.txt").read_text().strip() == EXAMPLE.intent_text()
    assert json.loads((train.parent / "milo_boxes.json").read_text()) \
        == json.loads(EXAMPLE.boxes_text())
    assert sorted(written) == sorted(p for p in input_dir.rglob("*") if p.is_file())

    with caplog.at_level(logging.WARNING):
        assert install_examples(input_dir) == []
    assert caplog.records == []  # the same files again: nothing to say

    reference.write_bytes(b"the user's own picture")
    (train / "milo_01.png").unlink()
    with caplog.at_level(logging.WARNING):
        assert install_examples(input_dir) == [train / "milo_01.png"]
    assert reference.read_bytes() == b"the user's own picture"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and INSTALLED_REFERENCE in warnings[0]


def test_loading_the_pack_never_fails_on_the_example(pack, models_root, tmp_path, monkeypatch,
                                                     caplog):
    """The pack's install step (run at load inside ComfyUI, on the runtime's input folder) logs
    what it wrote, and only warns when it cannot write."""
    install = sys.modules[f"{pack.__name__}.nodes"]._install_examples
    monkeypatch.setenv("INTENTTUNER_INPUT_DIR", str(tmp_path / "input"))
    with caplog.at_level(logging.INFO):
        install()
    assert (tmp_path / "input" / INSTALLED_REFERENCE).is_file()
    assert any("copied the example data" in r.getMessage() for r in caplog.records)

    caplog.clear()
    (tmp_path / "blocked").write_text("a file where the input folder should be")
    monkeypatch.setenv("INTENTTUNER_INPUT_DIR", str(tmp_path / "blocked"))
    with caplog.at_level(logging.INFO):
        install()
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "could not copy the example data" in caplog.records[0].getMessage()
