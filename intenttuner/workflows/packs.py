"""Which custom node pack a node type comes from, so a missing node can be named with the pack to
install. Only this pack and a few widely used ones are known; the rest are None."""

from __future__ import annotations

THIS_PACK = "ComfyUI-IntentTuner"
# (prefix of the class type, pack); the first match wins.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("IntentTuner", THIS_PACK),
    ("VHS_", "ComfyUI-VideoHelperSuite"),
    ("ADE_", "ComfyUI-AnimateDiff-Evolved"),
    ("ACN_", "ComfyUI-Advanced-ControlNet"),
    ("IPAdapter", "ComfyUI_IPAdapter_plus"),
    ("Impact", "ComfyUI-Impact-Pack"),
    ("easy ", "ComfyUI-Easy-Use"),
    ("CR ", "ComfyUI_Comfyroll_CustomNodes"),
    ("LayerMask: ", "ComfyUI_LayerStyle"),
    ("LayerStyle: ", "ComfyUI_LayerStyle"),
    ("LayerUtility: ", "ComfyUI_LayerStyle"),
    ("Florence2", "ComfyUI-Florence2"),
    ("DownloadAndLoadFlorence2", "ComfyUI-Florence2"),
)
# (suffix of the class type, pack): packs that mark their nodes at the end of the name.
SUFFIXES: tuple[tuple[str, str], ...] = (
    ("(rgthree)", "rgthree-comfy"),
    ("(segment anything)", "comfyui_segment_anything"),
    ("(Efficient)", "efficiency-nodes-comfyui"),
    ("|pysssss", "ComfyUI-Custom-Scripts"),
)


def pack_of(class_type: str) -> str | None:
    """The pack that provides ``class_type``, when it is one this module knows."""
    for prefix, pack in PREFIXES:
        if class_type.startswith(prefix):
            return pack
    for suffix, pack in SUFFIXES:
        if class_type.endswith(suffix):
            return pack
    return None


def not_installed(class_type: str) -> str:
    """The message for a node type the server does not have: the pack to install, if known."""
    pack = pack_of(class_type)
    if pack is not None:
        return f"{class_type} is not installed (pack: {pack}) — install or update that pack"
    return (f"{class_type} is not installed, and its pack is not known here — install the "
            "custom node pack that provides it (ComfyUI-Manager: Install Missing Custom "
            "Nodes) or update ComfyUI")
