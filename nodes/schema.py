"""Helpers that keep node schemas explicit and uniform: every input has a tooltip."""

from __future__ import annotations

from typing import Any

from ..intenttuner.families.base import Package

ROOT_CATEGORY = "IntentTuner"

PRECISION = (
    ["auto", "fp32", "fp16", "bf16"],
    {"default": "auto",
     "tooltip": "Weight precision. auto = fp16 on CUDA GPUs, fp32 on CPU. bf16 needs a recent "
                "GPU; fp32 is the safe choice if outputs look wrong."},
)


def combo(options: list[str], default: str, tooltip: str) -> tuple[list[str], dict[str, Any]]:
    return (options, {"default": default, "tooltip": tooltip})


def unavailable_note(missing: list[Package]) -> str:
    """The text put in front of a node's description when its packages are missing."""
    pips = " ".join(p.pip for p in missing)
    return (f"UNAVAILABLE: this node needs `pip install {pips}` in ComfyUI's Python "
            "(then restart ComfyUI). ")
