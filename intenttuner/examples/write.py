"""Write the example set: Milo's training pictures, his reference picture with its boxes, and
the intent that says what to keep, change and remove.

The looks are balanced, not drawn at random: every hair colour with both jackets equally
often, the necklace in every third picture (a minority, spread over hair and jacket), so
nothing the intent changes or removes is tied to anything else. Poses and backgrounds come
from ``random.Random(seed)``: the same arguments always write the same files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..errors import InputError
from .characters import (
    BACKGROUNDS,
    BOTTOM,
    HAIR,
    HALF_WIDTH,
    JACKETS,
    TOP,
    Look,
    Pose,
    Scenery,
    draw_picture,
)
from .data import EXAMPLE, ExampleData

REFERENCE_LOOK = Look(hair="black", jacket="green")  # a clean front view: no necklace
NECKLACE_EVERY = 3  # the necklace in every third picture
MIN_SIZE = 128


def intent_text() -> str:
    """The example intent: box [1] is the face, [2] the green jacket of the reference."""
    first, second = (f"{name} jacket" for name in JACKETS)
    return (f"Train a model of my 2D cartoon character called Milo, trigger word {EXAMPLE}. "
            "Keep his face [1] consistent. His hair colour should be adjustable: "
            f"{_either(HAIR)} hair. He should be able to switch between his {first} [2] and "
            f"a {second}. Never give him a necklace.")


def _either(names) -> str:
    """"a, b or c"."""
    *others, last = names
    return f"{', '.join(others)} or {last}" if others else last


def write_example_data(folder: Path, *, count: int = 16, size: int = 512,
                       seed: int = 0) -> ExampleData:
    """Write the example into ``folder`` (train/, references/, intent.txt, README.md),
    replacing an earlier one there; ``count`` pictures of ``size`` px from ``seed``."""
    if count < 1 or size < MIN_SIZE:
        raise InputError(f"The example needs at least 1 picture of at least {MIN_SIZE} px "
                         f"(count={count}, size={size}).")
    data = ExampleData(Path(folder))
    data.images.mkdir(parents=True, exist_ok=True)
    data.references.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = [f"{EXAMPLE}_{k + 1:02d}.png" for k in range(count)]
    for name, look in zip(names, looks(count, rng), strict=True):
        picture, _ = draw_picture(size, look, pose(rng, size), scenery(rng, size))
        picture.save(data.images / name, optimize=True)
    for stale in set(p.name for p in data.images.glob("*.png")) - set(names):
        (data.images / stale).unlink()  # a set of another count wrote these
    _write_reference(data, size)
    data.intent_file.write_text(intent_text() + "\n", encoding="utf-8")
    (data.root / "README.md").write_text(_readme(count, size, seed), encoding="utf-8")
    return data


def looks(count: int, rng: random.Random) -> list[Look]:
    """``count`` balanced looks (see the module docstring), in a shuffled order."""
    hair, jackets = list(HAIR), list(JACKETS)
    chosen = [Look(hair=hair[k % len(hair)], jacket=jackets[(k // len(hair)) % len(jackets)],
                   necklace=k % NECKLACE_EVERY == NECKLACE_EVERY - 1) for k in range(count)]
    rng.shuffle(chosen)
    return chosen


def pose(rng: random.Random, size: int) -> Pose:
    """A place and size that keep Milo whole inside the picture; a wave now and then."""
    scale = rng.uniform(0.7, 0.92)
    unit = scale * size / 512
    x = rng.uniform(HALF_WIDTH * unit, size - HALF_WIDTH * unit)
    y = rng.uniform(-TOP * unit, size - BOTTOM * unit)
    return Pose(x=round(x, 1), y=round(y, 1), scale=round(scale, 3), wave=rng.random() < 0.3)


def scenery(rng: random.Random, size: int) -> Scenery:
    """A background colour, three to six shapes, and a horizon in half of the pictures."""
    shapes = []
    for _ in range(rng.randint(3, 6)):
        side = rng.uniform(0.06, 0.24) * size
        x, y = rng.uniform(0, size - side), rng.uniform(0, size - side)
        kind = rng.choice(("circle", "square", "triangle"))
        shapes.append((kind, (round(x), round(y), round(x + side), round(y + side))))
    ground = round(rng.uniform(0.6, 0.85) * size) if rng.random() < 0.5 else None
    return Scenery(colour=rng.choice(BACKGROUNDS), shapes=tuple(shapes), ground=ground)


def _write_reference(data: ExampleData, size: int) -> None:
    """The front view, centred on a plain background, and its face [1] and jacket [2]."""
    scale = 0.92
    unit = scale * size / 512
    centre_y = (size - (TOP + BOTTOM) * unit) / 2  # the figure's extent centred vertically
    picture, boxes = draw_picture(size, REFERENCE_LOOK, Pose(size / 2, centre_y, scale),
                                  Scenery(colour=BACKGROUNDS[3]))
    picture.save(data.references / f"{EXAMPLE}_reference.png", optimize=True)
    listed = [{"image": 0, "box": list(boxes[label]), "label": label}
              for label in ("face", "jacket")]
    data.boxes_file.write_text(json.dumps(listed) + "\n", encoding="utf-8")


def _readme(count: int, size: int, seed: int) -> str:
    return f"""# Milo, the example character

Drawn by `scripts/make_example_data.py` (count {count}, size {size}, seed {seed}); regenerate
with it rather than editing by hand. The pack copies it into ComfyUI's input folder when it
loads (`input/intenttuner_examples/{EXAMPLE}/`, and `input/{EXAMPLE}_reference.png`).

- `train/`: {count} pictures of Milo: always his face; {_either(HAIR)} hair; a
  {_either(JACKETS)} jacket; a necklace in one picture of {NECKLACE_EVERY}.
- `references/{EXAMPLE}_reference.png`: a clean front view; `references/boxes.json`: box [1] his
  face, box [2] his (green) jacket, in the box editor's format.
- `intent.txt`: keep the face [1], change the hair colour and the jacket, never a necklace.
"""
