"""A tiny random Florence-2 captioner, in the file layout of florence-community/Florence-2-base.

That repository is Microsoft's Florence-2 converted (by transformers' own conversion script,
with transformers 4.56) to the native ``Florence2ForConditionalGeneration``; users download:
``config.json``, ``generation_config.json``, ``model.safetensors`` (fp16), the image processor's
``preprocessor_config.json`` (a ``CLIPImageProcessor``: 768x768 squash, ImageNet mean/std,
``image_seq_length`` 577), ``processor_config.json`` (the post-processor's parsing rules) and
the BART byte-level BPE tokenizer as transformers 4.5x saves it: ``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``, ``vocab.json``, ``merges.txt`` and
``added_tokens.json``.

Florence extends BART's vocabulary with 1024 task tokens (``<od>``, ``<ocr>``, ``<loc_0>`` ..
``<loc_999>``, ``<cap>``, ... as Microsoft's processor added them) and, in the conversion, the
``<image>`` placeholder (``extra_special_tokens: {"image_token": "<image>"}``, which the
native processor requires). The embedding matrix is padded to a multiple of 64 rows, as
in the real model (51289 + 1 tokens -> 51328 rows).

Every file is written here directly: the weights under the converted checkpoint's tensor
names (``model.vision_tower.*``, ``model.multi_modal_projector.*``, ``model.language_model.*``;
the tied ``lm_head`` and ``embed_tokens`` copies left out, as ``save_pretrained`` does) and the
JSON files in the 4.56 layout, because transformers 5 saves processors and tokenizers
differently from what users download.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

TINY_DIR = "florence2-tiny-random"
IMAGE_SIZE = 64  # strides 4*2*2*2 = 32: a 2x2 grid of image tokens, plus one temporal token

SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"]
MASK = "<mask>"
IMAGE_TOKEN = "<image>"
# The task tokens Microsoft's processor adds to the BART tokenizer, in its order.
FLORENCE_TOKENS = [
    "<od>", "</od>", "<ocr>", "</ocr>", *(f"<loc_{i}>" for i in range(1000)),
    "<cap>", "</cap>", "<ncap>", "</ncap>", "<dcap>", "</dcap>", "<grounding>", "</grounding>",
    "<seg>", "</seg>", "<sep>", "<region_cap>", "</region_cap>", "<region_to_desciption>",
    "</region_to_desciption>", "<proposal>", "</proposal>", "<poly>", "</poly>", "<and>",
]
# The sentences the processor turns the caption tasks into, and common caption words: the
# tokenizer learns one token for each, so prompts stay short.
_PROMPTS = ["What does the image describe?", "Describe in detail what is shown in the image.",
            "Describe with a paragraph what is shown in the image."]
_WORDS = """
a an the of in on at with and to from by for is are it its this that there his her their
man woman person people boy girl
child dog cat bird horse car bus boat street road city building house room table chair bed
window door wall tree trees grass field beach water sea sky cloud mountain snow park flower
food plate cup red blue green yellow white black brown small large big young old sitting
standing walking running holding wearing photo picture front background left right top
""".split()


TINY_VISION = {
    "depths": [1, 1, 1, 1], "embed_dim": [8, 16, 16, 32], "num_heads": [1, 2, 2, 4],
    "num_groups": [1, 2, 2, 4], "window_size": 2, "projection_dim": 32,
    "max_position_embeddings": 8, "max_temporal_embeddings": 4,
}
TINY_TEXT = {
    "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
    "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
    "init_std": 0.2,  # BART's 0.02 leaves a random model's words independent of the image
}


def make_tiny(folder: Path, seed: int = 0) -> Path:
    """Write a random tiny Florence-2 folder ``folder/florence2-tiny-random``; returns it."""
    from transformers import Florence2Config, Florence2ForConditionalGeneration

    target = Path(folder) / TINY_DIR
    target.mkdir(parents=True, exist_ok=True)
    tokens = write_tokenizer(target)
    config = checkpoint_config(TINY_VISION, {**TINY_TEXT, "vocab_size": tokens.rows},
                               tokens.image_token_id)
    torch.manual_seed(seed)  # transformers initialises from the global generator
    model = Florence2ForConditionalGeneration(Florence2Config.from_dict(config))
    with torch.no_grad():
        # A random model would mostly pick one of the 1024 task tokens (which decode to
        # nothing); zero logits for every special row make it write words, as a caption does.
        shared = model.get_input_embeddings().weight
        shared[tokens.special] = 0
        shared[tokens.count:] = 0
    write_model(target, model, config)
    write_processor(target, IMAGE_SIZE)
    return target


@dataclass(frozen=True)
class TokenizerIds:
    """What the model's config and embedding need from the tokenizer written."""

    count: int  # tokens, <image> included
    image_token_id: int
    special: list[int]  # ids of special and task tokens

    @property
    def rows(self) -> int:
        """Embedding rows: the token count padded to a multiple of 64, as the conversion did."""
        return -(-self.count // 64) * 64


def checkpoint_config(vision: dict, text: dict, image_token_id: int) -> dict:
    """config.json as the conversion wrote it, for the given sizes (``vision``: DaViT,
    ``text``: BART; every other field as in florence-community/Florence-2-base)."""
    return {
        "architectures": ["Florence2ForConditionalGeneration"],
        "image_token_id": image_token_id,
        "is_encoder_decoder": True,
        "model_type": "florence2",
        "text_config": {
            "model_type": "bart", "max_position_embeddings": 1024, "activation_function": "gelu",
            "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2,
            "forced_bos_token_id": 0, "forced_eos_token_id": 2, "is_encoder_decoder": True,
            "scale_embedding": False, "dropout": 0.1, "attention_dropout": 0.1,
            "activation_dropout": 0.1, **text,
        },
        "torch_dtype": "float16",
        "transformers_version": "4.56.0.dev0",
        "vision_config": {
            "model_type": "florence_vision", "patch_size": [7, 3, 3, 3],
            "patch_stride": [4, 2, 2, 2], "patch_padding": [3, 1, 1, 1],
            "patch_prenorm": [False, True, True, True], "drop_path_rate": 0.1,
            "mlp_ratio": 4.0, **vision,
        },
    }


def write_model(target: Path, model: torch.nn.Module, config: dict) -> None:
    """``model.safetensors`` (fp16, the converted checkpoint's tensor names without the copies
    tied to the shared embedding, as save_pretrained leaves them out), ``config.json`` and
    ``generation_config.json``."""
    from safetensors.torch import save_file

    tied = {"lm_head.weight", "model.language_model.encoder.embed_tokens.weight",
            "model.language_model.decoder.embed_tokens.weight"}
    tensors = {name: t.half().contiguous() for name, t in model.state_dict().items()
               if name not in tied}
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    _write_json(target / "config.json", config)
    _write_json(target / "generation_config.json", {
        "_from_model_config": True, "bos_token_id": 0, "decoder_start_token_id": 2,
        "early_stopping": True, "eos_token_id": 2, "forced_bos_token_id": 0,
        "forced_eos_token_id": 2, "no_repeat_ngram_size": 3, "num_beams": 3, "pad_token_id": 1,
        "transformers_version": "4.56.0.dev0",
    })


def _bpe_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """BART's layout in miniature: the four specials (ids 0-3), the 256 byte-level symbols,
    byte-level BPE merges learnt (deterministically) from the prompts and caption words, then
    ``<mask>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=SPECIAL, min_frequency=1,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator([" ".join(_WORDS), *_PROMPTS], trainer)
    learnt = json.loads(tokenizer.to_str())["model"]
    vocab = dict(learnt["vocab"])
    vocab[MASK] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learnt["merges"]]
    return vocab, merges


def write_tokenizer(target: Path) -> TokenizerIds:
    """The BART tokenizer files with Florence's task tokens and ``<image>``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab, merges = _bpe_vocab()
    added = {token: len(vocab) + i for i, token in enumerate([*FLORENCE_TOKENS, IMAGE_TOKEN])}

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]), add_prefix_space=False)
    specials = [AddedToken(t, special=True, normalized=False) for t in SPECIAL]
    tokenizer.add_special_tokens([
        *specials, AddedToken(MASK, special=True, lstrip=True, normalized=False),
        *(AddedToken(t, special=True, normalized=False) for t in added)])
    tokenizer.save(str(target / "tokenizer.json"))
    (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (target / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    _write_json(target / "added_tokens.json", added)
    named = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "mask_token": MASK,
             "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>"}
    _write_json(target / "special_tokens_map.json",
                {"additional_special_tokens": FLORENCE_TOKENS, **named})
    decoder = {str(i): {"content": t, "lstrip": t == MASK, "normalized": False, "rstrip": False,
                        "single_word": False, "special": True}
               for t, i in [*((t, vocab[t]) for t in (*SPECIAL, MASK)), *added.items()]}
    _write_json(target / "tokenizer_config.json", {
        "add_prefix_space": False, "added_tokens_decoder": decoder,
        "additional_special_tokens": FLORENCE_TOKENS, "clean_up_tokenization_spaces": False,
        "errors": "replace", "extra_special_tokens": {"image_token": IMAGE_TOKEN},
        "model_max_length": 1024, "processor_class": "Florence2Processor",
        "tokenizer_class": "BartTokenizer", "trim_offsets": True, **named,
    })
    return TokenizerIds(count=len(vocab) + len(added), image_token_id=added[IMAGE_TOKEN],
                        special=[*(vocab[t] for t in (*SPECIAL, MASK)), *added.values()])


def write_processor(target: Path, image_size: int) -> None:
    """The image processor (squash to ``image_size``², ImageNet mean/std) and the processor's
    parsing rules."""
    _write_json(target / "preprocessor_config.json", {
        "crop_size": {"height": image_size, "width": image_size}, "do_center_crop": False,
        "do_convert_rgb": None, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "CLIPImageProcessor",
        "image_seq_length": (image_size // 32) ** 2 + 1, "image_std": [0.229, 0.224, 0.225],
        "processor_class": "Florence2Processor", "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"height": image_size, "width": image_size},
    })
    _write_json(target / "processor_config.json", {
        "num_additional_image_tokens": 0,
        "post_processor_config": {
            "ocr": {"pattern": r"(.+?)" + r"<loc_(\d+)>" * 8, "area_threshold": 0.0},
            "phrase_grounding": {"banned_grounding_tokens": ["the image"]},
            "pure_text": {}, "description_with_bboxes": {}, "description_with_polygons": {},
            "polygons": {}, "bboxes": {}, "description_with_bboxes_or_polygons": {},
        },
        "processor_class": "Florence2Processor",
    })


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
