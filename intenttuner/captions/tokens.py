"""The text encoder's token window: counting with CLIP's real tokenizer and shortening.

SD 1.5 and SDXL read a prompt through CLIP's BPE tokenizer in windows of 77 tokens, two of which
are the start and end tokens; what lies beyond is cut off by trainers that do not chunk
(diffusers' scripts; kohya without ``--max_token_length``). Both models' tokenizers share one
vocabulary, which `families.sd_configs` generates offline from open_clip's merge list (the same
token ids as the Hub's ``openai/clip-vit-large-patch14``), so counting needs no download.

Shortening drops whole phrases, least important first (`Part.importance`: plain details, then
the subject, the crop's framing, and modify descriptions last; among equals the later one
goes first), never the trigger words, and reports each phrase it dropped.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from ..errors import InputError
from ..families.sd_configs import bundled_configs, write_clip_tokenizer
from .job import Refined

CLIP_WINDOW = 77  # tokens per text-encoder pass, start and end tokens included


class TokenCounter:
    """Counts tokens the way the base model's text encoder sees them."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def count(self, text: str) -> int:
        """Tokens of ``text`` including the start and end tokens (so 77 fills the window)."""
        return len(self._tokenizer(text, truncation=False)["input_ids"])


@functools.lru_cache(maxsize=1)
def clip_counter() -> TokenCounter:
    """The CLIP tokenizer of SD 1.5 / SDXL, built once per process from the bundled files."""
    from transformers import CLIPTokenizerFast

    with tempfile.TemporaryDirectory(prefix="intenttuner-clip-tokenizer-") as folder:
        write_clip_tokenizer(Path(folder), bundled_configs("sd15")["tokenizer"])
        tokenizer = CLIPTokenizerFast.from_pretrained(folder, local_files_only=True)
    return TokenCounter(tokenizer)


def fit_tokens(refined: Refined, counter: TokenCounter, max_tokens: int = CLIP_WINDOW) -> int:
    """Shorten ``refined`` in place until its caption fits ``max_tokens``; returns its final
    token count. Each dropped phrase is noted; dropping a modify description is also a warning
    (text then controls that concept less in this image)."""
    if max_tokens < 3:
        raise InputError(f"max_tokens {max_tokens} leaves no room for a caption: use 77 (one "
                         "CLIP window) or more.")
    trigger = counter.count(refined.trigger)
    if trigger > max_tokens:
        raise InputError(f"The trigger words '{refined.trigger}' alone are {trigger} tokens, "
                         f"over the {max_tokens}-token limit: use shorter trigger words.")
    start = count = counter.count(refined.caption)
    dropped: list[str] = []
    while count > max_tokens and refined.parts:
        order = sorted(range(len(refined.parts)),
                       key=lambda i: (refined.parts[i].importance, -i))
        part = refined.parts.pop(order[0])
        dropped.append(part.text)
        if part.modify:
            refined.warnings.append(f"the caption was too long, so the description of "
                                    f"{part.modify} ('{part.text}') was dropped")
        count = counter.count(refined.caption)
    if dropped:
        refined.notes.append(f"shortened from {start} to {count} tokens (limit {max_tokens}) by "
                             "dropping " + ", ".join(f"'{d}'" for d in dropped))
    return count
