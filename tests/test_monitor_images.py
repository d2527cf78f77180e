"""The monitor's pictures, checked on their pixels: the curves image (loss, lr, scores per metric
and concept, n/a metrics, the best step) and the sample grid (captions, images of any size)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from intenttuner.detection.preview import colour_of
from intenttuner.errors import InputError
from intenttuner.intent.preview import BACKGROUND as DARK
from intenttuner.intent.preview import PAD
from intenttuner.monitor import events
from intenttuner.monitor.curves import (
    BEST,
    COMBINED,
    LR,
    METRIC_COLOURS,
    MUTED,
    Layout,
    curves_image,
    read,
)
from intenttuner.monitor.grid import (
    CELL,
    MAX_LINES,
    THUMBNAIL,
    TITLE_HEIGHT,
    sample_grid,
    thumbnail,
)
from intenttuner.training.report import TREND
from tests import monitor_record_helpers as rec


def _records(samples=((10, 0.5), (20, 0.8), (30, 0.6)), leakage=None, total=40, end=None,
             steps=30):
    records = [{"event": "start", **rec.start("demo", total=total)}]
    records += [rec.step(n, loss=1.0 / n, lr=1e-4) for n in range(1, steps + 1)]
    records += [{"event": "sample", **rec.sample("demo", n, score, stability=score,
                                                 controllability=0.3, leakage=leakage)}
                for n, score in samples]
    if end is not None:
        records.append({"event": "end", **end})
    return records


def _count(image: Image.Image, colour, box=None) -> int:
    """Pixels of exactly ``colour`` in ``box`` (left, top, right, bottom; default: all)."""
    pixels = np.asarray(image.crop(box) if box else image)
    return int(np.all(pixels == np.array(colour, dtype=pixels.dtype), axis=-1).sum())


def _inside(box, margin=3):
    return box[0] + margin, box[1] + margin, box[2] - margin, box[3] - margin


@pytest.mark.parametrize("size", [(900, 560), (640, 400), (1400, 900)])
def test_curves_image_sizes(size):
    assert curves_image(_records(), size=size).size == size
    assert curves_image(_records()).size == (900, 560)


@pytest.mark.parametrize("size", [(100, 560), (900, 10), (900,), "big", (900.0, 560)])
def test_curves_image_refuses_odd_sizes(size):
    with pytest.raises(InputError, match="size must be"):
        curves_image([], size=size)


def test_curves_draw_loss_lr_and_every_measured_metric_and_concept():
    image = curves_image(_records(leakage=0.1))
    layout = Layout(image.size, 40)
    top, bottom = _inside(layout.top), _inside(layout.bottom)
    assert _count(image, TREND, top) > 50 and _count(image, LR, top) > 50
    assert _count(image, TREND, bottom) == 0  # loss stays in its own panel
    for metric in ("stability", "controllability", "leakage"):
        assert _count(image, METRIC_COLOURS[metric], bottom) > 50, metric
    assert _count(image, COMBINED, bottom) > 50
    assert _count(image, colour_of("hair"), bottom) > 0  # a concept, in its preview colour


def test_a_metric_that_was_not_measured_is_listed_as_na_not_drawn():
    measured = curves_image(_records(leakage=0.1))
    missing = curves_image(_records(leakage=None))
    layout = Layout(measured.size, 40)
    plot, legend = _inside(layout.bottom), (layout.legend_x, layout.bottom[1],
                                           measured.width, layout.bottom[3])
    leakage = METRIC_COLOURS["leakage"]
    assert _count(measured, leakage, plot) > 50 and _count(missing, leakage, plot) == 0
    assert _count(missing, leakage, legend) == 0  # its legend swatch is grey...
    assert _count(missing, MUTED, legend) >= 11 * 9  # ...a full swatch of it: "leakage: n/a"
    assert _count(measured, MUTED, legend) < 11 * 9 // 2  # (a few text pixels may be grey)
    curves = read(_records(leakage=None))
    assert curves.metrics["leakage"].points == [] and curves.metrics["stability"].points


def _column_has(image, x, colour, box) -> bool:
    strip = image.crop((round(x) - 1, box[1] + 2, round(x) + 2, box[3] - 2))
    return _count(strip, colour) > 0.8 * (box[3] - box[1] - 4)  # a line across the panel


def test_the_best_step_is_marked_across_both_panels():
    image = curves_image(_records())  # best combined score 0.8 at step 20, no end yet
    layout = Layout(image.size, 40)
    for box in (layout.top, layout.bottom):
        assert _column_has(image, layout.x(20), BEST, box)
        assert not _column_has(image, layout.x(10), BEST, box)
    assert _count(image, BEST, _inside(layout.bottom)) < 3 * (layout.bottom[3] - layout.bottom[1])


def test_the_best_step_is_the_monitors_choice_then_the_first_highest_score():
    chosen = _records(end=rec.end("demo", n=30, best_step=30, score=0.6))
    image = curves_image(chosen)
    layout = Layout(image.size, 40)
    assert _column_has(image, layout.x(30), BEST, layout.bottom)
    assert not _column_has(image, layout.x(20), BEST, layout.bottom)
    assert read(chosen).best == (30, 0.6)
    assert read(_records(samples=((10, 0.7), (20, 0.4), (30, 0.7)))).best == (10, 0.7)
    assert read(_records(samples=((10, None),))).best is None


def test_empty_history_draws_empty_panels():
    image = curves_image([])
    layout = Layout(image.size, 1)
    for box in (layout.top, layout.bottom):
        inner = _inside(box)
        for colour in (TREND, LR, COMBINED, BEST, *METRIC_COLOURS.values()):
            assert _count(image, colour, inner) == 0
    # the "no finished steps" / "no sample points yet" notes are the only ink inside
    assert np.asarray(image.crop(_inside(layout.top))).min() < 200


def test_loss_only_run_and_steps_without_a_loss():
    records = [{"event": "start", **rec.start("demo", enabled=False, total=10)}]
    records += [rec.step(n, loss=None if n % 2 else 0.5 + n / 100) for n in range(1, 9)]
    image = curves_image(records)
    layout = Layout(image.size, 10)
    assert _count(image, TREND, _inside(layout.top)) > 20
    assert _count(image, COMBINED, _inside(layout.bottom)) == 0
    assert read(records).sampled is False and len(read(records).losses) == 4


def test_stopped_run_shows_where_it_stopped():
    image = curves_image(_records(total=400, steps=30, samples=()))
    layout = Layout(image.size, 400)
    assert read(_records(total=400, steps=30, samples=())).last == 400
    right_half = (round(layout.x(100)), layout.top[1] + 3, layout.top[2] - 3, layout.top[3] - 3)
    assert _count(image, TREND, right_half) == 0  # no line past step 30 of 400
    assert _count(image, TREND, _inside(layout.top)) > 20


# --- the sample grid ------------------------------------------------------------------------


def _ink(image, box) -> int:
    """Pixels in ``box`` that differ from the dark background (text, images)."""
    pixels = np.asarray(image.crop(box)).astype(int)
    return int((np.abs(pixels - np.array(DARK)).sum(axis=-1) > 60).sum())


def test_grid_fits_images_of_any_size_into_their_cells():
    red, tall, grey = (Image.new("RGB", (512, 512), (220, 30, 30)),
                       Image.new("RGB", (100, 400), (30, 220, 30)), Image.new("L", (800, 200), 128))
    grid = sample_grid([red, tall, grey], ["one", "two", "three"], "demo: step 20", columns=3)
    cell_height = CELL + 4 + 18
    assert grid.size == (PAD + 3 * (CELL + PAD), TITLE_HEIGHT + cell_height + PAD + PAD)
    x = [PAD + i * (CELL + PAD) for i in range(3)]
    y = TITLE_HEIGHT
    assert grid.getpixel((x[0] + 2, y + 2)) == (220, 30, 30)  # square: fills its cell
    # tall: 64 px wide, centred; the cell's sides stay background
    assert grid.getpixel((x[1] + CELL // 2, y + 2)) == (30, 220, 30)
    assert grid.getpixel((x[1] + 10, y + CELL // 2)) == DARK
    assert grid.getpixel((x[1] + CELL // 2 - 30, y + CELL // 2)) == (30, 220, 30)
    # wide: 64 px high, centred vertically
    assert grid.getpixel((x[2] + CELL // 2, y + CELL // 2)) == (128, 128, 128)
    assert grid.getpixel((x[2] + CELL // 2, y + 10)) == DARK


def test_grid_captions_sit_under_their_images():
    images = [Image.new("RGB", (64, 64), (200, 200, 0)) for _ in range(4)]
    long = "a photo of ohwx wearing a red scarf on a windy beach at sunset " * 6
    grid = sample_grid(images, ["stability 0.81", "", long, "line one\nline two"], "demo",
                       columns=2)
    cell_height = CELL + 4 + 18 * MAX_LINES  # the longest caption is cut to MAX_LINES lines

    def caption_box(i, line):
        x = PAD + (i % 2) * (CELL + PAD)
        y = TITLE_HEIGHT + (i // 2) * (cell_height + PAD) + CELL + 4 + 18 * line
        return x, y, x + CELL, y + 18

    assert _ink(grid, caption_box(0, 0)) > 20 and _ink(grid, caption_box(0, 1)) == 0
    assert _ink(grid, caption_box(1, 0)) == 0  # no caption, no text
    assert all(_ink(grid, caption_box(2, n)) > 20 for n in range(MAX_LINES))
    assert _ink(grid, caption_box(3, 1)) > 20 and _ink(grid, caption_box(3, 2)) == 0
    assert _ink(grid, (PAD, 0, grid.width, TITLE_HEIGHT)) > 20  # the title
    assert grid.height == TITLE_HEIGHT + 2 * (cell_height + PAD) + PAD


def test_grid_of_nothing_and_mismatched_captions():
    empty = sample_grid([], [], "demo: no samples")
    assert empty.width >= CELL and _ink(empty, (PAD, TITLE_HEIGHT, empty.width, empty.height))
    with pytest.raises(InputError, match="2 image\\(s\\) but 1 caption"):
        sample_grid([Image.new("RGB", (8, 8))] * 2, ["x"], "demo")
    with pytest.raises(InputError, match="columns must be"):
        sample_grid([], [], "demo", columns=0)


def test_thumbnails_shrink_large_images_only():
    assert thumbnail(Image.new("RGB", (1024, 512))).size == (THUMBNAIL, THUMBNAIL // 2)
    assert thumbnail(Image.new("RGBA", (100, 60))).size == (100, 60)
    assert thumbnail(Image.new("RGBA", (100, 60))).mode == "RGB"


def test_curves_read_records_of_the_run_log(tmp_path):
    """The image reads metrics.jsonl as the run log writes it (step records + event records)."""
    from intenttuner.monitor.runlog import read_records

    run_dir = rec.write_run(tmp_path / "demo", [(events.START, rec.start("demo", total=20)),
                                                (events.STEP, rec.step(1, total=20)),
                                                (events.SAMPLE, rec.sample("demo", 1, 0.4))],
                            pngs=False)
    curves = read(read_records(run_dir))
    assert (curves.last, curves.combined, curves.title) == (20, [(1, 0.4)], "demo: step 1/20")
