"""Dataset nodes: Load Training Images (a folder of photos in), Save Training Set (the augmented
items out as a kohya folder + dataset.json) and Load Training Set (any such folder back in).

Folders come from a dropdown of ComfyUI's ``input/`` subfolders or a typed path, which wins
when it is not blank (`intenttuner.dataset.folders`).
"""

from __future__ import annotations

from pathlib import Path

from ..intenttuner.dataset.folders import (
    TYPE_A_PATH,
    fingerprint,
    list_subfolders,
    resolve_folder,
)
from ..intenttuner.dataset.image_decode import DecodePolicy
from ..intenttuner.dataset.image_folder import load_image_folder
from ..intenttuner.dataset.kohya import IF_EXISTS, MAX_REPEATS, write_training_set
from ..intenttuner.dataset.kohya_read import (
    looks_like_training_set,
    read_training_set,
    training_set_fingerprint,
)
from ..intenttuner.errors import InputError
from ..intenttuner.imageio import pils_to_batch
from ..intenttuner.runtime import get_runtime
from . import types
from .schema import ROOT_CATEGORY, combo

CATEGORY = f"{ROOT_CATEGORY}/Dataset"
TRAINING_SETS = "training_sets"  # subfolder of input/ or output/ that Save Training Set uses
LOCATIONS = ("input", "output")
_PATH_TOOLTIP = ("A folder path; when not empty it wins over the dropdown. Absolute, or "
                 "relative to ComfyUI's input folder.")


def _base(location: str = "input") -> Path:
    rt = get_runtime()
    return rt.input_dir() if location == "input" else rt.output_dir()


def _folder_input(options: list[str], tooltip: str) -> dict:
    return {"folder": ([TYPE_A_PATH, *options], {"default": options[0] if options
                                                 else TYPE_A_PATH, "tooltip": tooltip}),
            "path": ("STRING", {"default": "", "tooltip": _PATH_TOOLTIP})}


def _check_folder(folder: str | None, path: str | None, what: str) -> bool | str:
    """VALIDATE_INPUTS: our message instead of ComfyUI's "Value not in list" (a workflow from
    another machine names folders this one lacks). A linked input arrives as None during
    validation; then the node checks the folder when it runs (`resolve_folder` in its body)."""
    if not isinstance(folder, str) or not isinstance(path, str):
        return True
    try:
        resolve_folder(folder, path, _base(), what)
    except InputError as exc:
        return str(exc)
    return True


class LoadTrainingImages:
    DISPLAY_NAME = "Load Training Images"
    DESCRIPTION = ("Loads every image of a folder as a list (sizes differ), with their file "
                   "names for provenance. Unusable files (not images, empty, truncated, too "
                   "small, extreme aspect ratio, decompression bombs) are skipped with the reason "
                   "and exact duplicates dropped; the report on the node lists them all. "
                   "Transparency is composited on white; EXIF rotation is applied; images "
                   "larger than max_side are downscaled.")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    OUTPUT_NODE = True  # the report shows on the node even when nothing is connected yet
    RETURN_TYPES = ("IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("images", "names", "report")
    OUTPUT_IS_LIST = (True, True, False)
    OUTPUT_TOOLTIPS = (
        "The images, a list (one IMAGE per file, each its own size), in natural file order.",
        "Each image's file name relative to the folder, in the same order (provenance).",
        "What was loaded, skipped (with reasons), dropped as duplicate and resized.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        default = DecodePolicy()
        return {"required": {
            **_folder_input(list_subfolders(_base()), "A subfolder of ComfyUI's input folder "
                                                      "(refresh the page after adding one)."),
            "recursive": ("BOOLEAN", {"default": False,
                                      "tooltip": "Also load images in subfolders."}),
            "max_side": ("INT", {
                "default": default.max_side, "min": 0, "max": 16384, "step": 64,
                "tooltip": "Longest side after loading: larger images are downscaled "
                           "(Lanczos), never upscaled. 0 keeps full size (memory!)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, folder: str | None, path: str | None):
        return _check_folder(folder, path, "image folder")

    @classmethod
    def IS_CHANGED(cls, folder: str, path: str, recursive: bool, max_side: int):
        try:
            return fingerprint(resolve_folder(folder, path, _base(), "image folder"), recursive)
        except Exception:  # noqa: BLE001 - ComfyUI reports the error when the node runs
            return float("nan")

    def load(self, folder: str, path: str, recursive: bool, max_side: int):
        directory = resolve_folder(folder, path, _base(), "image folder")
        loaded = load_image_folder(directory, recursive=recursive, max_side=max_side)
        report = loaded.report()
        images = [pils_to_batch([image]) for image in loaded.images]
        return {"ui": {"text": [report]}, "result": (images, loaded.names, report)}


class SaveTrainingSet:
    DISPLAY_NAME = "Save Training Set"
    DESCRIPTION = ("Writes the augmented items (cleaned originals and crops) as a kohya-layout "
                   "training set: <repeats>_<group>/ folders with each PNG beside its .txt "
                   "caption, plus dataset.json with every item's provenance. Repeats balance the "
                   "groups. Captions are placeholders (trigger words + concept) until Caption "
                   "Refine rewrites them. Never overwrites: an existing name gets _00002...")
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = (types.TRAINING_SET, "STRING", "STRING")
    RETURN_NAMES = ("training_set", "path", "summary")
    OUTPUT_TOOLTIPS = (
        "The set on disk (its manifest), for Caption Refine and LoRA Train.",
        "The folder written.",
        "Images per group, repeats, and warnings.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "augmented": (types.AUGMENTED, {"tooltip": "Items from IntentCrop (or "
                                                       "IntentInpaint, to train on cleaned "
                                                       "images)."}),
            "intent": (types.INTENT, {"tooltip": "The intent: trigger words for the captions, "
                                                 "stored in dataset.json without reference "
                                                 "crops."}),
            "name": ("STRING", {"default": "training_set",
                                "tooltip": "Folder name of the set (letters, digits, '_', "
                                           "'-'; other characters become '_')."}),
            "if_exists": combo(list(IF_EXISTS), "new", "When a set of this name exists: 'new' "
                               "writes <name>_00002 (then _00003...), 'error' stops. Nothing "
                               "is ever overwritten."),
            "max_repeats": ("INT", {
                "default": MAX_REPEATS, "min": 1, "max": 1000,
                "tooltip": "Cap on a group's balancing repeats (round(largest group / group "
                           "size)), so a single crop is not shown dozens of times."}),
            "repeat_multiplier": ("INT", {
                "default": 1, "min": 1, "max": 100,
                "tooltip": "Multiplies every group's repeats alike: longer epochs, same "
                           "balance."}),
            "location": combo(list(LOCATIONS), "input", "Where training_sets/<name> is "
                              "written. 'input': ComfyUI's own \"Load Image and Text Dataset "
                              "from Folder\" and Load Training Set list it in their dropdowns. "
                              "'output': beside your other outputs (load it by path)."),
        }}

    def save(self, augmented, intent, name: str, if_exists: str, max_repeats: int,
             repeat_multiplier: int, location: str):
        if location not in LOCATIONS:
            raise InputError(f"location must be one of {LOCATIONS}, got {location!r}.")
        training_set = write_training_set(augmented, intent, _base(location) / TRAINING_SETS,
                                          name, if_exists=if_exists, max_repeats=max_repeats,
                                          repeat_multiplier=repeat_multiplier)
        summary = training_set.summary()
        return {"ui": {"text": [summary]}, "result": (training_set, training_set.root, summary)}


class LoadTrainingSet:
    DISPLAY_NAME = "Load Training Set"
    DESCRIPTION = ("Loads a training set folder: one written by Save Training Set (dataset.json "
                   "checked against the files) or any kohya-layout folder made elsewhere "
                   "(repeats from <repeats>_<name> folder names, captions from .txt files).")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    OUTPUT_NODE = True
    RETURN_TYPES = (types.TRAINING_SET, "STRING")
    RETURN_NAMES = ("training_set", "summary")
    OUTPUT_TOOLTIPS = ("The set (its manifest and folder).",
                       "Images per group, repeats, and anything that does not match.")

    @classmethod
    def INPUT_TYPES(cls):
        sets = list_subfolders(_base(), looks_like_training_set)
        return {"required": _folder_input(
            sets, "Training sets in ComfyUI's input folder (folders holding dataset.json or "
                  "<repeats>_<name> subfolders). Sets saved to output: type their path.")}

    @classmethod
    def VALIDATE_INPUTS(cls, folder: str | None, path: str | None):
        return _check_folder(folder, path, "training set folder")

    @classmethod
    def IS_CHANGED(cls, folder: str, path: str):
        try:
            return training_set_fingerprint(
                resolve_folder(folder, path, _base(), "training set folder"))
        except Exception:  # noqa: BLE001 - ComfyUI reports the error when the node runs
            return float("nan")

    def load(self, folder: str, path: str):
        root = resolve_folder(folder, path, _base(), "training set folder")
        training_set = read_training_set(root)
        summary = training_set.summary()
        return {"ui": {"text": [summary]}, "result": (training_set, summary)}


NODES = [LoadTrainingImages, SaveTrainingSet, LoadTrainingSet]
