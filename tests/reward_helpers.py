"""Synthetic marked images for the reward model's tests: one shape on a random background, marked
by a hidden rule the reward model has to find from the pixels."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from intenttuner.reward.examples import Example

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60),
           "yellow": (230, 210, 40), "purple": (140, 50, 170), "gray": (128, 128, 128)}
SHAPES = ("circle", "square")
STYLES = ("", ", flat illustration", ", simple drawing", ", on a plain background")


def scene(rng: random.Random, colour: str, size: int) -> tuple[Image.Image, str]:
    """A 64x64 image of one ``colour`` circle or square of ``size`` px, anywhere, on a random
    light background; and its shape's name."""
    image = Image.new("RGB", (64, 64), tuple(rng.randint(170, 255) for _ in range(3)))
    shape = rng.choice(SHAPES)
    x, y = rng.randint(0, 64 - size), rng.randint(0, 64 - size)
    draw = ImageDraw.Draw(image)
    (draw.ellipse if shape == "circle" else draw.rectangle)(
        [x, y, x + size, y + size], fill=COLOURS[colour])
    return image, shape


def red_rule_examples(n: int, seed: int) -> list[Example]:
    """Marked good exactly when the shape is red (else another colour). The prompts vary but
    never name the colour, so only the pixels tell the marks apart."""
    rng = random.Random(seed)
    others = [c for c in COLOURS if c != "red"]
    examples = []
    for _ in range(n):
        good = rng.random() < 0.5
        image, shape = scene(rng, "red" if good else rng.choice(others), rng.randint(24, 36))
        examples.append(Example(image, f"a {shape}{rng.choice(STYLES)}", good))
    return examples


def size_rule_examples(n: int, seed: int) -> list[Example]:
    """Marked good when the shape is big; the prompt names its true colour, which no mark
    depends on: only the auxiliary task teaches that the colour word must fit the image."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        good = rng.random() < 0.5
        colour = rng.choice(list(COLOURS))
        image, shape = scene(rng, colour, rng.randint(30, 40) if good else rng.randint(12, 20))
        examples.append(Example(image, f"a {colour} {shape}{rng.choice(STYLES)}", good))
    return examples
