"""The one entry point for turning a description (and reference boxes) into an Intent.

    intent = parse_intent("Keep his face. No necklace.", images, boxes_json, llm=None)

Without an LLM the offline parser runs. With one, its failures are errors unless
``on_llm_failure="offline"`` asks for the offline parser instead (the intent's notes then say
so). Sentences neither parser could place are an error by default (``on_unplaced="error"``):
an intent that silently ignores part of what the user asked for would train the wrong model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PIL import Image

from ..errors import InputError, LLMError
from ..llm import LLMSettings
from . import notes
from .llm_parse import parse_with_llm
from .offline import parse_offline
from .references import build_references, parse_boxes
from .schema import Intent

log = logging.getLogger(__name__)

ON_UNPLACED = ("error", "list")
ON_LLM_FAILURE = ("error", "offline")


def parse_intent(description: str, images: Sequence[Image.Image] = (), boxes: str = "",
                 llm: LLMSettings | None = None, *, on_unplaced: str = "error",
                 on_llm_failure: str = "error", llm_mode: str = "auto") -> Intent:
    """Parse ``description`` with reference ``images`` and ``boxes`` (JSON, see
    `references.parse_boxes`) into a validated Intent."""
    _check_choice("on_unplaced", on_unplaced, ON_UNPLACED)
    _check_choice("on_llm_failure", on_llm_failure, ON_LLM_FAILURE)
    references = build_references(images, parse_boxes(boxes))
    if llm is None:
        intent = parse_offline(description, references)
    else:
        intent = _parse_with_fallback(description, references, llm, on_llm_failure, llm_mode)
    if intent.unplaced and on_unplaced == "error":
        listed = "\n".join(f"  - {s}" for s in intent.unplaced)
        raise InputError(
            f"These parts of the description could not be turned into keep / change / remove "
            f"instructions:\n{listed}\nRephrase them (e.g. 'keep the ...', 'the ... should be "
            "changeable', 'no ...'), delete them, or set on_unplaced to 'list' to go on "
            "without them.")
    return intent


def _parse_with_fallback(description: str, references, llm: LLMSettings, on_llm_failure: str,
                         llm_mode: str) -> Intent:
    try:
        return parse_with_llm(description, references, llm, mode=llm_mode)
    except LLMError as exc:
        if on_llm_failure != "offline":
            raise
        log.warning("LLM parsing failed, using the offline parser: %s", exc)
        intent = parse_offline(description, references)
        intent.notes.insert(0, notes.llm_fallback(llm.model, llm.base_url, str(exc)))
        return intent


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{name} '{value}' is not one of {', '.join(choices)}.")
