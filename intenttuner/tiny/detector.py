"""Tiny random GroundingDINO detectors, written exactly as the real weights are stored.

Two formats, matching what users have in ``models/grounding-dino``:

* `make_tiny_detector_hf` — a Hugging Face folder like ``IDEA-Research/grounding-dino-tiny``
  (``config.json``, ``model.safetensors``, processor and tokenizer files);
* `make_tiny_detector_original` — an original IDEA-Research ``.pth`` (``{"model": state_dict}``
  with the original tensor names) plus the ``bert-base-uncased/vocab.txt`` it needs.

Both load through the real loader (``intenttuner.families.detector.load``) in well under a
second. The vocabulary mirrors bert-base-uncased's layout where it matters: transformers'
GroundingDino finds sub-phrase boundaries by the token ids of ``[CLS]`` (101), ``[SEP]`` (102),
``.`` (1012) and ``?`` (1029), so the tiny vocabulary puts those tokens at the same ids.
"""

from __future__ import annotations

import logging
import string
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

HF_DIRNAME = "grounding-dino-tiny-random"
ORIGINAL_FILENAME = "groundingdino_tiny_random.pth"
TOKENIZER_DIRNAME = "bert-base-uncased"
TINY_IMAGE_SIZE = {"shortest_edge": 96, "longest_edge": 160}  # 800/1333 scaled down: at 96 px a
# square image still leaves a 2x2 map at the last level (64 px left 1x1, which GroupNorm refuses)

# Words the tests and the smoke run use, plus common words, so phrases tokenize to real pieces;
# anything else falls back to single letters via "##" continuation pieces.
_WORDS = """
a an the of and with in on at to for from by near under over left right top bottom
man woman person people boy girl child face head hair eye eyes nose mouth ear hand hands arm
leg foot shoe shoes hat cap helmet glasses sunglasses necklace earring ring watch bracelet
shirt jacket coat dress skirt pants jeans shorts sweater hoodie suit tie scarf belt bag
backpack leather striped black white red green blue yellow orange purple pink brown grey gray
dark light long short curly straight blond small large big old young
dog cat bird horse cow sheep car bus truck bike bicycle motorcycle train boat plane
tree flower grass sky cloud sun water sea river mountain road street building house window
door wall floor table chair sofa bed lamp cup bottle phone laptop book clock remote control
tv screen keyboard mouse toy ball umbrella sign logo text background object thing
""".split()


def bert_style_vocab(words: list[str] | None = None, size: int | None = None) -> list[str]:
    """A WordPiece vocabulary laid out like bert-base-uncased's first 1,100 ids.

    ``[PAD]`` 0, ``[unused0..98]`` 1-99, ``[UNK]`` 100, ``[CLS]`` 101, ``[SEP]`` 102,
    ``[MASK]`` 103, more ``[unusedN]`` up to 998, printable ASCII but upper-case letters from
    999 (so ``.`` is 1012 and ``?`` is 1029), then ``##`` letter pieces and ``words``. ``size``
    pads with filler tokens.
    """
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)]
    vocab += ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"[unused{i}]" for i in range(99, 99 + 999 - len(vocab))]
    # bert-base-uncased's single-character block, by code point, without upper case letters
    vocab += [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    seen = set(vocab)
    for piece in [f"##{c}" for c in string.ascii_lowercase + string.digits] + list(words or _WORDS):
        if piece not in seen:
            vocab.append(piece)
            seen.add(piece)
    while size is not None and len(vocab) < size:
        vocab.append(f"[filler{len(vocab)}]")
    return vocab


def write_vocab(folder: Path, vocab: list[str]) -> Path:
    """Write ``vocab.txt`` (one token per line) into ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def tiny_config(vocab_size: int):
    """A GroundingDinoConfig with every dimension shrunk (about 0.3 M parameters)."""
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(
        embed_dim=8, depths=[1, 1, 2, 1], num_heads=[1, 1, 2, 2], window_size=2,
        image_size=32, out_indices=[2, 3, 4], out_features=["stage2", "stage3", "stage4"],
    )
    # hidden 64 with one head keeps BERT's 64-channels-per-head convention, which is what the
    # original-format loader assumes when it infers the config from tensor shapes.
    text = BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=1,
                      num_attention_heads=1, intermediate_size=64, max_position_embeddings=64)
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1,
        decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=8,
        decoder_attention_heads=8, encoder_n_points=2, decoder_n_points=2, num_queries=12,
        max_text_len=64,
    )


def make_tiny_detector_hf(folder: Path, seed: int = 0) -> Path:
    """Write a tiny random GroundingDINO in Hugging Face folder format; return the folder.

    The folder is ``folder/grounding-dino-tiny-random`` and holds what the hub repository
    ``IDEA-Research/grounding-dino-tiny`` holds: ``config.json``, ``model.safetensors``,
    ``preprocessor_config.json`` and the tokenizer files (``vocab.txt`` among them). The image
    processor resizes to a shorter side of 96 pixels (real models: 800) so tests stay fast.
    """
    import torch
    from transformers import GroundingDinoForObjectDetection, GroundingDinoImageProcessor

    from ..families.gdino_tokenizer import bert_tokenizer

    out = Path(folder) / HF_DIRNAME
    vocab = bert_style_vocab()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(tiny_config(len(vocab))).eval()
        # transformers initialises several tensors to constants (box head output layer to 0,
        # fusion gates to 1e-4); jitter every weight so all paths influence the outputs.
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param) * 0.05)
    model.save_pretrained(out, safe_serialization=True)
    # Saved one by one, like the hub repository's preprocessor_config.json and tokenizer files
    # (a combined processor save writes processor_config.json in transformers 5).
    GroundingDinoImageProcessor(size=TINY_IMAGE_SIZE).save_pretrained(out)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = bert_tokenizer(write_vocab(Path(tmp), vocab))
    tokenizer.save_pretrained(out)
    write_vocab(out, vocab)  # transformers 5 saves only tokenizer.json
    log.debug("wrote tiny GroundingDINO (HF format) to %s", out)
    return out


def make_tiny_detector_original(folder: Path, source: Path | None = None) -> Path:
    """Write a tiny ORIGINAL-format GroundingDINO checkpoint; return the ``.pth`` path.

    The weights are those of the tiny HF model in ``source`` (built with
    `make_tiny_detector_hf` in a temporary folder when None), renamed back to the original
    IDEA-Research names and saved as ``{"model": state_dict}`` in
    ``folder/groundingdino_tiny_random.pth``. The matching vocabulary goes to
    ``folder/bert-base-uncased/vocab.txt``, where the loader looks for the BERT tokenizer.
    """
    import torch
    from safetensors.torch import load_file

    from ..families.gdino_convert import hub_to_original

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(source) if source is not None else make_tiny_detector_hf(Path(tmp))
        hub = load_file(str(src / "model.safetensors"))
        vocab = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()
    state_dict = hub_to_original(hub)
    path = folder / ORIGINAL_FILENAME
    torch.save({"model": state_dict}, path)
    write_vocab(folder / TOKENIZER_DIRNAME, vocab)
    log.debug("wrote tiny GroundingDINO (original format) to %s", path)
    return path
