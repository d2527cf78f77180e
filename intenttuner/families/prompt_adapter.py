"""A prompt adapter: a GPT-2 language model that rewrites plain prompts into the style a
Stable Diffusion model renders well (Promptist, Hao et al., "Optimizing Prompts for
Text-to-Image Generation", NeurIPS 2023).

A model is a Hugging Face GPT-2 folder in ``models/prompt_adapters/<name>/``: ``config.json``
(``model_type`` "gpt2"), ``model.safetensors`` (or ``pytorch_model.bin``, read only through
``torch.load(weights_only=True)``) and GPT-2's tokenizer (``tokenizer.json``, or ``vocab.json``
with ``merges.txt``). The default is microsoft/Promptist (0.5 GB). The model is built from its
config and filled with the weights here: no ``from_pretrained``, so no code from the folder
runs and no file outside it is read. Chat models (with a chat template) belong to Load Local
LLM, as an LLM backend, and are refused with that advice.

Rewriting follows the paper's demo: the input is ``prompt.strip() + " Rephrase:"``, decoded
with beam search (8 beams, at most 75 new tokens, length penalty -1, no sampling); the best
beam's continuation is the rewrite. Batches are left-padded, so a batch rewrites each prompt
exactly as it would alone.

    adapter = FAMILY.load(models_dir / "prompt_adapters" / "Promptist")
    adapter.rephrase(["a cat sitting on a windowsill"])  # ['a cat sitting on ..., highly ...']

`save_adapter` writes a fine-tuned model back in the same layout, with its training metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, WeightsCorruptError
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from .base import Family, Package, read_json_object, resolve_dtype
from .prompt_adapter_files import (
    FOLDER,
    METADATA_FILE,
    REDOWNLOAD,
    check_folder,
    check_kind,
    load_tokenizer,
    load_weights,
    model_folder,
    save_adapter,
    sniff,
    weights_file,
)

log = logging.getLogger(__name__)

INPUT_SUFFIX = " Rephrase:"  # what Promptist was trained to continue with the rewrite
# The paper's decoding; num_return_sequences 1 returns the best beam (the demo's first of 8).
GENERATION = {"do_sample": False, "num_beams": 8, "max_new_tokens": 75,
              "length_penalty": -1.0, "num_return_sequences": 1}


def load(path: str | Path, precision: str = "auto") -> PromptAdapter:
    """Load the GPT-2 folder ``path`` (a file inside it is accepted too).

    ``precision``: ``"auto"`` (fp16 on CUDA, where GPT-2 runs fine, fp32 elsewhere),
    ``"fp32"``, ``"fp16"`` or ``"bf16"``. Raises WrongModelFamilyError for another kind of
    model, a chat model or a folder that needs remote code; WeightsCorruptError for missing,
    unreadable or mismatched files.
    """
    FAMILY.require()
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    folder = model_folder(Path(path))
    config = check_folder(folder)
    weights = weights_file(folder)
    names = safe_load.tensor_names(weights)
    check_kind(folder, config, names)
    tokenizer = load_tokenizer(folder)
    gpt2_config = GPT2Config.from_dict(config)
    if len(tokenizer) > gpt2_config.vocab_size:
        raise WeightsCorruptError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model only "
            f"{gpt2_config.vocab_size}, so they are not from the same model. {REDOWNLOAD}")
    model = GPT2LMHeadModel(gpt2_config)
    load_weights(model, safe_load.load_state_dict(weights), weights)
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_dict(
            read_json_object(folder / "generation_config.json", REDOWNLOAD))
    runtime = get_runtime()
    dtype = resolve_dtype(precision, runtime.torch_device())
    model.to(dtype).eval()
    metadata = (read_json_object(folder / METADATA_FILE, "Train the adapter again.")
                if (folder / METADATA_FILE).is_file() else {})
    log.info("loaded prompt adapter %s (%s) from %s", folder.name, dtype, folder)
    return PromptAdapter(runtime.manage(model), tokenizer, folder, dtype,
                         int(gpt2_config.n_positions), metadata)


class PromptAdapter:
    """A loaded Promptist-style GPT-2: `rephrase` rewrites plain prompts.

    ``name`` is the folder's name (``promptist:<name>`` in reports), ``context`` the tokens
    the model reads at most (prompt + rewrite), ``metadata`` what `save_adapter` recorded
    about a fine-tuned adapter ({} for a downloaded one). ``tokenizer`` is the model's
    (left-padding) tokenizer; `module` returns the torch model on its compute device.
    """

    def __init__(self, managed: ManagedModel, tokenizer: Any, folder: Path, dtype: torch.dtype,
                 context: int, metadata: dict | None = None):
        self._managed = managed
        self.tokenizer = tokenizer
        self.folder = folder
        self.name = folder.name
        self.dtype = dtype
        self.context = context
        self.metadata = dict(metadata or {})

    def module(self) -> torch.nn.Module:
        """The GPT2LMHeadModel, loaded on the compute device (the host may offload it later)."""
        return self._managed.load()

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for ``text``: ``text.strip() + " Rephrase:"``."""
        return len(self.tokenizer(text.strip() + INPUT_SUFFIX)["input_ids"])

    @property
    def max_prompt_tokens(self) -> int:
        """The longest input (`count_tokens`) that leaves room for a full rewrite."""
        return self.context - GENERATION["max_new_tokens"]

    def rephrase(self, prompts: Sequence[str], *, batch_size: int = 8,
                 num_beams: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        """The rewrite of each prompt, in order: the decoded continuation of the best beam,
        special tokens skipped, stripped (it may be empty, or the prompt itself).

        ``batch_size`` prompts are decoded at once (left-padded: the same rewrites as one at a
        time); ``num_beams`` and ``max_new_tokens`` override the paper's 8 and 75. Raises InputError for an empty prompt
        or one longer than `max_prompt_tokens`, before any generation. One progress step per
        generated token position of each batch; Cancel is checked at every one.
        """
        if batch_size < 1:
            raise InputError(f"batch_size {batch_size} must be at least 1.")
        beams = GENERATION["num_beams"] if num_beams is None else num_beams
        if beams < 1:
            raise InputError(f"num_beams {beams} must be at least 1.")
        texts = self._inputs(prompts)
        if not texts:
            return []
        runtime = get_runtime()
        runtime.check_interrupted()
        steps = GENERATION["max_new_tokens"] if max_new_tokens is None else max_new_tokens
        if not 1 <= steps <= GENERATION["max_new_tokens"]:
            raise InputError(f"max_new_tokens {steps} must be between 1 and "
                             f"{GENERATION['max_new_tokens']} (the room a prompt leaves).")
        batches = [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)]
        model = self._managed.load()
        rewrites: list[str] = []
        with runtime.progress(total=steps * len(batches), desc=f"Promptist {self.name}",
                              unit="tok") as bar, torch.inference_mode():
            for batch in batches:
                rewrites += self._generate(model, batch, beams, steps, runtime, bar)
        return rewrites

    def _inputs(self, prompts: Sequence[str]) -> list[str]:
        """The model's input texts; every prompt checked first."""
        if isinstance(prompts, str):
            prompts = [prompts]
        texts = []
        for number, prompt in enumerate(prompts, start=1):
            if not isinstance(prompt, str) or not prompt.strip():
                raise InputError(f"Prompt {number} is empty ({prompt!r}): give every prompt "
                                 "some words, or leave it out.")
            count = self.count_tokens(prompt)
            if count > self.max_prompt_tokens:
                raise InputError(
                    f"Prompt {number} is {count} tokens long (with '{INPUT_SUFFIX.strip()}'); "
                    f"the prompt adapter '{self.name}' reads at most {self.max_prompt_tokens} "
                    f"before its rewrite. Shorten it: '{prompt[:60]}...'")
            texts.append(prompt.strip() + INPUT_SUFFIX)
        return texts

    def _generate(self, model: torch.nn.Module, texts: list[str], beams: int, limit: int,
                  runtime, bar) -> list[str]:
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True)
        length = encoded["input_ids"].shape[1]
        steps = _step_criteria(runtime, bar)
        options = {**GENERATION, "num_beams": beams, "max_new_tokens": limit}
        if beams == 1:
            del options["length_penalty"]  # a beam-search setting: greedy warns about it
        from transformers import StoppingCriteriaList

        output = model.generate(
            input_ids=encoded["input_ids"].to(model.device),
            attention_mask=encoded["attention_mask"].to(model.device),
            eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([steps]), **options)
        bar.update(limit - steps.count)  # all beams ended early
        return [self.tokenizer.decode(row[length:], skip_special_tokens=True).strip()
                for row in output]


def _step_criteria(runtime, bar):
    """A generate() stopping criterion that never stops: one progress step per generated
    token position, the runtime's Cancel checked at each (beam search takes no streamer)."""
    from transformers import StoppingCriteria

    class Steps(StoppingCriteria):
        count = 0

        def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
            self.count += 1
            bar.update(1)
            runtime.check_interrupted()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return Steps()


def exercise(adapter: PromptAdapter) -> str:
    """Rewrite one short prompt, briefly (2 beams, 8 tokens: a check that it runs, which the
    smoke command and the host tests do for every family); quote the start of the rewrite."""
    (rewrite,) = adapter.rephrase(["a cat"], num_beams=2, max_new_tokens=8)
    return f"rewrite {rewrite[:40]!r} of 'a cat' (2 beams, 8 new tokens at most)"


FAMILY = Family(
    name="prompt_adapter",
    title="prompt adapter (Promptist-style GPT-2)",
    folder=FOLDER,
    packages=(Package("transformers", "transformers"),),
    load=load,
    sniff=sniff,
    exercise=exercise,
)


__all__ = ["FAMILY", "GENERATION", "INPUT_SUFFIX", "PromptAdapter", "exercise", "load",
           "save_adapter", "sniff"]
