"""IntentTuner: intent-guided fine-tuning of text-to-image models (the ComfyUI-free library).

Import submodules directly (``from intenttuner import runtime``); nothing heavy is imported here.
"""

__version__ = "0.1.0"
