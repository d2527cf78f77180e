"""Where the shipped example lives and what it holds (`ExampleData`), and where the pack puts
it in ComfyUI's input folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXAMPLE = "milo"  # the shipped character
# Under ComfyUI's input/: the folder path Load Training Images' `path` widget takes.
INSTALLED_TRAIN = f"intenttuner_examples/{EXAMPLE}/train"
# Top level of input/: stock LoadImage lists only top-level files.
INSTALLED_REFERENCE = f"{EXAMPLE}_reference.png"
REPO_ROOT = Path(__file__).resolve().parents[2]  # the pack's folder (the repository root)


@dataclass(frozen=True)
class ExampleData:
    """An example folder: ``train/`` (the training images), ``references/`` (reference
    images and ``boxes.json``), ``intent.txt`` (the intent in plain words, [n] = box n)."""

    root: Path

    @property
    def images(self) -> Path:
        return self.root / "train"

    @property
    def references(self) -> Path:
        return self.root / "references"

    @property
    def boxes_file(self) -> Path:
        """Box-editor JSON: [{"image": 0, "box": [x1, y1, x2, y2], "label": ...}], pixels of
        the reference images in `reference_images` order; box n is [n]."""
        return self.references / "boxes.json"

    @property
    def intent_file(self) -> Path:
        return self.root / "intent.txt"

    def training_images(self) -> list[Path]:
        return sorted(self.images.glob("*.png"))

    def reference_images(self) -> list[Path]:
        return sorted(self.references.glob("*.png"))

    def boxes_text(self) -> str:
        return self.boxes_file.read_text(encoding="utf-8")

    def intent_text(self) -> str:
        return self.intent_file.read_text(encoding="utf-8").strip()


def shipped_example() -> ExampleData:
    """The committed example (``<repo>/examples/milo``; scripts/make_example_data.py)."""
    return ExampleData(REPO_ROOT / "examples" / EXAMPLE)
