"""A tiny random instruction-tuned causal LM, in the file layout of Qwen/Qwen2.5-1.5B-Instruct.

That repository holds ``config.json`` (``Qwen2ForCausalLM``, tied embeddings),
``generation_config.json``, ``model.safetensors`` (bf16) and Qwen2's byte-level BPE tokenizer:
``tokenizer.json``, ``tokenizer_config.json`` (which carries the chat template), ``vocab.json``
and ``merges.txt``. The tokenizer's 151643 merged tokens come first, then the special tokens
from ``<|endoftext|>`` (151643), ``<|im_start|>``, ``<|im_end|>`` (the end of a chat turn) on.

The tiny one has the same files, a 2-layer Qwen2 with a 32-wide hidden state, and a BPE
vocabulary learnt (deterministically) from the intent parser's system prompt and common words,
so the pack's long prompts stay a few thousand tokens. The special tokens' embedding rows are
zero, so a random model writes words (garbage) rather than ending its turn at once: exactly
what the repair and fallback paths need to be exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_DIR = "qwen2-tiny-random-instruct"
# Qwen2.5's special tokens, in its order (ids follow the BPE vocabulary).
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
           "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
           "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
           "<|image_pad|>", "<|video_pad|>"]
NOT_SPECIAL = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
               "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
EOS, PAD = "<|im_end|>", "<|endoftext|>"
# Qwen2's pre-tokenizer split (the GPT-4-style pattern with single digits).
SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# Qwen2.5-Instruct's chat template without its tool-calling branches: a default system turn,
# then <|im_start|>role\ncontent<|im_end|>\n per message, then the assistant's opening.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
TINY_SIZES = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2}
_WORDS = """
a an the of in on at with and to from by for is are it its this that there his her their
man woman person people face hair jacket dress shirt hat necklace glasses ring bag shoes
keep change remove modify delete never always should can be between colour color style pose
trigger caption captions image photo crop close-up background lighting black white red blue
green yellow brown leather striped long short curly straight standing sitting walking
""".split()


def make_tiny(folder: Path, seed: int = 0) -> Path:
    """Write a random tiny Qwen2 instruct folder ``folder/qwen2-tiny-random-instruct``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    target = Path(folder) / TINY_DIR
    target.mkdir(parents=True, exist_ok=True)
    count, special_ids = write_tokenizer(target)
    config = checkpoint_config({**TINY_SIZES, "vocab_size": -(-count // 64) * 64},
                               special_ids[PAD], special_ids[EOS])
    torch.manual_seed(seed)  # transformers initialises from the global generator
    model = Qwen2ForCausalLM(Qwen2Config.from_dict({**config, "initializer_range": 0.2}))
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight
        embedding[sorted(special_ids.values())] = 0  # never the likeliest token: words instead
        embedding[count:] = 0  # padding rows
    write_model(target, model, config)
    return target


def checkpoint_config(sizes: dict, bos_token_id: int, eos_token_id: int) -> dict:
    """config.json as Qwen/Qwen2.5-*-Instruct ship it, for the given sizes (``hidden_size``,
    ``intermediate_size``, ``num_hidden_layers``, ``num_attention_heads``,
    ``num_key_value_heads``, ``vocab_size``)."""
    return {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
        "bos_token_id": bos_token_id, "eos_token_id": eos_token_id, "hidden_act": "silu",
        "initializer_range": 0.02, "max_position_embeddings": 32768,
        "max_window_layers": 21, "model_type": "qwen2", "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": True,
        "use_sliding_window": False, **sizes,
    }


def write_model(target: Path, model: torch.nn.Module, config: dict) -> None:
    """``model.safetensors`` (bf16, without the ``lm_head`` tied to the embedding, as
    save_pretrained leaves it out), ``config.json`` and ``generation_config.json``."""
    from safetensors.torch import save_file

    tensors = {name: t.to(torch.bfloat16).contiguous() for name, t in model.state_dict().items()
               if name != "lm_head.weight"}
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    _write_json(target / "config.json", config)
    # The Instruct repositories' sampling defaults (the loader generates greedily anyway).
    _write_json(target / "generation_config.json", {
        "bos_token_id": config["bos_token_id"], "pad_token_id": config["bos_token_id"],
        "do_sample": True, "eos_token_id": [config["eos_token_id"], config["bos_token_id"]],
        "repetition_penalty": 1.1, "temperature": 0.7, "top_p": 0.8, "top_k": 20,
        "transformers_version": "4.37.0",
    })


def write_tokenizer(target: Path, chat_template: str | None = CHAT_TEMPLATE
                    ) -> tuple[int, dict[str, int]]:
    """Qwen2's tokenizer files; returns the token count and the special tokens' ids. Without
    ``chat_template`` the folder looks like a base (not instruction-tuned) model."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers as pre

    vocab, merges = _bpe_vocab()
    ids = {token: len(vocab) + i for i, token in enumerate([*SPECIAL, *NOT_SPECIAL])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre.Sequence([
        pre.Split(Regex(SPLIT), behavior="isolated"),
        pre.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in NOT_SPECIAL])
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                  for t in SPECIAL])
    # add_* assign ids in call order; Qwen's put the special tokens first.
    data = json.loads(tokenizer.to_str())
    for entry in data["added_tokens"]:
        entry["id"] = ids[entry["content"]]
    data["added_tokens"].sort(key=lambda e: e["id"])
    (target / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False),
                                           encoding="utf-8")
    (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (target / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    decoder = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                        "single_word": False, "special": t in SPECIAL} for t, i in ids.items()}
    config = {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
        "additional_special_tokens": SPECIAL[1:], "bos_token": None,
        "clean_up_tokenization_spaces": False, "eos_token": EOS, "errors": "replace",
        "model_max_length": 131072, "pad_token": PAD, "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }
    if chat_template is not None:
        config["chat_template"] = chat_template
    _write_json(target / "tokenizer_config.json", config)
    return len(vocab) + len(ids), {t: ids[t] for t in SPECIAL}


def _bpe_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE learnt from the intent parser's prompt, its schema and some words: the
    256 byte symbols, then the merges."""
    from tokenizers import Regex, Tokenizer, models, trainers
    from tokenizers import pre_tokenizers as pre

    from ..intent.llm_parse import OUTPUT_SCHEMA, SYSTEM_PROMPT

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre.Sequence([
        pre.Split(Regex(SPLIT), behavior="isolated"),
        pre.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=2048, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre.ByteLevel.alphabet())
    tokenizer.train_from_iterator([SYSTEM_PROMPT, json.dumps(OUTPUT_SCHEMA), " ".join(_WORDS)],
                                  trainer)
    learnt = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learnt["merges"]]
    return dict(learnt["vocab"]), merges


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
