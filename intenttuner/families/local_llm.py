"""A local LLM: an instruction-tuned causal language model run in-process through transformers.

For users without an LLM endpoint. A model is a Hugging Face folder in ``models/LLM/<name>/``:
``config.json``, ``model.safetensors`` (or shards with ``model.safetensors.index.json``) and the
tokenizer files with a chat template, e.g. Qwen/Qwen2.5-1.5B-Instruct (the default) or
Qwen/Qwen2.5-0.5B-Instruct. Folders are opened with ``from_pretrained(local_files_only=True,
trust_remote_code=False)``: nothing is downloaded here and no code from a model folder runs.
Base (not instruction-tuned) models are refused: without a chat template they continue a
prompt instead of answering it.

    llm = FAMILY.load(models_dir / "LLM" / "Qwen2.5-1.5B-Instruct")
    llm.chat([{"role": "system", "content": "..."}, {"role": "user", "content": "..."}])

`LocalLLM` plugs in wherever an LLM endpoint does (`intenttuner.llm_chat.complete` takes either):
``model`` and ``base_url`` describe it in messages the way `LLMSettings` describes an endpoint.
Its weights go through the runtime's model manager (ComfyUI offloads them like its own
models); generation is greedy, one progress step per token, Cancel checked between tokens.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import (
    InputError,
    LLMError,
    LLMUnavailableError,
    WeightsCorruptError,
    WrongModelFamilyError,
)
from ..runtime import ManagedModel, get_runtime
from ..weights import safe_load
from ..weights.folders import MODEL_FOLDERS
from .base import Family, Package, hf_model_folder, read_json_object, resolve_dtype

log = logging.getLogger(__name__)

FOLDER = "LLM"
DEFAULT_MAX_NEW_TOKENS = 1024  # an intent or a batch of 8 captions as JSON fits
EXAMPLE = "Qwen/Qwen2.5-1.5B-Instruct (or the smaller Qwen/Qwen2.5-0.5B-Instruct)"
_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def sniff(tensor_names: Iterable[str]) -> bool:
    """Decoder-only LM weights in transformers' layout (Llama, Qwen2, Mistral, Gemma, Phi-3,
    ...): ``model.embed_tokens`` and ``model.layers.<n>.self_attn``."""
    names = list(tensor_names)
    return "model.embed_tokens.weight" in names and any(
        n.startswith("model.layers.") and ".self_attn." in n for n in names)


def load(path: str | Path, precision: str = "auto") -> LocalLLM:
    """Load the model folder ``path`` (a file inside it is accepted too).

    ``precision``: ``"auto"`` (bf16 on GPUs that support it, else fp16; fp32 on the CPU),
    ``"fp32"``, ``"fp16"`` or ``"bf16"``. Raises WrongModelFamilyError for another kind of
    model, a base model without a chat template or a folder that needs remote code;
    WeightsCorruptError for missing or unreadable files.
    """
    FAMILY.require()
    folder = model_folder(Path(path))
    config = check_folder(folder)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    runtime = get_runtime()
    dtype = llm_dtype(precision, runtime.torch_device())
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                  trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False, **dtype_kwarg(dtype))
    except (OSError, ValueError, RuntimeError, KeyError, AttributeError) as exc:
        raise WeightsCorruptError(
            f"{folder} could not be loaded as a language model ({first_line(exc)}). It needs "
            "config.json, the model.safetensors weights and the tokenizer files; download the "
            f"folder again (e.g. {EXAMPLE})."
        ) from None
    model.to(dtype).eval()
    log.info("loaded local LLM %s (%s) from %s", folder.name, dtype, folder)
    return LocalLLM(runtime.manage(model), tokenizer, folder, dtype,
                    context=int(config.get("max_position_embeddings") or 0) or None)


def llm_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on CUDA GPUs that have it (instruct LLMs are published in bf16, whose
    range fp16 lacks), else fp16 on CUDA, fp32 on the CPU; explicit choices as given."""
    if precision == "auto" and device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return resolve_dtype(precision, device)


def model_folder(path: Path) -> Path:
    """The model folder ``path`` names; a single weight file is refused, naming the family it
    belongs to when it is some other model."""
    return hf_model_folder(path, "local_llm", "local LLM", (
        "Local LLMs are Hugging Face model folders: put the whole folder (config.json, "
        f"model.safetensors, tokenizer files) in models/{FOLDER}/<name>/, e.g. {EXAMPLE}."))


def check_folder(folder: Path) -> dict:
    """Raise unless ``folder`` holds a complete instruction-tuned causal LM that transformers
    runs without remote code; returns its config."""
    config = read_json_object(folder / "config.json", "Download the model folder again.")
    tokenizer_config = read_json_object(folder / "tokenizer_config.json",
                                  "The tokenizer files are missing: download the folder again.")
    refuse_remote_code(folder, config, tokenizer_config)
    names = _tensor_names(folder)
    _check_kind(folder, config, names)
    if not ((folder / "tokenizer.json").is_file() or (folder / "tokenizer.model").is_file()
            or all((folder / n).is_file() for n in ("vocab.json", "merges.txt"))):
        raise WeightsCorruptError(
            f"{folder} is incomplete: tokenizer.json (or vocab.json and merges.txt) missing. "
            "Download the model folder again.")
    if not (tokenizer_config.get("chat_template")
            or any((folder / n).is_file() for n in _TEMPLATE_FILES)):
        raise WrongModelFamilyError(
            f"{folder} has no chat template, so it is a base model, not an instruction-tuned "
            "(instruct/chat) one: it would continue the prompt instead of answering it. Use "
            f"an instruct model, e.g. {EXAMPLE}.")
    return config


def refuse_remote_code(folder: Path, config: dict, tokenizer_config: dict,
                       example: str = EXAMPLE) -> None:
    """Raise WrongModelFamilyError when the folder needs its own Python code to run (an
    ``auto_map`` in its configs, or ``.py`` files beside them); ``example`` names a model
    to use instead."""
    markers = [f"{name} auto_map" for name, data in (("config.json", config),
                                                   ("tokenizer_config.json", tokenizer_config))
               if data.get("auto_map")]
    markers += sorted(p.name for p in folder.glob("*.py"))
    if markers:
        raise WrongModelFamilyError(
            f"{folder} needs its own Python code to run ({', '.join(markers)}: "
            "trust_remote_code), and this pack never runs code from a model folder. Use a "
            f"model that transformers supports natively, e.g. {example}.")


def _tensor_names(folder: Path) -> list[str]:
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return list(safe_load.read_safetensors_header(single)[0])
    if index.is_file():
        try:
            return list(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WeightsCorruptError(f"{index} is not a valid weight index ({exc}).") from None
    pickles = sorted(p.name for p in folder.glob("*.bin"))
    found = f" (only {', '.join(pickles)}: pickle weights are not loaded)" if pickles else ""
    raise WeightsCorruptError(
        f"{folder} has no model.safetensors or model.safetensors.index.json{found}. Download "
        "the safetensors weights of the model into this folder.")


def _check_kind(folder: Path, config: dict, names: Sequence[str]) -> None:
    """Another family's model, or a model that is no text-generation LM, is refused."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from . import guess_family

    kind = config.get("model_type") or "unknown"
    archs = ", ".join(config.get("architectures") or []) or "no architectures listed"
    other = guess_family(names)
    if other is not None and other.name != FAMILY.name:
        raise WrongModelFamilyError(
            f"{folder} holds a '{kind}' model ({archs}), not a language model. It looks like "
            f"a {other.title} model: move it to models/{other.folder} "
            f"({MODEL_FOLDERS[other.folder].purpose}).")
    if kind not in CONFIG_MAPPING_NAMES:
        import transformers

        raise WrongModelFamilyError(
            f"{folder} holds a '{kind}' model, which transformers {transformers.__version__} "
            "does not know. Upgrade transformers (python -m pip install -U transformers, with "
            f"ComfyUI's own python) or use another model, e.g. {EXAMPLE}.")
    if kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise WrongModelFamilyError(
            f"{folder} holds a '{kind}' model ({archs}), not a text-generation (causal) "
            f"language model. Put an instruction-tuned text model here, e.g. {EXAMPLE}.")


def dtype_kwarg(dtype: torch.dtype) -> dict:
    """from_pretrained's dtype keyword: ``dtype`` since transformers 4.56, ``torch_dtype``
    before (so the weights are read in the wanted dtype, never in fp32 first)."""
    import transformers
    from packaging.version import Version

    name = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    return {name: dtype}


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class LocalLLM:
    """A loaded instruction-tuned LM: `chat` answers a list of chat messages with text.

    ``model`` (the folder's name) and ``base_url`` (where it runs) name it in messages and in
    refiner/parser names (``llm:<model>``), as `LLMSettings` does for an endpoint.
    """

    def __init__(self, managed: ManagedModel, tokenizer: Any, folder: Path, dtype: torch.dtype,
                 context: int | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS):
        self._managed = managed
        self._tokenizer = tokenizer
        self._origin: LocalLLM | None = None  # the loaded model a limited copy shares
        self.folder = folder
        self.dtype = dtype
        self.context = context  # tokens the model reads at most (prompt + answer), if known
        self.max_new_tokens = max_new_tokens
        self.model = folder.name
        self.base_url = f"models/{FOLDER}/{folder.name} (in-process)"

    def with_max_new_tokens(self, max_new_tokens: int) -> LocalLLM:
        """The same loaded model answering with at most ``max_new_tokens`` tokens."""
        if max_new_tokens < 1:
            raise InputError(f"max_new_tokens {max_new_tokens} must be at least 1.")
        limited = copy.copy(self)
        limited.max_new_tokens = max_new_tokens
        limited._origin = self._origin or self  # keeps the shared, cached model alive
        return limited

    def chat(self, messages: list[dict], *, max_new_tokens: int | None = None,
             temperature: float = 0.0) -> str:
        """The assistant's answer to ``messages`` (``{"role", "content"}`` dicts, the first
        may be the system prompt): the chat template applied, then greedy decoding
        (``temperature`` 0) or sampling, until the end of the turn or ``max_new_tokens``
        (default: ``self.max_new_tokens``). Raises LLMError when generation fails
        (LLMUnavailableError when out of memory); Cancel raises the runtime's interrupt."""
        limit = max_new_tokens or self.max_new_tokens
        runtime = get_runtime()
        runtime.check_interrupted()
        prompt = self._encode(messages)
        length = prompt["input_ids"].shape[1]
        if self.context and length + limit > self.context:
            raise LLMError(
                f"The local LLM '{self.model}' reads at most {self.context} tokens, but the "
                f"prompt is {length} tokens and the answer may take {limit}. Lower "
                "max_new_tokens or the caption batch size, or shorten the description.")
        oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
        model = self._managed.load()
        try:
            with runtime.progress(total=limit, desc=f"LLM {self.model}", unit="tok") as bar, \
                    torch.inference_mode():
                output = model.generate(
                    **{k: v.to(model.device) for k, v in prompt.items()},
                    **self._generation(limit, temperature), streamer=_TokenSteps(runtime, bar))
        except oom:
            raise LLMUnavailableError(
                f"The local LLM '{self.model}' ran out of memory while answering. Use a "
                "smaller model (e.g. Qwen2.5-0.5B-Instruct), precision fp16/bf16, a smaller "
                "caption batch, or free memory by closing other models.") from None
        except (RuntimeError, ValueError, IndexError) as exc:
            raise LLMError(f"The local LLM '{self.model}' failed while answering "
                           f"({first_line(exc)}).") from None
        return self._tokenizer.decode(output[0, length:], skip_special_tokens=True).strip()

    def _encode(self, messages: list[dict]) -> dict[str, torch.Tensor]:
        """The chat template applied (as text, then tokenized: the same on transformers 4 and
        5). A template that refuses a system turn (Gemma's) gets it merged into the first
        user turn."""
        import jinja2

        try:
            text = self._tokenizer.apply_chat_template(messages, tokenize=False,
                                                       add_generation_prompt=True)
        except jinja2.TemplateError as exc:
            if not (len(messages) > 1 and messages[0]["role"] == "system"
                    and messages[1]["role"] == "user"):
                raise LLMError(f"The chat template of the local LLM '{self.model}' refused "
                               f"the messages ({exc}).") from None
            merged = {"role": "user",
                      "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}
            return self._encode([merged, *messages[2:]])
        encoded = self._tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def _generation(self, limit: int, temperature: float) -> dict:
        """generate() options: stop at any end-of-turn id the tokenizer or the folder's
        generation config names; no repetition penalty (JSON repeats its keys)."""
        defaults = self._managed.module.generation_config
        stops = defaults.eos_token_id
        stops = set(stops if isinstance(stops, list) else [stops] if stops is not None else [])
        if self._tokenizer.eos_token_id is not None:
            stops.add(self._tokenizer.eos_token_id)
        pad = self._tokenizer.pad_token_id
        options = {"max_new_tokens": limit, "eos_token_id": sorted(stops),
                   "pad_token_id": pad if pad is not None else min(stops, default=0),
                   "repetition_penalty": 1.0}
        if temperature > 0:
            return {**options, "do_sample": True, "temperature": temperature}
        return {**options, "do_sample": False, "temperature": None, "top_p": None,
                "top_k": None}


class _TokenSteps:
    """A generate() streamer (``put`` per step, ``end``): one progress step per new token,
    the runtime's Cancel checked between tokens. The first ``put`` is the prompt."""

    def __init__(self, runtime, bar):
        self._runtime, self._bar, self._prompt_seen = runtime, bar, False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self._bar.update(1)
        self._runtime.check_interrupted()

    def end(self) -> None:
        pass


def exercise(llm: LocalLLM) -> str:
    """Answer one short chat; quote the start of the answer."""
    answer = llm.chat([{"role": "system", "content": "Answer in one word."},
                       {"role": "user", "content": "Say hello."}], max_new_tokens=8)
    return f"answer {answer[:40]!r} (8 new tokens at most)"


FAMILY = Family(
    name="local_llm",
    title="local instruction-tuned LLM",
    folder=FOLDER,
    packages=(Package("transformers", "transformers"), Package("jinja2", "jinja2")),
    load=load,
    sniff=sniff,
    exercise=exercise,
)
