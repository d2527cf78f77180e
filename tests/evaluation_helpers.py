"""Known-output stand-ins for the models the evaluation metrics use, and images built so that
what those models see is known exactly: the metrics' arithmetic can then be asserted to the
last digit, apart from what random network weights happen to see.

- `MeanColourEncoder` embeds an image as its mean RGB colour, normalised: the cosine between
  two images is the cosine between their mean colours (red vs yellow: 1/sqrt(2)).
- `ColourClip` embeds texts too, as the one colour they name ("a photo of red hair" -> red).
- `MarkerDetector` finds a phrase where `draw` outlined a box in that phrase's marker colour;
  the box it reports is the inside of the outline, so a crop holds exactly the drawn content.
- `FixedScorer` gives each image the aesthetic score it is told.

`tiny_models` loads the tiny random models of the real families through the real loading path.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from intenttuner.evaluation.pairing import Generated
from intenttuner.evaluation.types import EvalItem, Test
from intenttuner.families import FAMILIES
from intenttuner.families.detector_model import RawDetection
from intenttuner.imageio import to_rgb_pil
from intenttuner.intent.parse import parse_intent
from intenttuner.loading import load_model
from intenttuner.tiny import TINY_BUILDERS

COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
           "yellow": (1.0, 1.0, 0.0), "cyan": (0.0, 1.0, 1.0), "white": (1.0, 1.0, 1.0)}
# Marker outlines per detector phrase, best first. Content colours (COLOURS: channels of 0 or
# 255 only) never equal one, and `noise` stays below 240, so none is found by accident.
MARKERS = {"face": ((255, 0, 255), (254, 0, 254), (253, 0, 253)),
           "hair": ((255, 128, 0), (254, 128, 0)),
           "necklace": ((0, 128, 255), (0, 128, 254)),
           "jacket": ((128, 255, 0),)}
SCORES = (0.9, 0.8, 0.7)  # detector confidence of a phrase's first, second, third marker


def rgb(name: str) -> tuple[int, int, int]:
    return tuple(round(255 * c) for c in COLOURS[name])


def cosine(a, b) -> float:
    """Cosine between two colours (RGB triples of any scale), computed apart from torch."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def mean_colour(image: Image.Image) -> np.ndarray:
    return np.asarray(to_rgb_pil(image), dtype=np.float64).reshape(-1, 3).mean(axis=0) / 255


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Uniform random RGB in [0, 240): mean colour near grey, never a marker colour."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 240, (height, width, 3), dtype=np.uint8))


def solid(colour, width: int = 64, height: int = 64) -> Image.Image:
    return Image.new("RGB", (width, height), rgb(colour) if isinstance(colour, str) else colour)


def draw(image: Image.Image, phrase: str, box: tuple[int, int, int, int], content,
         rank: int = 0) -> Image.Image:
    """A copy of ``image`` with ``content`` (a colour name, an RGB triple or an image) filling
    ``box`` (XYXY pixel edges) and the ``rank``-th marker of ``phrase`` outlining it one pixel
    outside: `MarkerDetector` then reports exactly ``box`` with score SCORES[rank]."""
    x1, y1, x2, y2 = box
    out = image.copy()
    marker = Image.new("RGB", (x2 - x1 + 2, y2 - y1 + 2), MARKERS[phrase][rank])
    out.paste(marker, (x1 - 1, y1 - 1))
    out.paste(fill(content, x2 - x1, y2 - y1), (x1, y1))
    return out


def fill(content, width: int, height: int) -> Image.Image:
    """``content`` (a colour name, an RGB triple or an image) as a width x height image."""
    if isinstance(content, Image.Image):
        return content.resize((width, height), Image.Resampling.NEAREST)
    return solid(content, width, height)


class MeanColourEncoder:
    """An identity / image encoder whose embedding is the normalised mean RGB colour, less
    ``centre`` (0.5 centres colours on grey, so complementary colours have cosine -1)."""

    arch = "mean-colour"
    embed_dim = 3

    def __init__(self, centre: float = 0.0):
        self.centre = centre
        self.calls: list[int] = []  # images per embed_images call

    def embed_images(self, images, batch_size: int = 32) -> torch.Tensor:
        self.calls.append(len(images))
        means = torch.tensor(np.stack([mean_colour(image) for image in images])) - self.centre
        return torch.nn.functional.normalize(means, dim=-1).float()


class ColourClip(MeanColourEncoder):
    """A CLIP stand-in: images as `MeanColourEncoder`, a text as the colour it names."""

    arch = "colour-clip"

    def __init__(self):
        super().__init__()
        self.text_calls: list[list[str]] = []

    def embed_texts(self, texts, batch_size: int = 256) -> torch.Tensor:
        self.text_calls.append(list(texts))
        vectors = []
        for text in texts:
            named = [COLOURS[w] for w in text.split() if w in COLOURS]
            assert len(named) == 1, f"'{text}' must name exactly one colour"
            vectors.append(named[0])
        return torch.nn.functional.normalize(torch.tensor(vectors), dim=-1).float()


class MarkerDetector:
    """Detects each phrase where its marker colour outlines a box (see `draw`)."""

    source = None

    def __init__(self):
        self.calls: list[int] = []  # images per detect call
        self.phrases: list[str] = []

    def detect(self, images, phrases, *, box_threshold, text_threshold, batch_size):
        self.calls.append(len(images))
        self.phrases = list(phrases)
        out = []
        for image in images:
            pixels = np.asarray(to_rgb_pil(image))
            found = []
            for index, phrase in enumerate(phrases):
                for marker, score in zip(MARKERS.get(phrase, ()), SCORES, strict=False):
                    ys, xs = np.nonzero((pixels == marker).all(axis=-1))
                    if xs.size and score > box_threshold:
                        box = (float(xs.min() + 1), float(ys.min() + 1), float(xs.max()),
                               float(ys.max()))
                        found.append(RawDetection(box, score, index))
            out.append(sorted(found, key=lambda d: -d.score))
        return out


class FixedScorer:
    """A quality scorer that gives the images, in order, the aesthetic scores it holds."""

    name = "fixed"
    clip = "none"

    def __init__(self, scores: list[float]):
        self.scores = scores
        self.calls: list[int] = []

    def score_images(self, pils, batch_size: int = 32) -> torch.Tensor:
        self.calls.append(len(pils))
        assert len(pils) == len(self.scores)
        return torch.tensor(self.scores, dtype=torch.float32)


def generated(rows) -> list[Generated]:
    """``rows`` of (test, image, concept, value) in image-list order -> Generated, with ids
    numbered per test the way the plan numbers them."""
    out, counts = [], {}
    for index, (test, image, concept, value) in enumerate(rows):
        k = counts[test] = counts.get(test, -1) + 1
        item = EvalItem(id=f"{test.value}-{k:03d}", test=test, prompt=f"prompt {index}",
                        seed=k, concept=concept, value=value)
        out.append(Generated(item=item, image=image, index=index))
    return out


def stability_set(images) -> list[Generated]:
    return generated([(Test.STABILITY, image, None, None) for image in images])


def intent(description: str, references=()):
    """An intent parsed offline; ``references`` are (content, box) pairs, one reference image
    each (80x80 white with the box filled with the content, see `fill`), bound as [1], [2]...
    in order."""
    images = []
    for content, (x1, y1, x2, y2) in references:
        image = solid("white", 80, 80)
        image.paste(fill(content, x2 - x1, y2 - y1), (x1, y1))
        images.append(image)
    boxes = ", ".join(f'{{"image": {i}, "box": {list(box)}}}'
                      for i, (_, box) in enumerate(references))
    return parse_intent(description, images, f"[{boxes}]" if references else "")


def tiny_models(models_root, *families: str) -> dict:
    """The tiny random model of each family, written by its TINY_BUILDERS entry into
    ``models_root`` (the `models_root` fixture) and loaded with `load_model`."""
    models = {}
    for name in families:
        folder = models_root / FAMILIES[name].folder
        path = TINY_BUILDERS[name](folder)
        models[name] = load_model(name, path.relative_to(folder).as_posix())
    return models
