"""The BERT tokenizer of GroundingDINO: finding bert-base-uncased's ``vocab.txt`` where users
keep it, building the tokenizer from it, and checking a tokenizer fits the model.

Original IDEA-Research checkpoints (``groundingdino_swint_ogc.pth``) ship without a tokenizer;
they need bert-base-uncased's vocabulary, which other GroundingDINO packs keep in
``models/bert-base-uncased`` (the manifest entry ``bert-base-uncased-tokenizer`` downloads it
there). Hugging Face folders carry their own tokenizer files and only go through
`check_tokenizer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import WeightsCorruptError, WeightsNotFoundError
from ..runtime import get_runtime

BERT_TOKENIZER_FOLDER = "bert-base-uncased"  # MODEL_FOLDERS key and sub-folder name
BERT_VOCAB_FILE = "vocab.txt"
BERT_VOCAB_SOURCE = "https://huggingface.co/google-bert/bert-base-uncased"
BERT_VOCAB_SIZE = 231_508
BERT_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
BERT_HF_REPOS = ("google-bert/bert-base-uncased", "bert-base-uncased")
# GroundingDINO packs also keep bert-base-uncased/ inside the detector's folder (the detector
# family's MODEL_FOLDERS key; tests check the two agree).
DETECTOR_FOLDER = "grounding-dino"

# transformers' GroundingDino finds phrase boundaries by these bert-base-uncased token ids
# (SPECIAL_TOKENS in modeling_grounding_dino.py), so any tokenizer we pair it with must agree.
REQUIRED_TOKEN_IDS = {"[CLS]": 101, "[SEP]": 102, ".": 1012, "?": 1029}


def bert_tokenizer(vocab_file: Path) -> Any:
    """A lower-casing BERT WordPiece tokenizer (fast, so it reports character offsets) built
    from ``vocab_file`` alone."""
    from transformers import BertTokenizerFast

    # Positional on purpose: the keyword is ``vocab_file`` in transformers 4 and ``vocab`` in 5
    # (where an unknown keyword is silently ignored, giving an empty vocabulary).
    return BertTokenizerFast(str(vocab_file), do_lower_case=True)


def bert_tokenizer_candidates(checkpoint: Path | None = None) -> list[Path]:
    """Folders searched, in order, for bert-base-uncased's ``vocab.txt``.

    ``bert-base-uncased/`` next to ``checkpoint`` (if given), ``<models>/bert-base-uncased``
    (where the GroundingDINO+SAM packs keep it), ``<models>/grounding-dino/bert-base-uncased``,
    then the Hugging Face cache snapshots of google-bert/bert-base-uncased and
    bert-base-uncased.
    """
    from ..weights.locate import hf_snapshot_dirs

    runtime = get_runtime()
    folders = [checkpoint.parent / BERT_TOKENIZER_FOLDER] if checkpoint is not None else []
    folders += runtime.model_dirs(BERT_TOKENIZER_FOLDER)
    folders += [d / BERT_TOKENIZER_FOLDER for d in runtime.model_dirs(DETECTOR_FOLDER)]
    for repo in BERT_HF_REPOS:
        folders += hf_snapshot_dirs(repo)
    return list(dict.fromkeys(folders))  # drop repeats, keep the order


def find_bert_tokenizer_dir(tokenizer_dir: str | Path | None = None, *,
                            needed_by: Path | None = None) -> Path:
    """The folder holding bert-base-uncased's ``vocab.txt`` for original GroundingDINO files.

    ``tokenizer_dir`` (if given) is the only place looked at; otherwise
    `bert_tokenizer_candidates` (``needed_by``: the checkpoint, whose own folder is searched
    first). Raises WeightsNotFoundError naming the file, its source and the folder to put it in.
    """
    folders = ([Path(tokenizer_dir)] if tokenizer_dir is not None
               else bert_tokenizer_candidates(needed_by))
    for folder in folders:
        vocab = folder / BERT_VOCAB_FILE
        if vocab.is_file() and vocab.stat().st_size > 0:
            return folder
    target = (Path(tokenizer_dir) if tokenizer_dir is not None
              else get_runtime().download_dir(BERT_TOKENIZER_FOLDER))
    user = (f"{needed_by.name} is an original GroundingDINO checkpoint and needs"
            if needed_by is not None else "Original GroundingDINO checkpoints need")
    raise WeightsNotFoundError(
        f"{user} the BERT tokenizer file {BERT_VOCAB_FILE} (bert-base-uncased, "
        f"{BERT_VOCAB_SIZE:,} bytes, sha256 {BERT_VOCAB_SHA256}) from {BERT_VOCAB_SOURCE}. "
        f"Download it into {target}/. Looked in: {', '.join(str(f) for f in folders)}."
    )


def check_tokenizer(tokenizer: Any, model: Any, source: Path) -> None:
    """Raise WeightsCorruptError unless ``tokenizer`` has bert-base-uncased's special token ids
    (`REQUIRED_TOKEN_IDS`) and no more tokens than ``model``'s text encoder embeds."""
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in REQUIRED_TOKEN_IDS}
    vocab_size = model.config.text_config.vocab_size
    if ids != REQUIRED_TOKEN_IDS or len(tokenizer) > vocab_size:
        raise WeightsCorruptError(
            f"The tokenizer used with {source} is not bert-base-uncased's: GroundingDINO needs "
            f"[CLS]=101, [SEP]=102, '.'=1012, '?'=1029 and at most {vocab_size} tokens, this one "
            f"has {ids} and {len(tokenizer)} tokens. Use vocab.txt from {BERT_VOCAB_SOURCE}."
        )
