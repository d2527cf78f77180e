"""The example data the project ships: Milo, a procedurally drawn cartoon character, so every
workflow and ``python -m intenttuner run`` work out of the box.

    from intenttuner.examples import shipped_example
    example = shipped_example()          # <repo>/examples/milo, committed
    example.images, example.reference_images(), example.boxes_text(), example.intent_text()

`write_example_data` draws the set (scripts/make_example_data.py regenerates the committed
one); `install_examples` copies it into ComfyUI's input folder (the pack does when it loads).
"""

from .data import EXAMPLE, INSTALLED_REFERENCE, INSTALLED_TRAIN, ExampleData, shipped_example
from .install import install_examples
from .write import intent_text, write_example_data

__all__ = ["EXAMPLE", "INSTALLED_REFERENCE", "INSTALLED_TRAIN", "ExampleData",
           "install_examples", "intent_text", "shipped_example", "write_example_data"]
