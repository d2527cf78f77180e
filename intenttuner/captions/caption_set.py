"""CaptionRefine over a whole training set: caption, refine, fit the token window, write.

    ts, report = caption_training_set(ts, captioner)                  # offline rules
    ts, report = caption_training_set(ts, captioner, llm=settings)    # the LLM, checked

Steps:

1. Read the set again from disk (`read_training_set`), so captions edited since it was written
   — in Caption Review or in a text editor — are seen: they are ``caption_source='user'`` and are
   left as they are unless ``overwrite_user_edits``.
2. Raw captions: every image the rules need (the items to refine, their source images and
   sibling crops) is captioned in batches by one captioner call. Raw captions are stored in the
   manifest with the captioner and detail that wrote them, so running again (other rules, an
   LLM, a new token limit) captions nothing unless the captioner or detail changed or
   ``recaption`` is set. Without a captioner the captions already on disk are refined (a set made
   elsewhere, or hand-written captions).
3. Refine each item (`refine_offline`, or `refine_with_llm` which falls back to it), shorten it
   to the token window (`fit_tokens`), check it (`check_caption`; a problem left is a warning),
   and write the ``.txt`` files that changed, then ``dataset.json`` once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..dataset.kohya_read import read_training_set
from ..dataset.training_set import TrainingItem, TrainingSet
from ..errors import InputError
from ..imageio import open_image, to_rgb_pil
from ..intent.schema import Intent
from ..llm import LLMSettings
from ..runtime import get_runtime
from .checks import check_caption
from .job import Refined
from .refine_offline import refine_offline
from .rules import CaptionRules
from .set_jobs import build_jobs
from .tokens import CLIP_WINDOW, clip_counter, fit_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptionSettings:
    detail: str = "detailed"  # the captioner's detail level (families.captioner.DETAILS)
    max_tokens: int = CLIP_WINDOW
    batch_size: int = 8
    overwrite_user_edits: bool = False
    recaption: bool = False  # caption again even where the manifest has a raw caption
    max_new_tokens: int | None = None  # the captioner's generation length; None: per detail


@dataclass
class ItemReport:
    image: str
    caption: str
    tokens: int
    refiner: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class CaptionReport:
    items: list[ItemReport] = field(default_factory=list)
    captioned: int = 0  # images the captioner ran on
    reused: int = 0  # raw captions taken from the manifest
    kept_user: list[str] = field(default_factory=list)  # user-edited captions left alone
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{len(self.items)} caption(s) refined; captioner ran on {self.captioned} "
                 f"image(s), {self.reused} raw caption(s) reused; {len(self.kept_user)} "
                 "edited caption(s) kept"]
        lines += [f"warning: {w}" for w in self.warnings]
        for item in self.items:
            lines.append(f"{item.image} ({item.tokens} tokens, {item.refiner}): {item.caption}")
            lines += [f"    {n}" for n in item.notes]
            lines += [f"    warning: {w}" for w in item.warnings]
        return "\n".join(lines)


def caption_training_set(training_set: TrainingSet, captioner=None, *,
                         intent: Intent | None = None, llm: LLMSettings | None = None,
                         settings: CaptionSettings = CaptionSettings()
                         ) -> tuple[TrainingSet, CaptionReport]:
    """Caption and refine ``training_set`` on disk (steps in the module docstring); returns the
    set as now on disk and a report."""
    current = read_training_set(training_set.path)
    intent = intent or _intent_of(current)
    # a set refined before under another intent: its old trigger words go from the captions
    old = (current.intent or {}).get("trigger_words") or []
    rules = CaptionRules.from_intent(intent, old_triggers=old)
    report = CaptionReport(warnings=current.all_warnings())
    todo = [item for item in current.items
            if settings.overwrite_user_edits or item.caption_source != "user"]
    report.kept_user = [item.image for item in current.items if item not in todo]
    if not todo:
        report.warnings.append("every caption is a user edit; nothing was changed (set "
                               "overwrite_user_edits to refine them again)")
        return current, report
    raw = _raw_captions(current, captioner, settings, report)
    jobs = build_jobs(current, todo, raw, rules)
    if llm is not None:
        from .refine_llm import refine_with_llm, summarise_intent

        refined = refine_with_llm(jobs, rules, llm, intent_summary=summarise_intent(intent),
                                  batch_size=settings.batch_size)
    else:
        refined = [refine_offline(job, rules) for job in jobs]
    counter = clip_counter()
    for item, job, result in zip(todo, jobs, refined, strict=True):
        tokens = fit_tokens(result, counter, settings.max_tokens)
        problems = check_caption(result.caption, job, rules)
        result.warnings += [f"check: {p}" for p in problems]
        if result.caption != item.caption or item.caption_source != "refined":
            current.set_caption(item, result.caption, source="refined")
        report.items.append(_item_report(item, result, tokens))
    current.save_manifest()
    return current, report


def _intent_of(training_set: TrainingSet) -> Intent:
    if training_set.intent is None:
        raise InputError("This training set has no intent (it was made outside IntentTuner): "
                         "connect the INTENT its captions should follow to CaptionRefine.")
    return Intent.from_data(training_set.intent, what="the training set's intent")


def _raw_captions(training_set: TrainingSet, captioner, settings: CaptionSettings,
                  report: CaptionReport) -> dict[str, str]:
    """Image path -> raw caption for every item (step 2 of the module docstring)."""
    if captioner is None:
        return _existing_captions(training_set)
    # the model, its task and length bound: raising max_new_tokens captions again
    by = captioner.settings_key(settings.detail, settings.max_new_tokens)
    stale = [item for item in training_set.items
             if settings.recaption or item.raw_caption is None or item.raw_caption_by != by]
    report.reused = len(training_set.items) - len(stale)
    if stale:
        images = [_open(training_set, item) for item in stale]
        texts = captioner.caption(images, detail=settings.detail,
                                  batch_size=settings.batch_size,
                                  max_new_tokens=settings.max_new_tokens)
        get_runtime().check_interrupted()
        for item, text in zip(stale, texts, strict=True):
            item.raw_caption, item.raw_caption_by = text, by
        report.captioned = len(stale)
    empty = [item.image for item in training_set.items if not (item.raw_caption or "").strip()]
    if empty:
        report.warnings.append(f"the captioner wrote nothing for {len(empty)} image(s): "
                               + ", ".join(empty[:5]))
    return {item.image: item.raw_caption or "" for item in training_set.items}


def _existing_captions(training_set: TrainingSet) -> dict[str, str]:
    """Without a captioner: the captions on disk, unless they are only placeholders. The
    first refine keeps each as the item's raw caption (``raw_caption_by='file'``), so refining
    again, under another intent, starts from what was on disk, not from the last refinement."""
    for item in training_set.items:
        if item.raw_caption is None and item.caption_source not in ("placeholder", "refined"):
            item.raw_caption, item.raw_caption_by = item.caption, "file"
    usable = {item.image: item.raw_caption for item in training_set.items
              if item.raw_caption and item.raw_caption.strip()}
    if not usable:
        raise InputError("This training set has no captions yet (only the trigger-word "
                         "placeholders Save Training Set writes): connect a captioner (Load "
                         "Captioner) to CaptionRefine.")
    return usable


def _open(training_set: TrainingSet, item: TrainingItem):
    path = training_set.image_path(item)
    try:
        return to_rgb_pil(open_image(path))
    except (OSError, ValueError) as exc:
        raise InputError(f"Training image {item.image} of the set at {training_set.root} cannot "
                         f"be read ({exc}); restore it or remove it from the set.") from None


def _item_report(item: TrainingItem, result: Refined, tokens: int) -> ItemReport:
    return ItemReport(item.image, result.caption, tokens, result.refiner, result.notes,
                      result.warnings)
