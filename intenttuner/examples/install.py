"""Copy the shipped example into ComfyUI's input folder, so the workflows' default widget
values (`INSTALLED_TRAIN`, `INSTALLED_REFERENCE`) name files that exist.

Never overwrites: a file already there is the user's (perhaps edited on purpose), so a
different one is left alone and named in one warning. Files are created exclusively, so two
ComfyUI processes sharing an input folder cannot write one file at the same time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .data import EXAMPLE, INSTALLED_REFERENCE, INSTALLED_TRAIN, ExampleData, shipped_example

log = logging.getLogger(__name__)


def install_examples(input_dir: Path, example: ExampleData | None = None) -> list[Path]:
    """Copy ``example`` (default: the shipped one) into ``input_dir``: its training images to
    `INSTALLED_TRAIN`, its reference image to `INSTALLED_REFERENCE`, its intent and boxes
    beside the training folder. Returns the files written (none when all are there)."""
    example = example or shipped_example()
    written, differing = [], []
    for source, target in _copies(example, Path(input_dir)):
        data = source.read_bytes()
        if _create(target, data):
            written.append(target)
        elif target.read_bytes() != data:
            differing.append(target)
    if differing:
        log.warning("IntentTuner: kept %d example file(s) you changed in %s (delete them to get "
                    "the originals back): %s", len(differing), input_dir,
                    ", ".join(str(p.relative_to(input_dir)) for p in differing))
    return written


def _copies(example: ExampleData, input_dir: Path) -> list[tuple[Path, Path]]:
    """(shipped file, where it goes) for every file of the example."""
    images = example.training_images()
    references = example.reference_images()
    if not images or not references:
        raise FileNotFoundError(f"the example in {example.root} has no training or reference "
                                "images; run scripts/make_example_data.py to write it")
    train = input_dir / INSTALLED_TRAIN
    folder = train.parent  # intenttuner_examples/milo: the intent and the boxes beside train/
    return [*((image, train / image.name) for image in images),
            (references[0], input_dir / INSTALLED_REFERENCE),
            (example.intent_file, folder / example.intent_file.name),
            (example.boxes_file, folder / f"{EXAMPLE}_boxes.json")]


def _create(target: Path, data: bytes) -> bool:
    """Write ``data`` to a new file ``target``; False when ``target`` already exists."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "xb") as file:
            file.write(data)
    except FileExistsError:
        return False
    return True
