"""The models of a headless run: each loaded once, by the name its loader node would list, when
a stage first needs it, and let go when no later stage does (the captioner after captions, SAM
after detection), so a GPU holds only what is still to come. The detector and the CLIP encoder
serve detection and the reference filter, then the monitor and the final evaluation: the same
loaded objects (`loading.load_model` shares a model while anything holds it)."""

from __future__ import annotations

import logging
from typing import Any

from ..evaluation.evaluate import EvalModels
from ..evaluation.models import NO_QUALITY, load_eval_models
from ..loading import load_model
from .settings import NONE, ModelChoices, RunSettings

log = logging.getLogger(__name__)

# Family name -> the ModelChoices field naming its model.
CHOICE_OF = {"detector": "detector", "segmenter": "segmenter", "image_encoder": "image_encoder",
             "captioner": "captioner", "inpainter": "inpainter", "local_llm": "local_llm"}


class RunModels:
    """Loads and holds the run's models (see the module docstring)."""

    def __init__(self, choices: ModelChoices):
        self.choices = choices
        self._held: dict[str, Any] = {}
        self._eval: EvalModels | None = None

    def get(self, family: str) -> Any:
        """The model of ``family`` (the chosen one, else the manifest default), loaded once."""
        if family not in self._held:
            self._held[family] = load_model(family, getattr(self.choices, CHOICE_OF[family]))
        return self._held[family]

    def optional(self, family: str) -> Any | None:
        """As `get`, or None when the choice is "none" (the node's optional input left
        unconnected)."""
        name = getattr(self.choices, CHOICE_OF[family])
        return None if name is not None and name.lower() == NONE else self.get(family)

    def base_model(self) -> Any:
        """The base model, as Load Base Model for Training loads it (its precision widget)."""
        if "base_model" not in self._held:
            self._held["base_model"] = load_model("base_model", self.choices.base_model,
                                                  precision=self.choices.base_precision)
        return self._held["base_model"]

    def eval_models(self) -> EvalModels:
        """The scoring models of the monitor and the final evaluation (as the evaluate command
        loads them), loaded once."""
        if self._eval is None:
            quality = self.choices.quality
            if quality is not None and quality.lower() == NONE:
                quality = NO_QUALITY
            self._eval = load_eval_models(self.choices.detector, self.choices.identity_encoder,
                                          self.choices.image_encoder, quality,
                                          self.choices.quality_clip)
        return self._eval

    def llm(self, settings: RunSettings) -> Any | None:
        """The LLM of Intent Parse and Caption Refine: the endpoint, else the local model,
        else None (the offline parser and rules)."""
        if settings.llm is not None:
            return settings.llm
        return self.get("local_llm") if self.choices.local_llm is not None else None

    def release(self, *families: str) -> None:
        """Let go of ``families``' models: no later stage needs them."""
        for family in families:
            if self._held.pop(family, None) is not None:
                log.debug("released the %s", family)
