"""The user's prompt pairs for fine-tuning an adapter: parsing the text they type, and turning
each pair into the token sequence the adapter learns from.

A pair is a plain prompt and the prompt the user found renders well for their model, one per
line:

    a cat on a sofa => a cat on a sofa, soft window light, highly detailed, 8k
    portrait of milo<TAB>portrait of milo, studio lighting, digital painting

An example is what Promptist was trained on and what `PromptAdapter.rephrase` feeds it: the
plain prompt with " Rephrase:", then the preferred prompt and the end-of-text token. Only the
preferred prompt and the end token are learnt (the adapter is never asked to write the plain
prompt), and the end token is what makes it stop there instead of running on to 75 tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..families.prompt_adapter import GENERATION, INPUT_SUFFIX

SEPARATOR = "=>"
FORMAT = "plain prompt => preferred prompt (or the two separated by a tab)"
IGNORE = -100  # the label torch's cross-entropy skips: inputs and padding are not learnt


class Pair(tuple):
    """(plain, preferred), remembering the line of the pairs text it came from (``line``,
    None when the pair was built in code), so a later error can point at that line."""

    line: int | None

    def __new__(cls, plain: str, preferred: str, line: int | None = None) -> Pair:
        pair = super().__new__(cls, (plain, preferred))
        pair.line = line
        return pair

    def __getnewargs__(self) -> tuple:  # copy and pickle rebuild it through __new__
        return (self[0], self[1], self.line)


def read_pairs(text: str) -> list[Pair]:
    """The pairs of ``text``, one per non-empty line, in order; ``#`` lines are comments.

    A line is split at its first "=>" (else its first tab); both sides are stripped. Exact
    duplicates are kept once (pasting a list twice must not weight it twice). Raises
    InputError naming the line for a line with no separator or an empty side.
    """
    if not isinstance(text, str):
        raise InputError(f"The pairs must be text, got {type(text).__name__}.")
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if SEPARATOR in line:
            plain, preferred = line.split(SEPARATOR, 1)
        elif "\t" in line:
            plain, preferred = line.split("\t", 1)
        else:
            raise InputError(f"Line {number} of the pairs ('{_cut(line)}') has no '=>': write "
                             f"one pair per line as {FORMAT}.")
        plain, preferred = plain.strip(), preferred.strip()
        for side, value in (("plain prompt", plain), ("preferred prompt", preferred)):
            if not value:
                raise InputError(f"Line {number} of the pairs ('{_cut(line)}') has an empty "
                                 f"{side}: write one pair per line as {FORMAT}.")
        if (plain, preferred) not in seen:
            seen.add((plain, preferred))
            pairs.append(Pair(plain, preferred, number))
    if not pairs:
        raise InputError(f"No prompt pairs to train on: write one pair per line as {FORMAT}.")
    return pairs


@dataclass(frozen=True)
class Example:
    """One pair as tokens: ``ids`` the whole sequence, ``labels`` the same ids where they are
    learnt and IGNORE where they are not (the plain prompt and " Rephrase:")."""

    ids: list[int]
    labels: list[int]


def encode_pairs(pairs: Sequence[Sequence[str]], tokenizer, max_prompt_tokens: int) -> list[
        Example]:
    """Each pair as an `Example`, checked to fit the adapter: its input no longer than
    ``max_prompt_tokens`` (what `rephrase` accepts) and its preferred prompt, with the end
    token, no longer than the rewrite `rephrase` generates (so it can be written out whole)."""
    rewrite_tokens = GENERATION["max_new_tokens"]
    eos = tokenizer.eos_token_id
    examples = []
    for number, pair in enumerate(pairs, start=1):
        plain, preferred = _sides(pair, number)
        prompt = tokenizer(plain.strip() + INPUT_SUFFIX)["input_ids"]
        target = [*tokenizer(" " + preferred.strip())["input_ids"], eos]
        where = _where(pair, number)
        if len(prompt) > max_prompt_tokens:
            raise InputError(f"{where}: the plain prompt is {len(prompt)} tokens (with "
                             f"'{INPUT_SUFFIX.strip()}'), the adapter reads at most "
                             f"{max_prompt_tokens}. Shorten it: '{_cut(plain)}'.")
        if len(target) > rewrite_tokens:
            raise InputError(f"{where}: the preferred prompt is {len(target) - 1} tokens, the "
                             f"adapter writes at most {rewrite_tokens - 1} (and its end "
                             f"token). Shorten it: '{_cut(preferred)}'.")
        examples.append(Example(prompt + target, [IGNORE] * len(prompt) + target))
    return examples


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """A right-padded batch (causal positions then start at 0 for every row, as at
    inference): ``input_ids``, ``attention_mask`` (0 on padding) and ``labels`` (IGNORE on
    padding)."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.ids)
        ids[row, :n] = torch.tensor(example.ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _sides(pair, number: int) -> tuple[str, str]:
    if (not isinstance(pair, tuple | list) or len(pair) != 2
            or not all(isinstance(s, str) and s.strip() for s in pair)):
        raise InputError(f"Pair {number} is {pair!r}: each pair is (plain prompt, preferred "
                         "prompt), two non-empty texts.")
    return pair[0], pair[1]


def _where(pair, number: int) -> str:
    line = getattr(pair, "line", None)
    return f"Pair {number}" + (f" (line {line} of the pairs)" if line is not None else "")


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
