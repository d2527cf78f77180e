"""Adapt a list of plain prompts with a Promptist-style adapter or an LLM, keeping the intent.

`adapt_prompts` returns one prompt per input, in order, always: the list is paired with a seeds
list downstream, so an item that cannot or should not be adapted keeps its plain prompt (with a
status and a note saying why) instead of being dropped. Each item ends in one status:

- "adapted": the backend's rewrite, used as is;
- "repaired": the rewrite lost or added something against the intent, and `preserve.repair`
  fixed it (the notes say what it changed);
- "kept": the plain prompt, because the rewrite could not be repaired, the LLM's answer was
  unusable, or Promptist cannot read the prompt's language (it was trained on English);
- "unchanged": the backend returned nothing, or the plain prompt again;
- "empty": an empty item among others, passed through.

What is refused outright (`InputError`, before any generation): no prompts at all, an item that
is not text, a prompt longer than Promptist's context leaves room for, a backend that is
neither an adapter nor an LLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..captions.rules import CaptionRules
from ..errors import InputError
from ..intent.language import foreign_language
from ..intent.schema import Intent
from ..llm import LLMSettings
from .llm_rewrite import rewrite_with_llm
from .preserve import KEPT_PLAIN, check_rewrite, repair

STATUSES = ("adapted", "repaired", "unchanged", "kept", "empty")
NOTHING_NEW = "the adapter returned nothing new"
_SHOWN = 120  # characters of each prompt in the summary


@dataclass
class AdaptedPrompt:
    index: int  # 1-based, as the user counts the items
    plain: str
    adapted: str  # the prompt to use (the plain one unless status is adapted / repaired)
    status: str  # one of STATUSES
    notes: list[str] = field(default_factory=list)


@dataclass
class AdaptResult:
    prompts: list[str]  # same length and order as the input
    items: list[AdaptedPrompt]
    backend: str  # "promptist:<name>" or "llm:<model>"

    @property
    def changed(self) -> int:
        """How many prompts differ from their plain prompt."""
        return sum(item.status in ("adapted", "repaired") for item in self.items)

    def summary(self) -> str:
        """A header with the counts, a line for each item that was not plainly adapted, then
        each prompt pair (truncated)."""
        counts = ", ".join(f"{n} {status}" for status in STATUSES
                           if (n := sum(i.status == status for i in self.items)))
        lines = [f"Adapted {self.changed} of {len(self.items)} prompt(s) with {self.backend} "
                 f"({counts})."]
        lines += [f"- prompt {i.index}: {i.status}: {'; '.join(i.notes)}" if i.notes else
                  f"- prompt {i.index}: {i.status}"
                  for i in self.items if i.status != "adapted" or i.notes]
        for item in self.items:
            lines.append(f"{item.index}. {_short(item.plain) or '(empty)'}")
            if item.adapted != item.plain:
                lines.append(f"   -> {_short(item.adapted)}")
        return "\n".join(lines)


def adapt_prompts(prompts: str | Sequence[str], backend: Any, intent: Intent | None = None,
                  *, batch_size: int = 8) -> AdaptResult:
    """Adapt ``prompts`` (one string, or a list) with ``backend``: a `PromptAdapter` (anything
    with ``rephrase``) or a ChatLLM (`LLMSettings`, or a local model with ``chat``). With an
    ``intent``, every rewrite is checked and repaired against it (`preserve`)."""
    items = _items(prompts)
    kind, name = _backend(backend)
    if batch_size < 1:
        raise InputError(f"batch_size {batch_size} must be 1 or more.")
    results = [AdaptedPrompt(i, p, p, "empty", ["passed through unchanged"])
               for i, p in enumerate(items, 1)]
    todo: list[AdaptedPrompt] = []
    for item in results:
        if not item.plain.strip():
            continue
        language = foreign_language(item.plain)
        if language and kind == "promptist":
            item.status = "kept"
            item.notes = [f"written in {language}: Promptist was trained on English prompts; "
                          "use an LLM backend"]
            continue
        item.status, item.notes = "adapted", []
        if language:
            item.notes.append(f"written in {language}: the LLM was asked to answer in English")
        todo.append(item)
    rules = CaptionRules.from_intent(intent) if intent is not None else None
    reasons: dict[int, str] = {}
    if kind == "promptist":
        _check_lengths(todo, backend)
        rewrites = list(backend.rephrase([i.plain for i in todo], batch_size=batch_size)) \
            if todo else []
    else:
        rewrites = rewrite_with_llm([i.plain for i in todo], backend, rules,
                                    batch_size=batch_size, reasons=reasons)
    for n, (item, rewrite) in enumerate(zip(todo, rewrites, strict=True)):
        if rewrite is None:
            item.status = "kept"
            item.notes.append(f"{reasons.get(n, 'the LLM gave no rewrite')}; "
                              "kept the plain prompt")
        else:
            _judge(item, " ".join(rewrite.split()), rules)
    return AdaptResult([i.adapted for i in results], results, f"{kind}:{name}")


def _items(prompts: str | Sequence[str]) -> list[str]:
    """The prompts as a list of strings; InputError for what is not one."""
    if isinstance(prompts, str):
        prompts = [prompts]
    elif not isinstance(prompts, Sequence):
        raise InputError(f"prompts must be text or a list of texts, not "
                         f"{type(prompts).__name__}.")
    items = list(prompts)
    for i, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise InputError(f"prompt item {i} is a {type(item).__name__} ({item!r:.60}), not "
                             "text: give every prompt as a string.")
    if not any(item.strip() for item in items):
        raise InputError("prompts are empty: connect a prompt list (e.g. the evaluation "
                         "prompts) or type at least one prompt.")
    return items


def _backend(backend: Any) -> tuple[str, str]:
    """("promptist", adapter name) or ("llm", model name) for ``backend``."""
    if hasattr(backend, "rephrase"):
        return "promptist", str(getattr(backend, "name", "adapter"))
    if isinstance(backend, LLMSettings) or hasattr(backend, "chat"):
        return "llm", str(backend.model)
    raise InputError(f"The prompt adapter backend is a {type(backend).__name__}: connect a Load "
                     "Prompt Adapter (Promptist) or an LLM (LLM Endpoint, Load Local LLM).")


def _check_lengths(todo: list[AdaptedPrompt], adapter: Any) -> None:
    """Refuse the first prompt too long for the adapter, before anything is generated."""
    limit = adapter.max_prompt_tokens
    for item in todo:
        tokens = adapter.count_tokens(item.plain)
        if tokens > limit:
            raise InputError(
                f"prompt item {item.index} is {tokens} tokens long, over the {limit} the "
                f"adapter '{adapter.name}' can read (its context leaves room for its rewrite): "
                "shorten it, or use an LLM backend.")


def _judge(item: AdaptedPrompt, rewrite: str, rules: CaptionRules | None) -> None:
    """Set ``item``'s prompt, status and notes from the backend's ``rewrite``."""
    if not rewrite or rewrite.lower() == " ".join(item.plain.split()).lower():
        item.status = "unchanged"
        item.notes.append(NOTHING_NEW)
        return
    problems = check_rewrite(item.plain, rewrite, rules) if rules is not None else []
    if not problems:
        item.adapted = rewrite
        return
    item.adapted, changes = repair(item.plain, rewrite, rules)
    if changes[-1] == KEPT_PLAIN:
        item.status = "kept"
        item.notes += [f"the rewrite '{_short(rewrite)}' fails the intent: "
                       + "; ".join(problems), *changes]
    elif item.adapted.lower() == " ".join(item.plain.split()).lower():
        item.status = "unchanged"  # the repair undid all the rewrite changed
        item.notes += [*changes, NOTHING_NEW]
    else:
        item.status = "repaired"
        item.notes += changes


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3].rstrip() + "..."
