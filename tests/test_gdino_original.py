"""Original GroundingDINO checkpoints, read by our loader, against the original implementation.

groundingdino-py (IDEA-Research's own code) builds GroundingDINO from its own Swin-T OGC config,
with random weights: the tensor layout of ``groundingdino_swint_ogc.pth`` name for name (checked
against the real file's names). It is smaller where the original code allows: feed-forward width
256 instead of 2048, 30 queries instead of 900, a 12-layer BERT of width 64 over a small
vocabulary. The Swin-T backbone and the transformer width of 256 stay full size: the code has no
smaller Swin and hard-codes 256 sine features for text positions. The state dict is saved as
users keep it (``models/grounding-dino/groundingdino_swint_ogc.pth`` holding ``{"model": ...}``
plus the training leftovers the real file carries; ``models/bert-base-uncased/vocab.txt``) and
read by the detector family's real loader, which renames the tensors onto transformers'
``GroundingDinoForObjectDetection``. Both models then see the same image and caption, each
preprocessed its own way, and must agree on every query's logit, box and phrase.

Patched in groundingdino-py, and why:

* ``get_tokenlizer`` / ``get_pretrained_language_model`` call ``from_pretrained("bert-base-
  uncased")`` (network); here the tokenizer comes from the test vocabulary and BERT from a config.
* ``BertModelWarper``, on transformers 5 only: it copies ``get_extended_attention_mask`` (and
  ``get_head_mask``, ``invert_attention_mask``) from ``BertModel``, which transformers 5 removed,
  and calls BERT's embeddings and encoder with keywords they no longer take. It is replaced by the
  same computation for what GroundingDINO passes (a 3-D phrase-block attention mask turned into an
  additive mask, as transformers 4's ``get_extended_attention_mask`` did, and sub-phrase position
  ids), over the same BERT modules.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner import runtime
from intenttuner.families import get_family
from intenttuner.tiny.detector import bert_style_vocab, write_vocab
from tests.conftest import require

# The oracle must run in CI (scripts/setup.sh installs it); elsewhere it may be missing.
require(importlib.util.find_spec("groundingdino") is not None,
        "groundingdino-py is not installed (pip install --no-deps groundingdino-py==0.4.0)")
import groundingdino  # noqa: E402

pytestmark = pytest.mark.filterwarnings(  # groundingdino-py's own code, on current timm/torch
    "ignore:Importing from timm.models.layers:FutureWarning",
    "ignore:torch.meshgrid:UserWarning",
    "ignore:`torch.cuda.amp.autocast:FutureWarning",
)

FIXTURE = Path(__file__).parent / "fixtures" / "groundingdino_swint_ogc_keys.json"
CHECKPOINT = "groundingdino_swint_ogc.pth"
IMAGE_SIZE = 96  # shorter side both models see (released models: 800)
NUM_QUERIES = 30
PHRASES = ["red hat", "black leather jacket", "dog"]
TOLERANCE = 1e-4  # logits, and boxes as fractions of the image side


def _original_config():
    """groundingdino-py's own Swin-T OGC config, made smaller where the code allows it."""
    from groundingdino.util.slconfig import SLConfig

    path = Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"
    args = SLConfig.fromfile(str(path))
    # hidden_dim stays 256: the encoder hard-codes 256 sine features for text positions.
    args.dim_feedforward = 256  # (2048) the text enhancer and fusion layers use half of it
    args.num_queries = NUM_QUERIES
    args.use_checkpoint = args.use_transformer_ckpt = False  # gradient checkpointing: training
    return args


def _bert_config(vocab_size: int):
    from transformers import BertConfig

    # 12 layers as in bert-base (so every tensor name of the real checkpoint exists), 64 wide:
    # one head of 64 channels, BERT's convention, which the loader relies on.
    return BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=12,
                      num_attention_heads=1, intermediate_size=64, max_position_embeddings=64)


class _BertWarperForTransformers5(torch.nn.Module):
    """groundingdino's ``BertModelWarper.forward``, reduced to what GroundingDINO passes (no
    cross-attention, cache or head mask), in terms transformers 5's BERT modules accept."""

    def __init__(self, bert_model):
        super().__init__()
        self.config = bert_model.config
        self.embeddings = bert_model.embeddings  # same module names: bert.embeddings.* etc.
        self.encoder = bert_model.encoder
        self.pooler = bert_model.pooler

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, **_):
        dtype = self.embeddings.word_embeddings.weight.dtype
        # transformers 4's get_extended_attention_mask for a (batch, from, to) mask
        additive = (1.0 - attention_mask[:, None, :, :].to(dtype)) * torch.finfo(dtype).min
        hidden = self.embeddings(input_ids=input_ids, position_ids=position_ids,
                                 token_type_ids=token_type_ids)
        return {"last_hidden_state": self.encoder(hidden, attention_mask=additive)
                .last_hidden_state}


def _build_original(vocab_file: Path, vocab_size: int):
    """A random-weight GroundingDINO built by groundingdino-py (patched as the docstring says)."""
    from groundingdino.models import build_model
    from groundingdino.models.GroundingDINO import groundingdino as gd_model
    from groundingdino.util import get_tokenlizer
    from transformers import BertModel, BertTokenizer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(get_tokenlizer, "get_tokenlizer",
                      lambda _name: BertTokenizer(str(vocab_file), do_lower_case=True))
        patch.setattr(get_tokenlizer, "get_pretrained_language_model",
                      lambda _name: BertModel(_bert_config(vocab_size)))
        if not hasattr(BertModel, "get_extended_attention_mask"):  # transformers >= 5
            patch.setattr(gd_model, "BertModelWarper", _BertWarperForTransformers5)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(_original_config()).eval()
            # Some tensors start as constants (box head output layers 0, fusion gates 1e-4);
            # jitter every weight so every path influences the outputs. Box heads less, so that
            # boxes stay near their anchors and mostly inside the image (not clipped to its edges).
            with torch.no_grad():
                for name, param in model.named_parameters():
                    scale = 0.005 if "bbox_embed" in name else 0.05
                    param.add_(torch.randn_like(param) * scale)
    return model


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """(groundingdino-py model, folder holding grounding-dino/ and bert-base-uncased/ as users
    have them)."""
    folder = tmp_path_factory.mktemp("gdino-original")
    vocab = bert_style_vocab()
    vocab_file = write_vocab(folder / "bert-base-uncased", vocab)
    model = _build_original(vocab_file, len(vocab))
    state = model.state_dict()
    # What the released file carries besides the model: the denoising label embedding and BERT's
    # position_ids buffer (see the fixture's "extra").
    extra = json.loads(FIXTURE.read_text())["extra"]
    state["label_enc.weight"] = torch.randn(*extra["label_enc.weight"])
    state["bert.embeddings.position_ids"] = torch.arange(64)[None]
    (folder / "grounding-dino").mkdir()
    torch.save({"model": state}, folder / "grounding-dino" / CHECKPOINT)
    return model, folder


@pytest.fixture
def models(models_root, original):
    """The original model and ours, loaded from the user's layout in ``models_root``."""
    model, folder = original
    for name in ("grounding-dino", "bert-base-uncased"):
        os.symlink(folder / name, models_root / name)
    ours = get_family("detector").load(models_root / "grounding-dino" / CHECKPOINT,
                                       precision="fp32", image_size=IMAGE_SIZE)
    return model, ours


def _scene(width: int, height: int) -> Image.Image:
    """A structured RGB picture (gradients and blocks), so features vary across the image."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, (x + y) % 64 * 4], axis=-1)
    pixels[height // 4: height // 2, width // 3: width // 2] = (220, 30, 30)
    return Image.fromarray(pixels.astype(np.uint8))


def _run_original(model, image: Image.Image, caption: str) -> list[tuple]:
    """Every query of the original as ``(logit, phrase_index, box)``, post-processed like
    groundingdino.util.inference.predict: the query's logit is its highest over the caption's
    tokens; box XYXY as a fraction of the image, clipped to it. The phrase is the one whose
    tokens (between the caption's '.' tokens) hold the highest logit."""
    import groundingdino.datasets.transforms as T

    transform = T.Compose([  # groundingdino.util.inference.load_image, at IMAGE_SIZE
        T.RandomResize([IMAGE_SIZE], max_size=round(IMAGE_SIZE * 1333 / 800)),
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    pixels, _ = transform(image, None)
    device = runtime.get_runtime().torch_device()
    model = model.to(device)
    with torch.no_grad():
        out = model(pixels[None].to(device), captions=[caption])
    ids = model.tokenizer(caption)["input_ids"]
    logits = out["pred_logits"][0].cpu().double()[:, :len(ids)]
    dots = [i for i, t in enumerate(ids) if t == model.specical_tokens[2]]  # '.' tokens
    spans = list(zip([0, *dots[:-1]], dots, strict=True))
    cx, cy, w, h = out["pred_boxes"][0].cpu().double().unbind(-1)
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).clamp(0, 1)
    rows = []
    for q in range(logits.shape[0]):
        best = [float(logits[q, s + 1:e].max()) for s, e in spans]
        rows.append((float(logits[q].max()), int(np.argmax(best)), boxes[q].tolist()))
    return rows


def _distance(a: tuple, b: tuple) -> float:
    """Between two ``(logit, phrase, box)`` rows: logit difference plus the largest box one."""
    return abs(a[0] - b[0]) + float(np.abs(np.subtract(a[2], b[2])).max())


def test_original_model_has_the_released_checkpoint_layout(original):
    model, _ = original
    released = json.loads(FIXTURE.read_text())["tensors"]
    assert sorted(model.state_dict()) == sorted(released)


@pytest.mark.parametrize("size", [(128, 96), (150, 100)], ids=["no-resize", "resized"])
def test_loader_matches_the_original_implementation(models, size, monkeypatch):
    if torch.cuda.is_available():  # TF32 alone would move the outputs by ~1e-3
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    original_model, ours = models
    image = _scene(*size)
    caption = " . ".join(PHRASES) + " ."  # how GroundingDINO was trained: "a . b . c ."
    expected = _run_original(original_model, image, caption)
    found = ours.detect([image], PHRASES, box_threshold=0.0, text_threshold=0.0)[0]
    assert ours.kind == "original" and len(found) == NUM_QUERIES
    assert all(0.0 < d.score < 1.0 for d in found)  # so the logit below is finite
    scale = np.array([*size, *size], dtype=np.float64)
    got = [(math.log(d.score) - math.log1p(-d.score), d.phrase_index,
            (np.array(d.box) / scale).tolist()) for d in found]
    # Detections come sorted by score and carry no query index: pair each with the nearest
    # query. A true pair is within 2 x TOLERANCE; the queries lie further apart than twice
    # that, so the pairing is unique.
    separation = min(_distance(a, b) for i, a in enumerate(expected) for b in expected[i + 1:])
    assert separation > 4 * TOLERANCE
    unmatched = list(expected)
    for row in got:
        near = min(unmatched, key=lambda r: _distance(r, row))
        unmatched.remove(near)
        assert row[0] == pytest.approx(near[0], abs=TOLERANCE), "logit"
        assert row[2] == pytest.approx(near[2], abs=TOLERANCE), "box"
        assert row[1] == near[1], f"query with logit {row[0]:.4f}: phrase {row[1]} != {near[1]}"
    # Boxes spread over the image, not clipped to its edges, so their coordinates were compared.
    corners = np.array([r[2] for r in expected])
    assert (corners[:, :2].min() < 0.3 and corners[:, 2:].max() > 0.7
            and ((corners > 0) & (corners < 1)).mean() > 0.9)
