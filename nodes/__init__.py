"""ComfyUI node classes: thin adapters over the ``intenttuner`` library.

Importing this package installs the ComfyUI runtime and copies the example data into ComfyUI's
input folder (both only when running inside ComfyUI), and builds the node mappings. Nothing
heavy is imported here: nodes whose optional packages are missing are still registered (saved
workflows keep loading) but say so in their description, and fail with an install hint when
run.
"""

from __future__ import annotations

import logging

from ..intenttuner.examples import install_examples
from ..intenttuner.families.base import missing_packages
from ..intenttuner.runtime import get_runtime
from . import comfy_bridge
from .augment import NODES as AUGMENT_NODES
from .captions import NODES as CAPTION_NODES
from .captions_review import NODES as CAPTION_REVIEW_NODES
from .dataset import NODES as DATASET_NODES
from .detect import NODES as DETECT_NODES
from .evaluation import NODES as EVALUATION_NODES
from .evaluation_report import NODES as EVALUATION_REPORT_NODES
from .feedback import NODES as FEEDBACK_NODES
from .inpaint import NODES as INPAINT_NODES
from .intent import NODES as INTENT_NODES
from .loaders import NODES as LOADER_NODES
from .monitor import NODES as MONITOR_NODES
from .prompt_adapt import NODES as PROMPT_ADAPT_NODES
from .reward import NODES as REWARD_NODES
from .reward_finetune import NODES as REWARD_FINETUNE_NODES
from .schema import unavailable_note
from .training import NODES as TRAINING_NODES

log = logging.getLogger(__name__)


def _install_examples() -> None:
    """Copy the example data into ComfyUI's input folder, so the shipped workflows run out of
    the box. A convenience: whatever goes wrong is a warning, never a pack that fails to load."""
    try:
        input_dir = get_runtime().input_dir()
        written = install_examples(input_dir)
    except Exception as exc:  # noqa: BLE001 - e.g. a read-only input folder
        log.warning("IntentTuner: could not copy the example data into the input folder: %s",
                    exc)
        return
    if written:
        log.info("IntentTuner: copied the example data (%d files) into %s", len(written),
                 input_dir)


if comfy_bridge.install():  # inside ComfyUI only: a plain import must not write files
    _install_examples()

ALL_NODES = [*LOADER_NODES, *INTENT_NODES, *DETECT_NODES, *AUGMENT_NODES,
             *INPAINT_NODES, *DATASET_NODES, *CAPTION_NODES,
             *CAPTION_REVIEW_NODES, *TRAINING_NODES, *MONITOR_NODES, *EVALUATION_NODES,
             *EVALUATION_REPORT_NODES, *PROMPT_ADAPT_NODES, *FEEDBACK_NODES, *REWARD_NODES,
             *REWARD_FINETUNE_NODES]


def _missing_packages(cls) -> list:
    requires = getattr(cls, "requires", None)
    return missing_packages(requires() if requires else ())


def _build_mappings() -> tuple[dict, dict]:
    classes, names, missing_by_pip = {}, {}, {}
    for cls in ALL_NODES:
        node_id = f"IntentTuner{cls.__name__.removesuffix('Node')}"
        missing = _missing_packages(cls)
        if missing:
            cls.DESCRIPTION = unavailable_note(missing) + cls.DESCRIPTION
            for p in missing:
                missing_by_pip.setdefault(p.pip, []).append(cls.DISPLAY_NAME)
        classes[node_id] = cls
        names[node_id] = cls.DISPLAY_NAME
    for pip, nodes in missing_by_pip.items():
        log.warning("IntentTuner: %s unavailable until you run `pip install %s` in ComfyUI's "
                    "Python; the rest of the pack works.", ", ".join(nodes), pip)
    return classes, names


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = _build_mappings()
