"""Milo, the example character, drawn with PIL: the same face in every picture, a hair colour,
one of two jackets and sometimes a necklace, at a pose (place, size, arms) on a background.

Shapes are laid out in *design units*: the head's centre is the origin, one unit is one pixel
of a 512 px picture at scale 1, y points down. `draw_milo` maps them onto the canvas and
returns the face and jacket boxes computed from the same geometry, so the boxes are exact.
Pictures are drawn at twice their size and halved (a box filter), which smooths the edges
without any randomness: the same `Look` and `Pose` always give the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

SUPERSAMPLE = 2  # drawn at this many times the size, then reduced: antialiased edges
DESIGN_SIZE = 512  # the picture size design units are pixels of at scale 1

SKIN = (242, 196, 160)
SKIN_SHADE = (222, 160, 128)  # ears' insides, the nose
CHEEK = (240, 150, 150)
FRECKLE = (190, 120, 90)
EYE_WHITE = (252, 252, 252)
PUPIL = (50, 35, 30)
BROW = (70, 45, 30)  # fixed, not the hair colour: the face stays the same in every picture
MOUTH = (160, 45, 55)
SHIRT = (246, 246, 246)
OUTLINE = (45, 35, 35)
GOLD = (232, 186, 50)
GEM = (200, 25, 70)

# Hair colours: clearly apart from each other, the skin, the jackets and the backgrounds.
HAIR = {
    "black": (38, 32, 34),
    "blonde": (238, 214, 120),
    "red": (196, 58, 32),
    "blue": (46, 86, 206),
}
# name -> (cloth, shade for lapels, pockets and buttons)
JACKETS = {
    "green": ((58, 150, 72), (36, 104, 48)),
    "yellow": ((246, 200, 36), (196, 150, 18)),
}
# Pale backgrounds with no green, yellow or skin tone in them.
BACKGROUNDS = ((206, 226, 246), (226, 214, 244), (246, 214, 226), (228, 230, 234),
               (196, 214, 240), (236, 222, 236))

# The figure's extent in design units (hair tuft to hands, a waving arm), for poses that keep
# it inside the picture.
TOP, BOTTOM, HALF_WIDTH = -128.0, 338.0, 220.0
HEAD = (78.0, 88.0)  # the head ellipse's radii
HAIRLINE = -24.0  # the fringe's base: the face box starts here
CHIN = HEAD[1]
SHOULDER_Y, HEM_Y, TORSO_HALF = 108.0, 324.0, 100.0
ARM_LENGTH, ARM_WIDTH = 170.0, 46.0
DOWN, WAVE = 104.0, 238.0  # the left arm's angles, degrees from +x (clockwise: y is down)


@dataclass(frozen=True)
class Look:
    """What Milo wears in one picture: a `HAIR` and a `JACKETS` key, and the necklace."""

    hair: str
    jacket: str
    necklace: bool = False


@dataclass(frozen=True)
class Pose:
    """Where Milo stands: his head's centre in pixels, his size, whether his right arm
    (picture left) waves."""

    x: float
    y: float
    scale: float = 1.0
    wave: bool = False


@dataclass(frozen=True)
class Scenery:
    """The background: a colour and simple shapes (kind, XYXY box in pixels) in its tints."""

    colour: tuple[int, int, int]
    shapes: tuple[tuple[str, tuple[float, float, float, float]], ...] = ()
    ground: float | None = None  # y of a horizon in pixels; None: no ground


Box = tuple[int, int, int, int]


class _Pen:
    """Draws design-unit shapes on the supersampled canvas."""

    def __init__(self, draw: ImageDraw.ImageDraw, pose: Pose, size: int):
        self.draw = draw
        self.unit = pose.scale * size / DESIGN_SIZE  # design unit -> output pixels
        self.origin = (pose.x, pose.y)

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (SUPERSAMPLE * (self.origin[0] + x * self.unit),
                SUPERSAMPLE * (self.origin[1] + y * self.unit))

    def rect(self, x1: float, y1: float, x2: float, y2: float) -> list[float]:
        return [*self.point(x1, y1), *self.point(x2, y2)]

    def width(self, units: float) -> int:
        return max(1, round(units * self.unit * SUPERSAMPLE))

    def ellipse(self, x: float, y: float, rx: float, ry: float, fill, outline=None,
                line: float = 0.0) -> None:
        self.draw.ellipse(self.rect(x - rx, y - ry, x + rx, y + ry), fill=fill,
                          outline=outline, width=self.width(line) if outline else 0)

    def polygon(self, points, fill, outline=None, line: float = 0.0) -> None:
        self.draw.polygon([self.point(x, y) for x, y in points], fill=fill, outline=outline,
                          width=self.width(line) if outline else 0)

    def box(self, x1: float, y1: float, x2: float, y2: float) -> Box:
        """Design-unit bounds as whole output pixels, rounded outwards."""
        (a, b), (c, d) = self.point(x1, y1), self.point(x2, y2)
        return (math.floor(a / SUPERSAMPLE), math.floor(b / SUPERSAMPLE),
                math.ceil(c / SUPERSAMPLE), math.ceil(d / SUPERSAMPLE))


def draw_picture(size: int, look: Look, pose: Pose, scenery: Scenery
                 ) -> tuple[Image.Image, dict[str, Box]]:
    """One RGB picture of Milo and his boxes {"face": XYXY, "jacket": XYXY} (output pixels,
    clipped to the picture)."""
    canvas = Image.new("RGB", (size * SUPERSAMPLE,) * 2, scenery.colour)
    draw = ImageDraw.Draw(canvas)
    _draw_scenery(draw, scenery, size)
    boxes = draw_milo(draw, look, pose, size)
    clipped = {name: _clip(box, size) for name, box in boxes.items()}
    return canvas.reduce(SUPERSAMPLE), clipped


def draw_milo(draw: ImageDraw.ImageDraw, look: Look, pose: Pose, size: int) -> dict[str, Box]:
    """Milo on a supersampled canvas of a ``size`` px picture; his unclipped boxes."""
    pen = _Pen(draw, pose, size)
    cloth, shade = JACKETS[look.jacket]
    jacket = _draw_jacket(pen, cloth, shade, pose.wave)
    _draw_head(pen, HAIR[look.hair])
    if look.necklace:
        _draw_necklace(pen)
    return {"face": pen.box(-HEAD[0], HAIRLINE, HEAD[0], CHIN), "jacket": jacket}


def _draw_jacket(pen: _Pen, cloth, shade, wave: bool) -> Box:
    """Sleeves, torso, the shirt's V and the neck; the jacket's bounds (sleeves and torso,
    not the hands)."""
    arms = [(-TORSO_HALF + 4, WAVE if wave else DOWN), (TORSO_HALF - 4, 180 - DOWN)]
    sleeves = [_sleeve(x, angle) for x, angle in arms]
    for points, hand in sleeves:
        pen.polygon(points, cloth, OUTLINE, 2.5)
        pen.ellipse(*hand, 19, 19, SKIN, OUTLINE, 2)
    torso = [(-TORSO_HALF + 24, SHOULDER_Y), (TORSO_HALF - 24, SHOULDER_Y),
             (TORSO_HALF, SHOULDER_Y + 36), (TORSO_HALF + 4, HEM_Y),
             (-TORSO_HALF - 4, HEM_Y), (-TORSO_HALF, SHOULDER_Y + 36)]
    pen.polygon(torso, cloth, OUTLINE, 2.5)
    pen.polygon([(-26, SHOULDER_Y - 4), (26, SHOULDER_Y - 4), (0, SHOULDER_Y + 78)], SHIRT)
    pen.polygon([(-22, 78), (22, 78), (22, SHOULDER_Y), (0, SHOULDER_Y + 22),
                 (-22, SHOULDER_Y)], SKIN)  # the neck, down into the V
    lapels = [[(side * 26, SHOULDER_Y - 4), (side * 52, SHOULDER_Y - 2),
               (side * 8, SHOULDER_Y + 96)] for side in (-1, 1)]
    for side, lapel in zip((-1, 1), lapels, strict=True):
        pen.polygon(lapel, shade)
        pen.polygon([(side * 36, 258), (side * 80, 258), (side * 80, 271), (side * 36, 271)],
                    shade)
    for y in (212, 248, 284):
        pen.ellipse(0, y, 7, 7, shade, OUTLINE, 1.5)
    corners = [point for points in [*(p for p, _ in sleeves), torso, *lapels]
               for point in points]
    return pen.box(min(x for x, _ in corners), min(y for _, y in corners),
                   max(x for x, _ in corners), max(y for _, y in corners))


def _sleeve(shoulder_x: float, angle: float):
    """A sleeve from the shoulder at ``angle`` degrees: its four corners and the hand's
    centre."""
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    nx, ny = -dy * ARM_WIDTH / 2, dx * ARM_WIDTH / 2  # half the width, across the arm
    sx, sy = shoulder_x, SHOULDER_Y + 26
    ex, ey = sx + dx * ARM_LENGTH, sy + dy * ARM_LENGTH
    corners = [(sx + nx, sy + ny), (ex + nx, ey + ny), (ex - nx, ey - ny), (sx - nx, sy - ny)]
    return corners, (ex + dx * 14, ey + dy * 14)


def _draw_head(pen: _Pen, hair) -> None:
    """Ears, head, hair (cap, spiky tuft, fringe) and the face: the same in every picture."""
    for side in (-1, 1):
        pen.ellipse(side * HEAD[0], 8, 17, 22, SKIN, OUTLINE, 2)
        pen.ellipse(side * (HEAD[0] + 2), 8, 8, 12, SKIN_SHADE)
    pen.ellipse(0, 0, *HEAD, SKIN, OUTLINE, 2.5)
    top = -HEAD[1] - 10  # the cap: the top half of an ellipse whose centre is on the hairline
    pen.draw.chord(pen.rect(-HEAD[0] - 6, top, HEAD[0] + 6, 2 * HAIRLINE - top), 180, 360,
                   fill=hair, outline=OUTLINE, width=pen.width(2.5))
    pen.polygon([(-22, -92), (-8, TOP), (6, -96), (30, -120), (34, -88)], hair, OUTLINE, 2)
    for x in range(-66, 67, 22):  # the fringe: scallops hanging over the forehead
        pen.polygon([(x - 13, HAIRLINE - 2), (x + 13, HAIRLINE - 2), (x + 4, HAIRLINE + 10)],
                    hair)
    _draw_face(pen)


def _draw_face(pen: _Pen) -> None:
    for side in (-1, 1):
        pen.draw.line([*pen.point(side * 15, -8), *pen.point(side * 45, -4)], fill=BROW,
                      width=pen.width(6))
        pen.ellipse(side * 30, 18, 16, 20, EYE_WHITE, OUTLINE, 2)
        pen.ellipse(side * 28, 21, 9, 10, PUPIL)
        pen.ellipse(side * 25, 17, 3, 3, EYE_WHITE)
        pen.ellipse(side * 52, 50, 12, 9, CHEEK)
        for fx, fy in ((44, 42), (54, 46), (48, 54)):  # freckles: three a cheek
            pen.ellipse(side * fx, fy, 2.2, 2.2, FRECKLE)
    pen.ellipse(0, 46, 11, 9, SKIN_SHADE, OUTLINE, 1.5)
    pen.draw.chord(pen.rect(-26, 48, 26, 78), 0, 180, fill=MOUTH, outline=OUTLINE,
                   width=pen.width(2))
    pen.draw.chord(pen.rect(-18, 58, 18, 70), 0, 180, fill=CHEEK)  # the tongue


def _draw_necklace(pen: _Pen) -> None:
    """A gold bead chain round the neck with a red gem, over the collar."""
    for k in range(13):
        t = math.pi * k / 12
        pen.ellipse(-25 * math.cos(t), 100 + 44 * math.sin(t), 4.5, 4.5, GOLD, OUTLINE, 1)
    pen.polygon([(0, 138), (13, 152), (0, 172), (-13, 152)], GEM, OUTLINE, 1.5)


def _draw_scenery(draw: ImageDraw.ImageDraw, scenery: Scenery, size: int) -> None:
    light, dark = _tint(scenery.colour, 0.45), _tint(scenery.colour, -0.12)
    if scenery.ground is not None:
        draw.rectangle([0, scenery.ground * SUPERSAMPLE, size * SUPERSAMPLE,
                        size * SUPERSAMPLE], fill=dark)
    for kind, box in scenery.shapes:
        scaled = [v * SUPERSAMPLE for v in box]
        if kind == "circle":
            draw.ellipse(scaled, fill=light)
        elif kind == "square":
            draw.rounded_rectangle(scaled, radius=12 * SUPERSAMPLE, fill=light)
        else:  # a triangle standing in the box
            x1, y1, x2, y2 = scaled
            draw.polygon([((x1 + x2) / 2, y1), (x2, y2), (x1, y2)], fill=dark)


def _tint(colour, amount: float) -> tuple[int, int, int]:
    """Towards white (amount > 0) or black (amount < 0)."""
    target = 255 if amount > 0 else 0
    return tuple(round(c + (target - c) * abs(amount)) for c in colour)


def _clip(box: Box, size: int) -> Box:
    x1, y1, x2, y2 = box
    return (max(0, x1), max(0, y1), min(size, x2), min(size, y2))
