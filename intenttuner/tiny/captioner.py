"""A tiny random BLIP captioner, saved as the same Hugging Face folder the real one is.

Files written (as in Salesforce/blip-image-captioning-large): ``config.json`` and
``model.safetensors`` (``save_pretrained``), ``preprocessor_config.json``, ``vocab.txt``,
``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``. The tokenizer is
built with the ``tokenizers`` library and the JSON files are written directly, because
transformers 5 saves processors in a newer layout (``processor_config.json``) than the files
users download; this way the tiny folder exercises the loader on the real layout.

Like the real model, the text decoder's vocabulary has two rows beyond ``vocab.txt``:
BLIP's ``[DEC]`` start token and ``[ENC]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_DIR = "blip-tiny-random"
IMAGE_SIZE = 32

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = """
a an the of in on at with and or to from by for is are it its this that there his her their
man woman men women person people boy girl child children baby dog dogs cat cats bird birds
horse cow sheep bear elephant giraffe zebra animal car cars bus truck train plane boat bike
bicycle motorcycle street road sidewalk city building house room kitchen bathroom bedroom table
chair couch bed window door wall floor ceiling tree trees grass field beach water ocean sea lake
river sky cloud clouds mountain snow hill sand rock park garden flower flowers plant food pizza
plate bowl cup glass bottle cake sandwich fruit banana apple orange phone computer laptop screen
book bag backpack umbrella hat shirt dress jacket shoes ball frisbee kite skateboard surfboard
ski skis tennis racket baseball bat game sign clock light lights toy teddy vase shelf mirror
red blue green yellow white black brown gray grey pink purple orange dark small large big little
young old long tall close up front top side back middle next near over under behind inside
outside sitting standing walking running riding holding eating playing looking lying flying
laying parked wearing carrying watching talking smiling posing jumping swimming driving cooking
photo photograph photography picture image painting drawing view background group pair couple
two three four several many some one other each while during very front left right street
portrait closeup shot scene day night sunny cloudy
""".split()
_PIECES = ["##s", "##es", "##ed", "##ing", "##er", "##ly", "##y"]
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")


def tiny_vocab() -> list[str]:
    """Specials, common caption words, suffix pieces and single characters (so any lowercase
    ASCII word tokenizes without [UNK]); no duplicates, order fixed."""
    seen: dict[str, None] = {}
    for token in [*_SPECIAL, *_WORDS, *_PIECES, *_CHARS, *("##" + c for c in _CHARS)]:
        seen.setdefault(token, None)
    return list(seen)


def make_tiny(folder: Path, seed: int = 0) -> Path:
    """Write a random tiny BLIP captioning folder ``folder/blip-tiny-random``; returns it."""
    target = Path(folder) / TINY_DIR
    target.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    _write_model(target, len(vocab), seed)
    write_tokenizer(target, vocab)
    write_preprocessor(target, IMAGE_SIZE)
    return target


def write_preprocessor(target: Path, image_size: int) -> None:
    """BLIP's image processor: resize to ``image_size``², CLIP mean/std."""
    _write_json(target / "preprocessor_config.json", {
        "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "BlipImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "processor_class": "BlipProcessor", "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"height": image_size, "width": image_size},
    })


def _write_model(target: Path, vocab_len: int, seed: int) -> None:
    from transformers import BlipConfig, BlipForConditionalGeneration

    config = BlipConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": IMAGE_SIZE, "patch_size": 8,
                       # BLIP's default (1e-10) makes every image embed alike, so captions
                       # would not depend on the image (the text side's cross-attention
                       # needs 0.2 too).
                       "initializer_range": 0.2},
        text_config={"vocab_size": vocab_len + 2, "hidden_size": 32, "encoder_hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 64, "initializer_range": 0.2,
                     # [DEC] is the row after vocab.txt, as 30522 is in the real model
                     "bos_token_id": vocab_len, "pad_token_id": 0, "sep_token_id": 3,
                     "eos_token_id": 3},
        projection_dim=32,
        image_text_hidden_size=32,
    )
    torch.manual_seed(seed)  # transformers initialises from the global generator
    model = BlipForConditionalGeneration(config)
    model.save_pretrained(str(target))  # safetensors is the default in transformers >= 4.35


def write_tokenizer(target: Path, vocab: list[str]) -> None:
    """``vocab.txt``, ``tokenizer.json`` (WordPiece, BERT-style), its config and special tokens
    (``[DEC]`` and ``[ENC]`` right after ``vocab``)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = {token: i for i, token in enumerate(vocab)}
    (target / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = Tokenizer(models.WordPiece(vocab=ids, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens([*_SPECIAL, "[DEC]", "[ENC]"])
    tokenizer.save(str(target / "tokenizer.json"))
    specials = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
                "sep_token": "[SEP]", "unk_token": "[UNK]"}
    _write_json(target / "special_tokens_map.json",
                {**specials, "bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    _write_json(target / "tokenizer_config.json", {
        **specials, "do_lower_case": True, "model_max_length": 512,
        "processor_class": "BlipProcessor", "tokenizer_class": "BertTokenizer",
    })


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
