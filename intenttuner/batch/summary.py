"""The summary of a batch: one row per run and model label (the labels of its Evaluation Report
node; one row for a run without one), as OUT/summary.csv, OUT/summary.md and OUT/summary.png.

Columns: run id, the swept values, model, stability, controllability, delete leakage (lower
is better), status, seconds, server. The CSV keeps plain numbers (empty where there is none);
the Markdown and the image show three decimals, "n/a" where the report had no number.
"""

from __future__ import annotations

import csv
import textwrap
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from ..drawing import column_widths, draw_table
from ..drawing import font as load_font
from ..evaluation.preview import BAD, MUTED
from ..evaluation.report import GRID, ROW
from ..intent.preview import BACKGROUND, PAD, TEXT
from .results import FAILED, METRICS, SKIPPED, RunRecord

TITLES = {"stability": "stability", "controllability": "controllability",
          "leakage": "leakage (lower is better)"}
MAX_COLUMN, CELL_PAD, NOTE = 320, 16, 18  # widest image column, px; space around text; note line


@dataclass(frozen=True)
class Row:
    run: RunRecord
    model: str  # "" for a run without scores
    scores: dict[str, float | None]


def summary_rows(runs: list[RunRecord]) -> list[Row]:
    return [Row(run, label, scores) for run in runs
            for label, scores in (run.scores.items() if run.scores else [("", {})])]


def header(keys: list[str]) -> list[str]:
    return ["run", *keys, "model", *METRICS, "status", "seconds", "server"]


def write_summary(out: Path, runs: list[RunRecord], keys: list[str],
                  title: str) -> tuple[Path, Path, Path]:
    """Write the three summaries of ``runs`` (``keys``: the swept NODE.INPUT names) into
    ``out``; their paths (csv, md, png)."""
    rows = summary_rows(runs)
    paths = out / "summary.csv", out / "summary.md", out / "summary.png"
    _csv(paths[0], rows, keys)
    paths[1].write_text(markdown(rows, keys, runs, title), encoding="utf-8")
    summary_image(rows, keys, runs, title).save(paths[2])
    return paths


def _csv(path: Path, rows: list[Row], keys: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header(keys))
        for row in rows:
            scores = ["" if row.scores.get(m) is None else row.scores[m] for m in METRICS]
            writer.writerow([row.run.run_id, *(row.run.values.get(k, "") for k in keys),
                             row.model, *scores, row.run.status, f"{row.run.seconds:.1f}",
                             row.run.server or ""])


def cells(row: Row, keys: list[str]) -> list[str]:
    """A row as the Markdown table and the image show it."""
    scores = [_number(row.scores.get(m)) if row.model else "" for m in METRICS]
    return [row.run.run_id, *(row.run.values.get(k, "") for k in keys), row.model, *scores,
            row.run.status, f"{row.run.seconds:.1f}", row.run.server or ""]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def counts(runs: list[RunRecord]) -> str:
    failed = sum(run.status == FAILED for run in runs)
    skipped = sum(run.status == SKIPPED for run in runs)
    done = len(runs) - failed - skipped
    return (f"{len(runs)} run(s): {done} succeeded, {skipped} kept from an earlier call "
            f"(--resume), {failed} failed")


def failure_lines(runs: list[RunRecord]) -> list[str]:
    return [f"{run.run_id}: {run.error}" for run in runs if run.status == FAILED]


def markdown(rows: list[Row], keys: list[str], runs: list[RunRecord], title: str) -> str:
    titles = [TITLES.get(name, name) for name in header(keys)]
    lines = [f"# {title}", "", counts(runs) + ".", "",
             "| " + " | ".join(_md(t) for t in titles) + " |",
             "|" + "|".join("---" for _ in titles) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in cells(row, keys)) + " |" for row in rows]
    failures = failure_lines(runs)
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {_md(line.splitlines()[0])}" + "".join(
            f"<br>{_md(more.strip())}" for more in line.splitlines()[1:]) for line in failures]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_image(rows: list[Row], keys: list[str], runs: list[RunRecord],
                  title: str) -> Image.Image:
    """The table (failed runs in red, missing numbers grey) under a title and the counts,
    then one note per failure."""
    font = load_font(14)
    head = [TITLES.get(name, name) for name in header(keys)]
    table = [cells(row, keys) for row in rows]
    widths = [min(MAX_COLUMN, w) for w in column_widths(head, table, font, CELL_PAD)]
    width = max(640, 2 * PAD + sum(widths))
    notes = [part for line in failure_lines(runs)
             for part in textwrap.wrap(" ".join(line.split()), (width - 2 * PAD) // 7)]
    top = PAD + 30 + ROW  # the title, then the counts
    height = top + ROW * (len(table) + 1) + PAD + NOTE * len(notes) + PAD
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, PAD), title, fill=TEXT, font=load_font(20))
    draw.text((PAD, PAD + 32), counts(runs), fill=MUTED, font=font)
    fills = [[_fill(text, row) for text in line] for row, line in zip(rows, table, strict=True)]
    bottom = draw_table(draw, head, table, widths, (PAD, top), font, row_height=ROW, fill=TEXT,
                        grid=GRID, fills=fills, pad=CELL_PAD)
    for n, note in enumerate(notes):
        draw.text((PAD, bottom + PAD + n * NOTE), note, fill=BAD, font=load_font(13))
    return canvas


def _fill(text: str, row: Row):
    if row.run.status == FAILED:
        return BAD
    return MUTED if text in ("n/a", "") else TEXT
