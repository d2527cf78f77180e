"""The files of a prompt adapter folder (Promptist's layout): the checks that refuse what is
not a plain GPT-2 with GPT-2's tokenizer, reading the tokenizer and the weights, and writing a
new (fine-tuned) adapter folder. `intenttuner.families.prompt_adapter` is the family itself.

A folder holds ``config.json`` (``model_type`` "gpt2"), ``model.safetensors`` (or
``pytorch_model.bin``, read only through ``torch.load(weights_only=True)``), ``tokenizer.json``
(or ``vocab.json`` with ``merges.txt``), optionally ``generation_config.json`` and, for an
adapter trained here, ``intenttuner_adapter.json`` (its training metadata). Nothing here calls
``from_pretrained``: no code from the folder runs and no file outside it is read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, WeightsCorruptError, WrongModelFamilyError
from ..weights.folders import MODEL_FOLDERS
from .base import hf_model_folder, read_json_object
from .local_llm import first_line, refuse_remote_code

log = logging.getLogger(__name__)

FAMILY_NAME = "prompt_adapter"
FOLDER = "prompt_adapters"
SOURCE = "microsoft/Promptist"
REDOWNLOAD = f"Download the prompt adapter folder again (e.g. {SOURCE})."
MODEL_TYPE = "gpt2"
EOS = "<|endoftext|>"  # GPT-2's bos, eos and unknown token; the padding too
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
METADATA_FILE = "intenttuner_adapter.json"
_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
_PREFIX = "transformer."  # GPT2LMHeadModel's names; bare GPT2Model checkpoints lack it
_LEGACY_BUFFERS = (".attn.bias", ".attn.masked_bias")  # causal masks older versions saved


def sniff(tensor_names: Iterable[str]) -> bool:
    """GPT-2 weights: the token embedding ``wte`` (or its tied copy ``lm_head``) and the first
    block's fused attention ``h.0.attn.c_attn``, with or without the ``transformer.`` prefix."""
    names = {n.removeprefix(_PREFIX) for n in tensor_names}
    return ("wte.weight" in names or "lm_head.weight" in names) and \
        "h.0.attn.c_attn.weight" in names


def model_folder(path: Path) -> Path:
    """The model folder ``path`` names; a single weight file is refused, naming the family it
    belongs to when it is another kind of model."""
    return hf_model_folder(path, FAMILY_NAME, "prompt adapter", (
        "Prompt adapters are Hugging Face GPT-2 folders: put the whole folder (config.json, "
        "model.safetensors, tokenizer.json, vocab.json) in "
        f"models/{FOLDER}/<name>/, e.g. {SOURCE}."))


def check_folder(folder: Path) -> dict:
    """Raise unless ``folder``'s config is readable, needs no remote code and is no chat
    model's; returns the config (the weights and tokenizer are checked as they load)."""
    config = read_json_object(folder / "config.json", REDOWNLOAD)
    tokenizer_path = folder / "tokenizer_config.json"  # Promptist has none; others may
    tokenizer_config = (read_json_object(tokenizer_path, REDOWNLOAD)
                        if tokenizer_path.is_file() else {})
    refuse_remote_code(folder, config, tokenizer_config, example=SOURCE)
    if (tokenizer_config.get("chat_template")
            or any((folder / n).is_file() for n in _TEMPLATE_FILES)):
        raise WrongModelFamilyError(
            f"{folder} has a chat template: this is a chat model, not a prompt adapter. Put it "
            "in models/LLM, use Load Local LLM and connect it as the LLM backend.")
    return config


def weights_file(folder: Path) -> Path:
    found = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if found is None:
        raise WeightsCorruptError(
            f"{folder} has a config.json but no weights ({' or '.join(WEIGHT_FILES)}). The "
            f"download is incomplete: {REDOWNLOAD}")
    return found


def check_kind(folder: Path, config: dict, names: Sequence[str]) -> None:
    """Another family's model, or a language model that is not GPT-2, is refused."""
    from . import guess_family

    kind = config.get("model_type") or "unknown"
    if kind == MODEL_TYPE and sniff(names):
        return
    archs = ", ".join(config.get("architectures") or []) or "no architectures listed"
    other = guess_family(names)
    if other is not None and other.name != FAMILY_NAME:
        raise WrongModelFamilyError(
            f"{folder} holds a '{kind}' model ({archs}), not a prompt adapter. It looks like "
            f"a {other.title} model: move it to models/{other.folder} "
            f"({MODEL_FOLDERS[other.folder].purpose}).")
    if kind != MODEL_TYPE:
        raise WrongModelFamilyError(
            f"{folder} holds a '{kind}' model ({archs}), not a GPT-2 prompt adapter "
            f"(model_type 'gpt2'). Use a Promptist-style GPT-2 folder, e.g. {SOURCE}.")
    raise WeightsCorruptError(
        f"{folder}: config.json says GPT-2 but the weights are not GPT-2's (tensor names "
        f"{', '.join(list(names)[:3]) or 'none'}, ...). {REDOWNLOAD}")


def load_tokenizer(folder: Path) -> Any:
    """GPT-2's byte-level BPE tokenizer from ``tokenizer.json`` (else ``vocab.json`` and
    ``merges.txt``), with ``<|endoftext|>`` as its special tokens and left padding (batched
    generation continues every prompt from its last token)."""
    from tokenizers import Tokenizer, decoders, models, processors
    from tokenizers import pre_tokenizers as pre
    from transformers import PreTrainedTokenizerFast

    if not ((folder / "tokenizer.json").is_file()
            or all((folder / n).is_file() for n in ("vocab.json", "merges.txt"))):
        raise WeightsCorruptError(
            f"{folder} is incomplete: tokenizer.json (or vocab.json and merges.txt) missing. "
            f"{REDOWNLOAD}")
    try:
        if (folder / "tokenizer.json").is_file():
            backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        else:
            backend = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"),
                                                     str(folder / "merges.txt")))
            backend.pre_tokenizer = pre.ByteLevel(add_prefix_space=False)
            backend.post_processor = processors.ByteLevel(trim_offsets=False)
            backend.decoder = decoders.ByteLevel()
    except Exception as exc:  # tokenizers raises plain Exceptions for unreadable files
        raise WeightsCorruptError(f"{folder}: the tokenizer files could not be read "
                                  f"({first_line(exc)}). {REDOWNLOAD}") from None
    backend.no_padding()  # each call pads as asked (left); a saved setting must not apply
    backend.no_truncation()  # a saved max_length would cut prompts silently
    if backend.token_to_id(EOS) is None:
        raise WeightsCorruptError(f"{folder}: the tokenizer has no {EOS} token, so it is not "
                                  f"GPT-2's. {REDOWNLOAD}")
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=EOS, eos_token=EOS,
                                   unk_token=EOS, pad_token=EOS, padding_side="left")


def load_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Fill a ``GPT2LMHeadModel`` from ``state``: names with or without ``transformer.``; the
    causal-mask buffers older checkpoints saved dropped; when the output layer is tied to the
    embedding, either copy is enough. Anything else missing or extra is an error."""
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    renamed = {}
    for name, tensor in state.items():
        if name.endswith(_LEGACY_BUFFERS) or (tied and name == "lm_head.weight"):
            continue
        renamed[name if name.startswith((_PREFIX, "lm_head.")) else _PREFIX + name] = tensor
    if tied and _PREFIX + "wte.weight" not in renamed and "lm_head.weight" in state:
        renamed[_PREFIX + "wte.weight"] = state["lm_head.weight"]  # the tied copy a converter kept
    expected = set(model.state_dict()) - ({"lm_head.weight"} if tied else set())
    missing, unexpected = sorted(expected - set(renamed)), sorted(set(renamed) - expected)
    detail = "; ".join(f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                       for label, keys in (("missing", missing), ("unexpected", unexpected))
                       if keys)
    if not detail:
        try:
            model.load_state_dict(renamed, strict=False)  # lm_head tied: checked above
            return
        except RuntimeError as exc:  # shapes that differ from the config's
            detail = "; ".join(ln.strip() for ln in str(exc).splitlines()[1:3]) or str(exc)
    raise WeightsCorruptError(
        f"{path} does not fit the GPT-2 its config.json describes ({detail}). Download the "
        "folder's config.json and weights again, from the same model.")


def save_adapter(model: torch.nn.Module, tokenizer: Any, target: Path, metadata: dict) -> Path:
    """Write ``model`` (a GPT2LMHeadModel) and ``tokenizer`` as a new adapter folder
    ``target`` in Promptist's layout, plus ``intenttuner_adapter.json`` = ``metadata``.

    The folder appears whole or not at all (written beside it, then renamed). Raises
    InputError when ``target`` exists and is not an empty folder."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target} already exists: choose another name for the adapter, or "
                         "delete the old one first.")
    partial = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir(parents=True)
    try:
        tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
        state = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()
                 if not (tied and name == "lm_head.weight")}
        save_file(state, str(partial / "model.safetensors"), metadata={"format": "pt"})
        config = json.loads(model.config.to_json_string(use_diff=False))
        config["architectures"] = config.get("architectures") or ["GPT2LMHeadModel"]
        _write_json(partial / "config.json", config)
        _write_json(partial / "generation_config.json", model.generation_config.to_dict())
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_padding()  # a call's padding settings are not the tokenizer's
        backend.no_truncation()
        backend.save(str(partial / "tokenizer.json"))
        backend.model.save(str(partial))  # vocab.json and merges.txt
        _write_json(partial / METADATA_FILE, metadata)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("saved prompt adapter %s", target)
    return target


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
