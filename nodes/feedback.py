"""Feedback nodes: Rate Images keeps generated images with their prompts in a rating set and
shows them in a gallery on the node (``web/js/rate_images.js``), where each is marked good, bad
or skipped; Load Feedback gives any feedback set (a rating set, or a training run's monitor
marks) to what learns from it (Train Reward Model, Reward Fine-Tune).

A click in the gallery writes the mark at once (POST /intenttuner/feedback/mark): nothing is
queued. Both nodes' IS_CHANGED follow the marks file, so the next queue re-runs what learns
from the marks, and only when they changed.
"""

from __future__ import annotations

from ..intenttuner.errors import InputError
from ..intenttuner.imageio import batch_to_pils
from ..intenttuner.reward import api
from ..intenttuner.reward.feedback_set import (
    FeedbackSet,
    add_images,
    check_set_name,
    list_feedback_sets,
    open_feedback_set,
    rating_set,
    ratings_root,
)
from . import types
from .schema import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/Feedback"
DEFAULT_SET = "my_ratings"


def _one(values):
    """The single value of a list input (every input of a list node arrives as a list)."""
    if isinstance(values, list):
        return values[0] if values else None
    return values


def per_image(values: list, counts: list[int], what: str, how: str) -> list:
    """``values`` spread over the images: one value for all of them, one per image, or one per
    batch (``counts``: the images of each batch) -- a sampler run once per prompt sends one
    batch per prompt."""
    total = sum(counts)
    if len(values) == 1:
        return values * total
    if len(values) == total:
        return list(values)
    if len(values) == len(counts):
        return [value for value, count in zip(values, counts, strict=True)
                for _ in range(count)]
    raise InputError(f"Rate Images got {total} image(s) in {len(counts)} batch(es) but "
                     f"{len(values)} {what}: give one {what.rstrip('s')} for all images, one "
                     f"per image or one per batch ({how}).")


def prompt_list(prompts: list) -> list[str]:
    """The prompts input as a list: a list of prompts as it came, or one text whose non-empty
    lines are the prompts (one line: the prompt of every image)."""
    texts = [p for p in prompts if p is not None]
    if not texts:
        raise InputError("Rate Images needs the images' prompts: connect the prompt text (one "
                         "line per image, or a single prompt for all).")
    if len(texts) == 1:
        lines = [line.strip() for line in str(texts[0]).splitlines() if line.strip()]
        texts = lines or texts
    return [str(t) for t in texts]


class RateImages:
    DISPLAY_NAME = "Rate Images"
    DESCRIPTION = (
        "Keeps the images with their prompts in a feedback set and shows them in a gallery on "
        "the node: click Good, Bad or Skip under each (marks are saved at once, no queueing; "
        "they can be changed any time and survive reloads). The set lives in the output "
        "folder, intenttuner/feedback/<feedback_set>/; rating the same image with the same "
        "prompt again keeps its mark. Connect feedback to Train Reward Model.")
    CATEGORY = CATEGORY
    FUNCTION = "rate"
    OUTPUT_NODE = True  # the gallery fills even when nothing learns from it yet
    INPUT_IS_LIST = True  # prompts come as a list, images as one batch per prompt
    RETURN_TYPES = (types.FEEDBACK, "STRING")
    RETURN_NAMES = ("feedback", "summary")
    OUTPUT_TOOLTIPS = (
        "The feedback set with its current marks (read when the next node runs), for Train "
        "Reward Model or Reward Fine-Tune.",
        "How many images this run added, and the set's good / bad / unmarked counts.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": (
                    "The images to rate (VAE Decode; a batch, or one batch per prompt).")}),
                "prompts": ("STRING", {"forceInput": True, "tooltip": (
                    "The prompts the images were made from: a list, or one per line; a single "
                    "prompt applies to every image.")}),
                "feedback_set": ("STRING", {"default": DEFAULT_SET, "tooltip": (
                    "The set the images and marks go to (a plain name: letters, digits, _ "
                    "and -). Several Rate Images may share one set.")}),
            },
            "optional": {
                "seeds": ("INT", {"forceInput": True, "tooltip": (
                    "The seeds the images were made with (kept with each image): one for all, "
                    "one per image or one per batch.")}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, feedback_set=None, **_):
        """The marks file: a click in the gallery makes the next queue re-run what follows."""
        try:  # a set not made yet reads as one without marks: the first run changes nothing
            name = check_set_name(_one(feedback_set))
            return FeedbackSet(ratings_root() / name, name, "rating").fingerprint(listing=False)
        except Exception:  # noqa: BLE001 - a bad name: the run reports it
            return ""

    def rate(self, images, prompts, feedback_set, seeds=None):
        batches = [batch_to_pils(batch) for batch in images]
        counts = [len(batch) for batch in batches]
        pictures = [picture for batch in batches for picture in batch]
        if not pictures:
            raise InputError("Rate Images got no images: connect the generated images.")
        texts = per_image(prompt_list(prompts), counts, "prompts", "a list, or one per line")
        seed_list = None
        if seeds is not None and [s for s in seeds if s is not None]:
            seed_list = per_image(list(seeds), counts, "seeds", "a list of seeds")
        fs = rating_set(_one(feedback_set))
        before = len(fs.listing())
        added = add_images(fs, pictures, texts, seed_list)
        items = {item.image: item for item in fs.items()}
        entries, shown = [], set()
        for image in added:  # an image given twice is shown once
            if image in shown:
                continue
            shown.add(image)
            item = items[image]
            entries.append({"image": image, "prompt": item.prompt, "mark": item.mark,
                            "seed": item.seed, **api.view_ref(fs, image)})
        new = len(fs.listing()) - before
        summary = (f"{len(entries)} image(s) to rate ({new} new). {fs.summary()} Mark them "
                   "in the gallery on this node.")
        ui = {"it_rate": entries, "it_rate_set": [fs.label], "text": [summary]}
        return {"ui": ui, "result": (fs, summary)}


class LoadFeedback:
    DISPLAY_NAME = "Load Feedback"
    DESCRIPTION = (
        "A feedback set to learn from: a rating set of Rate Images, or a training run's marks "
        "from its monitor panel ('run:<run>'). The list shows the sets that exist when the "
        "page loads (reload the page to see new ones).")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (types.FEEDBACK, "STRING")
    RETURN_NAMES = ("feedback", "summary")
    OUTPUT_TOOLTIPS = (
        "The feedback set with its current marks, for Train Reward Model or Reward Fine-Tune.",
        "The set's good / bad / unmarked counts.",
    )
    NOTHING = "(no feedback yet)"

    @classmethod
    def INPUT_TYPES(cls):
        names = [entry["name"] for entry in list_feedback_sets()] or [cls.NOTHING]
        return {"required": {"feedback_set": (names, {"tooltip": (
            "Rating sets (Rate Images' feedback_set), then training runs with marks "
            "(run:<run>), the newest first.")})}}

    @classmethod
    def VALIDATE_INPUTS(cls, feedback_set: str):
        """Replaces ComfyUI's "Value not in list" (a set made after the page loaded is fine)."""
        try:
            open_feedback_set(cls._checked(feedback_set))
        except InputError as exc:
            return str(exc)
        return True

    @classmethod
    def IS_CHANGED(cls, feedback_set: str):
        try:
            return open_feedback_set(feedback_set).fingerprint()
        except Exception:  # noqa: BLE001 - ComfyUI reports the error when the node runs
            return float("nan")

    def load(self, feedback_set: str):
        fs = open_feedback_set(self._checked(feedback_set))
        summary = fs.summary()
        return {"ui": {"text": [summary]}, "result": (fs, summary)}

    @classmethod
    def _checked(cls, feedback_set: str) -> str:
        if feedback_set == cls.NOTHING:
            raise InputError("There is no feedback yet: queue Rate Images with generated images "
                             "and their prompts and mark them, or mark samples in a training "
                             "monitor; then reload the page and choose the set here.")
        return feedback_set


NODES = [RateImages, LoadFeedback]
