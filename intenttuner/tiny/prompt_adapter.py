"""A tiny random prompt adapter, in the file layout of microsoft/Promptist.

Promptist is GPT-2 small fine-tuned to rewrite plain prompts for Stable Diffusion. Its
repository (the safetensors conversion on ``refs/pr/2``) holds ``config.json``
(``GPT2LMHeadModel``, ``model_type`` "gpt2", embeddings tied to the output layer),
``generation_config.json``, ``model.safetensors`` (``transformer.*`` names, no ``lm_head``) and
GPT-2's byte-level BPE tokenizer as ``tokenizer.json`` plus ``vocab.json`` (no ``merges.txt``
and no ``tokenizer_config.json``: ``tokenizer.json`` carries the merges). GPT-2's 50256 merged
tokens come first, then ``<|endoftext|>`` (50256), which is its bos, eos and (here) pad token.

The tiny one has the same files, a 2-layer GPT-2 with a 32-wide hidden state and 128
positions, and a BPE vocabulary learnt (deterministically) from common prompt words, so
prompts are a few tokens per word. The ``<|endoftext|>`` embedding row is zero, so a random
model writes words (garbage) instead of ending at once; fine-tuning still learns it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_DIR = "promptist-tiny-random"
EOS = "<|endoftext|>"
TINY_SIZES = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 128, "n_ctx": 128}
WEIGHT_FORMATS = ("safetensors", "bin")
# Words of typical Stable Diffusion prompts, plain and "adapted" (styles, quality tags).
_WORDS = """
a an the of in on at with and to from by for is are it its this that his her their
Rephrase: rephrase , . ( ) : - trending artstation concept art digital painting
man woman girl boy person people child old young face portrait hair eyes smile beard
cat dog bird horse fox wolf lion tiger dragon fish owl rabbit bear deer butterfly
house castle city street tower bridge forest mountain river lake sea ocean beach island
sky clouds sun moon stars night day sunset sunrise rain snow fog storm winter summer
red blue green yellow orange purple pink black white golden silver brown dark bright
sitting standing walking running flying sleeping reading holding wearing looking
window windowsill table chair room kitchen garden field road car train ship boat
jacket dress shirt hat necklace glasses ring crown armor cloak helmet sword book
highly detailed intricate elegant sharp focus smooth illustration octane render
unreal engine cinematic lighting volumetric dramatic soft studio photo photograph
photorealistic realistic hyperrealistic masterpiece beautiful cute epic fantasy
science fiction cyberpunk steampunk surreal abstract oil watercolor sketch anime
greg rutkowski alphonse mucha artgerm wlop makoto shinkai studio ghibli pixar
8 k 4 k hd uhd resolution wide angle close up full body background bokeh depth
colorful vibrant pastel muted moody atmospheric glowing neon magical ancient futuristic
""".split()


def make_tiny(folder: Path, seed: int = 0, weights: str = "safetensors") -> Path:
    """Write a random tiny Promptist folder ``folder/promptist-tiny-random``; returns it.

    ``weights``: ``"safetensors"`` (``model.safetensors``, as the default download) or
    ``"bin"`` (``pytorch_model.bin``, a ``torch.save`` of the state dict, as older GPT-2
    repositories ship)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights must be one of {WEIGHT_FORMATS}, got {weights!r}")
    target = Path(folder) / TINY_DIR
    target.mkdir(parents=True, exist_ok=True)
    count, eos_id = write_tokenizer(target)
    config = checkpoint_config({**TINY_SIZES, "vocab_size": count}, eos_id)
    torch.manual_seed(seed)  # transformers initialises from the global generator
    # GPT-2's 0.02 leaves a tiny model's next-token distribution almost flat (near-ties that
    # beam search breaks arbitrarily); 0.2 gives it clear preferences.
    model = GPT2LMHeadModel(GPT2Config.from_dict({**config, "initializer_range": 0.2}))
    with torch.no_grad():
        model.get_input_embeddings().weight[eos_id] = 0  # never the likeliest: words instead
    state = {name: t.contiguous() for name, t in model.state_dict().items()
             if name != "lm_head.weight"}  # tied to the embedding, left out as on the Hub
    if weights == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save({name: t.clone() for name, t in state.items()}, target / "pytorch_model.bin")
    _write_json(target / "config.json", config)
    _write_json(target / "generation_config.json", {
        "_from_model_config": True, "bos_token_id": eos_id, "eos_token_id": eos_id,
        "transformers_version": "4.27.0.dev0"})
    return target


def checkpoint_config(sizes: dict, eos_token_id: int) -> dict:
    """config.json as microsoft/Promptist ships it (GPT-2 small's), for the given sizes
    (``n_layer``, ``n_embd``, ``n_head``, ``n_positions``, ``n_ctx``, ``vocab_size``)."""
    return {
        "_name_or_path": "gpt2", "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
        "bos_token_id": eos_token_id, "embd_pdrop": 0.1, "eos_token_id": eos_token_id,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
        "n_inner": None, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
        "summary_activation": None, "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "torch_dtype": "float32", "transformers_version": "4.27.0.dev0", "use_cache": True,
        **sizes,
    }


def write_tokenizer(target: Path, merges_file: bool = False) -> tuple[int, int]:
    """GPT-2's tokenizer files (``tokenizer.json``, ``vocab.json``; ``merges.txt`` too with
    ``merges_file``); returns the token count and the ``<|endoftext|>`` id."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors
    from tokenizers import pre_tokenizers as pre

    vocab, merges = _bpe_vocab()
    eos_id = len(vocab)
    vocab[EOS] = eos_id  # GPT-2's vocab.json lists it too, after the merged tokens
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre.ByteLevel(add_prefix_space=False)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(EOS, special=True, normalized=True)])
    (target / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
    (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    if merges_file:
        (target / "merges.txt").write_text(
            "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return len(vocab), eos_id


def _bpe_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE learnt from the prompt words: the 256 byte symbols, then the merges."""
    from tokenizers import Tokenizer, models, trainers
    from tokenizers import pre_tokenizers as pre

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=1024, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre.ByteLevel.alphabet())
    tokenizer.train_from_iterator([" ".join(_WORDS)], trainer)
    learnt = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learnt["merges"]]
    return dict(learnt["vocab"]), merges


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
