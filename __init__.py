"""IntentTuner for ComfyUI: fine-tune SD1.5/SDXL LoRAs by stating what you want.

ComfyUI imports this file; it only wires up the node mappings and the web extension folder.
The pipeline itself lives in the ComfyUI-free library ``intenttuner/``.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
