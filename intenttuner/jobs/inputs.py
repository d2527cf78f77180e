"""The inputs of a headless run, checked before anything loads: the intent (text, or a file
holding it), the reference images and their boxes, and the output folder.

The output folder: a run writes only the entries of `OUTPUTS` into it. When any of them is
already there (an earlier run's results), the run is refused, naming them, unless
``overwrite`` is given; then exactly those entries are removed first (never anything else in
the folder, e.g. OUT/models of a smoke run, which later runs reuse).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from ..dataset.image_decode import IMAGE_EXTENSIONS
from ..dataset.image_folder import list_files
from ..errors import InputError
from ..imageio import to_rgb_pil
from ..intent.references import parse_boxes

log = logging.getLogger(__name__)

DATASET, LORA, GENERATED = "dataset", "lora", "generated"
REPORT_PNG, REPORT_JSON, CURVES_PNG = "report.png", "report.json", "curves.png"
INTENT_JSON, RUN_JSON = "intent.json", "run.json"
OUTPUTS = (DATASET, LORA, GENERATED, REPORT_PNG, REPORT_JSON, CURVES_PNG, INTENT_JSON, RUN_JSON)
# A value ending so names a file, even when it does not exist (then: "not found", not "text").
TEXT_FILE_SUFFIXES = (".txt", ".md", ".text")
JSON_FILE_SUFFIXES = (".json",)


def intent_text(value: str) -> str:
    """The intent of ``--intent``: the text itself, or the contents of the file it names."""
    text = _text_or_file(value, "intent", TEXT_FILE_SUFFIXES)
    if not text.strip():
        raise InputError("The intent is empty: say what the model should keep, let text "
                         "change and never produce, e.g. \"Keep his face. His hair colour "
                         "should be adjustable. Never a necklace.\"")
    return text.strip()


def boxes_text(value: str) -> str:
    """The reference boxes of ``--boxes``: JSON text, or the contents of the JSON file it names
    (the box editor's format); "" when none are given."""
    if not value or not value.strip():
        return ""
    return _text_or_file(value, "boxes", JSON_FILE_SUFFIXES).strip()


def _text_or_file(value: str, what: str, suffixes: tuple[str, ...]) -> str:
    path = Path(value.strip()).expanduser() if "\n" not in value and len(value) < 1024 else None
    if path is not None and path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"The {what} file {path} cannot be read ({exc}); save it as UTF-8 "
                             "text.") from None
    if path is not None and (path.suffix.lower() in suffixes or path.is_dir()):
        raise InputError(f"The {what} file {path} was not found"
                         + (" (it is a folder)" if path.is_dir() else "")
                         + f": give the path of an existing file, or the {what} as text.")
    return value


def reference_images(paths: Sequence[Path]) -> list[Image.Image]:
    """The reference images, in order (a folder stands for its images, sorted by name);
    `InputError` naming a missing or unreadable one."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = [path / name for name in list_files(path, recursive=False)
                     if Path(name).suffix.lower() in IMAGE_EXTENSIONS]
            if not found:
                raise InputError(f"The reference folder {path} holds no images.")
            files += found
        elif not path.is_file():
            raise InputError(f"The reference image {path} does not exist; give the path of an "
                             "image file (or a folder of them).")
        else:
            files.append(path)
    images = []
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()  # the pixels, before the file closes
                images.append(to_rgb_pil(image))
        except OSError as exc:
            raise InputError(f"The reference image {path} cannot be read as an image "
                             f"({exc}).") from None
    return images


def check_boxes(boxes: str, references: Sequence[Path], count: int) -> None:
    """Refuse bad boxes JSON, and boxes on a reference image that was not given, in the
    command line's words (the intent parser checks the boxes against the images too)."""
    try:
        drawn = parse_boxes(boxes)
    except InputError as exc:
        raise InputError(f"The reference boxes are not valid: {exc}") from None
    for n, box in enumerate(drawn, start=1):
        if box.image >= count:
            given = (f"only {count} reference image(s) are given ({', '.join(map(str, references))})"
                     if count else "no reference images are given")
            raise InputError(f"Reference box [{n}] is drawn on reference image {box.image + 1} "
                             f"(\"image\": {box.image}, counted from 0), but {given}: add the "
                             "image with --references, or fix the box's \"image\" index.")


def prepare_out(out: Path, overwrite: bool, inputs: Sequence[Path]) -> Path:
    """The output folder, made if missing; an earlier run's results in it are refused, or with
    ``overwrite`` removed (see the module docstring), never when an input lies inside them."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the run's results.")
    taken = [out / name for name in OUTPUTS if (out / name).exists()]
    if taken and not overwrite:
        names = ", ".join(path.name for path in taken)
        raise InputError(f"{out} already holds the results of a run ({names}); results are "
                         "never overwritten silently: choose a new --out folder, or pass "
                         "--overwrite to replace exactly these.")
    for path in taken:
        inside = [p for p in inputs if _within(Path(p), path)]
        if inside:
            raise InputError(f"--overwrite would remove {path}, which holds the input "
                             f"{inside[0]}; give the run another --out folder.")
    for path in taken:
        log.info("--overwrite: removing the earlier result %s", path)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _within(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False
