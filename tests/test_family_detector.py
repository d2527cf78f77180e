"""GroundingDINO detector family: key conversion, pure post-processing, tiny models in both
on-disk formats through the real loader, and the errors users see."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from intenttuner import runtime
from intenttuner.errors import (
    InputError,
    WeightsCorruptError,
    WeightsNotFoundError,
    WrongModelFamilyError,
)
from intenttuner.families import detector, gdino_config, gdino_convert, gdino_tokenizer
from intenttuner.families.detector import FAMILY
from intenttuner.families.detector_phrases import (
    assign_phrases,
    boxes_to_pixels,
    build_caption,
    normalise_phrase,
    phrase_token_spans,
)
from intenttuner.tiny import detector as tiny

FIXTURE = Path(__file__).parent / "fixtures" / "groundingdino_swint_ogc_keys.json"
TINY_SIZE = tiny.TINY_IMAGE_SIZE["shortest_edge"]  # shorter side the tiny models see (real: 800)


def _fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def _meta_state_dict(shapes: dict) -> dict[str, torch.Tensor]:
    return {name: torch.empty(shape, device="meta") for name, shape in shapes.items()}


# --- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "box", "expected"), [
    ((640, 480), (0.5, 0.5, 0.5, 0.5), (160, 120, 480, 360)),  # landscape
    ((300, 900), (0.5, 0.25, 1.0, 0.5), (0, 0, 300, 450)),  # portrait, full width
    ((1333, 750), (0.1, 0.9, 0.4, 0.4), (0, 525, 399.9, 750)),  # clipped left and bottom
    ((37, 91), (0.5, 0.5, 0.0, 0.0), (18.5, 45.5, 18.5, 45.5)),  # degenerate box survives
])
def test_boxes_to_pixels_maps_normalised_cxcywh_to_original_xyxy(size, box, expected):
    out = boxes_to_pixels(torch.tensor([box]), *size)
    assert out.shape == (1, 4)
    assert out[0].tolist() == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("sizes", [[(200, 100), (90, 300)], [(641, 479), (64, 64)]])
def test_boxes_of_resized_padded_batches_map_back_to_original_pixels(sizes):
    # The processor resizes each image (aspect kept) and pads the batch at the bottom/right;
    # GroundingDINO's boxes are normalised to the unpadded resized image, so dividing by that
    # size and multiplying by the original one must land on the same object.
    from transformers import GroundingDinoImageProcessor

    processor = GroundingDinoImageProcessor(size=tiny.TINY_IMAGE_SIZE)
    images = [Image.new("RGB", size) for size in sizes]
    masks = processor(images=images, return_tensors="pt")["pixel_mask"]
    for image, mask in zip(images, masks, strict=True):
        h, w = int(mask.any(1).sum()), int(mask.any(0).sum())
        assert mask[:h, :w].all()  # the image sits in the top-left corner
        width, height = image.size
        assert w / h == pytest.approx(width / height, rel=0.05)
        x0, y0, x1, y1 = 4, 6, 30, 40  # an object in the resized image, pixels
        norm = torch.tensor([[(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]])
        back = boxes_to_pixels(norm, width, height)[0].tolist()
        expected = [x0 * width / w, y0 * height / h, x1 * width / w, y1 * height / h]
        assert back == pytest.approx(expected, rel=1e-4)


def test_build_caption_joins_lowercased_phrases_with_spans():
    caption, spans = build_caption(["red hat", "dog"])
    assert caption == "red hat . dog ."
    assert [caption[s:e] for s, e in spans] == ["red hat", "dog"]


@pytest.mark.parametrize(("phrase", "expected"), [
    ("Black Leather Jacket", "black leather jacket"),
    ("  st. louis? sign ", "st louis sign"),  # '.'/'?' would split the phrase for the model
    ("...", ""),
])
def test_normalise_phrase(phrase, expected):
    assert normalise_phrase(phrase) == expected


def test_phrase_token_spans_from_offsets():
    # "[CLS] red hat . dog . [SEP]" with hand-written character offsets
    offsets = [(0, 0), (0, 3), (4, 7), (8, 9), (10, 13), (14, 15), (0, 0)]
    assert phrase_token_spans(offsets, [(0, 7), (10, 13), (20, 25)]) == [(1, 3), (4, 5), (0, 0)]


def test_phrase_token_spans_with_real_wordpiece_tokenizer(tmp_path):
    vocab = tiny.write_vocab(tmp_path, tiny.bert_style_vocab())
    tokenizer = gdino_tokenizer.bert_tokenizer(vocab)
    phrases = ["black leather jacket", "zebra", "hair"]  # "zebra" splits into letter pieces
    caption, char_spans = build_caption(phrases)
    encoded = tokenizer(caption, return_offsets_mapping=True)
    spans = phrase_token_spans(encoded["offset_mapping"], char_spans)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert [tokens[s:e] for s, e in spans] == [
        ["black", "leather", "jacket"], ["z", "##e", "##b", "##r", "##a"], ["hair"]]
    assert all(tokens[e] == "." for _, e in spans)


@pytest.mark.parametrize(("box_t", "text_t", "expected"), [
    (0.35, 0.25, [(0, 0, 0.9), (1, 1, 0.6)]),
    (0.65, 0.25, [(0, 0, 0.9)]),  # query 1 below the box threshold
    (0.35, 0.7, [(0, 0, 0.9)]),  # query 1's phrase probability below the text threshold
    (0.0, 0.0, [(0, 0, 0.9), (1, 1, 0.6), (2, 0, 0.3)]),
])
def test_assign_phrases_thresholds_and_best_phrase(box_t, text_t, expected):
    # tokens: [CLS] a1 a2 . b1 . [SEP]; phrase 0 = tokens 1-2, phrase 1 = token 4
    probs = torch.tensor([
        [0.0, 0.2, 0.9, 0.1, 0.5, 0.0, 0.0],  # best token in phrase 0
        [0.0, 0.1, 0.1, 0.0, 0.6, 0.0, 0.0],  # phrase 1
        [0.0, 0.3, 0.0, 0.0, 0.2, 0.0, 0.0],  # weak, phrase 0
    ])
    rows = assign_phrases(probs, [(1, 3), (4, 5)], box_t, text_t)
    assert [(q, p) for q, p, _ in rows] == [(q, p) for q, p, _ in expected]
    assert [s for _, _, s in rows] == pytest.approx([s for _, _, s in expected])


def test_assign_phrases_box_score_counts_special_tokens_but_phrase_must_pass():
    # The '.' token carries the highest probability (as in the original GroundingDINO, the box
    # score is over all tokens) but the phrase itself is too weak: the box is dropped.
    probs = torch.tensor([[0.0, 0.2, 0.8, 0.0]])
    assert assign_phrases(probs, [(1, 2)], 0.35, 0.25) == []
    assert assign_phrases(probs, [(1, 2)], 0.35, 0.1) == [(0, 0, pytest.approx(0.8))]


# --- key conversion against the full-size Swin-T layout -----------------------------------------


def _bundled_config() -> dict:
    return json.loads(detector.BUNDLED_CONFIG.read_text())


def _model_without_weights(cls, config):
    """``cls(config)`` with its parameters on the meta device (no memory, no init time)."""
    try:
        with torch.device("meta"):
            return cls(config)
    except RuntimeError:  # transformers 4.50's Swin calls .item() while building: use CPU
        from transformers.modeling_utils import no_init_weights

        with no_init_weights():
            return cls(config)


def test_every_swint_ogc_tensor_maps_onto_transformers_model():
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    fixture = _fixture()
    original = {**fixture["tensors"], **fixture["extra"]}
    converted = gdino_convert.original_to_hub(_meta_state_dict(original))
    assert converted.unknown == []
    assert sorted(converted.dropped) == sorted(
        [*fixture["extra"], "bert.pooler.dense.weight", "bert.pooler.dense.bias"])

    model = _model_without_weights(GroundingDinoForObjectDetection,
                                   GroundingDinoConfig(**_bundled_config()))
    expected = {k: tuple(v.shape) for k, v in gdino_convert.hub_state_dict(model).items()}
    got = {k: tuple(v.shape) for k, v in converted.state_dict.items()}
    ignore_missing = [re.compile(p) for p in model._keys_to_ignore_on_load_missing or ()]
    optional = gdino_convert.HUB_OPTIONAL
    missing = [k for k in expected.keys() - got.keys()
               if not optional.match(k) and not any(p.search(k) for p in ignore_missing)]
    unexpected = [k for k in got.keys() - expected.keys() if not optional.match(k)]
    assert missing == [] and unexpected == []
    assert [k for k in got.keys() & expected.keys() if got[k] != expected[k]] == []


def test_config_inferred_from_swint_shapes_is_the_bundled_config():
    shapes = _fixture()["tensors"]
    bundled = _bundled_config()
    inferred = gdino_config.infer_config(shapes, bundled)
    assert inferred == bundled


def test_module_prefix_and_roundtrip_of_original_names():
    shapes = _fixture()["tensors"]
    prefixed = _meta_state_dict({f"module.{k}": v for k, v in shapes.items()})
    converted = gdino_convert.original_to_hub(prefixed)
    assert converted.unknown == []
    back = gdino_convert.hub_to_original(converted.state_dict)
    assert {k: list(v.shape) for k, v in back.items()} == {
        k: v for k, v in shapes.items() if not k.startswith("bert.pooler.")}


def test_sniff_recognises_both_layouts_and_nothing_else():
    names = list(_fixture()["tensors"])
    hub = list(gdino_convert.original_to_hub(_meta_state_dict(_fixture()["tensors"])).state_dict)
    assert FAMILY.sniff(names)
    assert FAMILY.sniff([f"module.{n}" for n in names])
    assert FAMILY.sniff(hub)
    assert not FAMILY.sniff(["image_encoder.patch_embed.proj.weight", "mask_decoder.x"])
    # Deformable-DETR/DINO share backbone.0./transformer. but have no BERT text encoder
    assert not FAMILY.sniff([n for n in names if not n.startswith("bert.")])


# --- tiny models through the real loader --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """Tiny models of both formats, built once: ``<dir>/grounding-dino-tiny-random/``,
    ``<dir>/groundingdino_tiny_random.pth`` and ``<dir>/bert-base-uncased/vocab.txt``."""
    folder = tmp_path_factory.mktemp("tiny-gdino")
    hf = tiny.make_tiny_detector_hf(folder)
    tiny.make_tiny_detector_original(folder, source=hf)
    return folder


@pytest.fixture
def detector_dir(models_root, tiny_weights) -> Path:
    target = models_root / FAMILY.folder
    shutil.copytree(tiny_weights, target)
    return target


@pytest.fixture
def hf_detector(detector_dir):
    return FAMILY.load(detector_dir / tiny.HF_DIRNAME)


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    rgba = Image.fromarray((rng.random((90, 160, 4)) * 255).astype(np.uint8), "RGBA")
    grey = Image.fromarray((rng.random((130, 70)) * 255).astype(np.uint8), "L")
    deep = Image.fromarray((rng.random((50, 60)) * 65535).astype(np.uint16))  # mode I;16
    return [rgba, grey, deep]


@pytest.mark.parametrize("single_file", [tiny.ORIGINAL_FILENAME, "hub_layout.safetensors"])
def test_single_file_formats_give_the_same_detections_as_the_hf_folder(detector_dir, single_file):
    # The original .pth was converted from the HF folder's weights; a bare model.safetensors
    # copied out of an HF folder is read through the same original-layout path.
    hf_folder = detector_dir / tiny.HF_DIRNAME
    if single_file.endswith(".safetensors"):
        shutil.copy(hf_folder / "model.safetensors", detector_dir / single_file)
    hf = FAMILY.load(hf_folder)
    other = FAMILY.load(detector_dir / single_file, image_size=TINY_SIZE)
    assert (hf.kind, other.kind) == ("hf", "original")
    for det in (hf, other):  # both resize like the tiny HF folder's preprocessor_config.json
        assert dict(det._image_processor.size) == tiny.TINY_IMAGE_SIZE
    phrases = ["black leather jacket", "hair", "necklace"]
    kwargs = {"box_threshold": 0.0, "text_threshold": 0.0}
    a = hf.detect(_images()[:2], phrases, **kwargs)
    b = other.detect(_images()[:2], phrases, **kwargs)
    assert [len(x) for x in a] == [12, 12]  # every query kept at threshold 0
    assert a == b


def test_detect_boxes_lie_inside_each_original_image(hf_detector):
    images = _images()
    found = hf_detector.detect(images, ["red hat", "dog"], box_threshold=0.0,
                               text_threshold=0.0, batch_size=2)
    assert len(found) == len(images)
    for image, dets in zip(images, found, strict=True):
        w, h = image.size
        assert dets, f"no detections for {image.mode} {w}x{h}"
        for d in dets:
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
            assert 0.0 <= d.score <= 1.0 and d.phrase_index in (0, 1)
        assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


def test_detect_thresholds_filter_and_batches_agree(hf_detector):
    image = _images()[0]
    everything = hf_detector.detect([image], ["hair", "shirt"], box_threshold=0.0,
                                    text_threshold=0.0)[0]
    scores = sorted(d.score for d in everything)
    cut = scores[len(scores) // 2]
    kept = hf_detector.detect([image], ["hair", "shirt"], box_threshold=cut,
                              text_threshold=0.0)[0]
    assert kept == [d for d in everything if d.score > cut]
    twice = hf_detector.detect([image, image], ["hair", "shirt"], box_threshold=0.0,
                               text_threshold=0.0, batch_size=1)
    assert twice == [everything, everything]


def test_phrases_beyond_the_text_length_run_in_extra_passes(hf_detector):
    words = ["red", "blue", "green", "black", "white", "brown", "pink", "grey"]
    phrases = [f"{a} {b} hat" for a in words for b in words[:3]]  # 24 x 4 tokens > 64
    captions = hf_detector._captions(phrases)
    assert len(captions) > 1
    assert sorted(i for c in captions for i in c.phrase_indices) == list(range(len(phrases)))
    assert all(c.input_ids.shape[1] <= hf_detector.max_text_len for c in captions)
    found = hf_detector.detect(_images()[:1], phrases, box_threshold=0.0, text_threshold=0.0)
    assert len(found[0]) == 12 * len(captions)


def test_detect_honours_interrupts_between_batches(hf_detector, monkeypatch):
    calls = []

    def interrupted():
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt("cancelled")

    monkeypatch.setattr(runtime.get_runtime(), "check_interrupted", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hf_detector.detect(_images(), ["hat"], batch_size=1)
    assert len(calls) == 2


@pytest.mark.parametrize(("phrases", "kwargs", "match"), [
    ([], {}, "at least one phrase"),
    (["hat", "  "], {}, "Phrase 1"),
    ("hat", {}, "list of strings"),
    (["hat"], {"box_threshold": 1.5}, "box_threshold"),
    (["hat"], {"batch_size": 0}, "batch_size"),
])
def test_detect_rejects_bad_arguments(hf_detector, phrases, kwargs, match):
    with pytest.raises(InputError, match=match):
        hf_detector.detect(_images()[:1], phrases, **kwargs)


def test_exercise_describes_a_run(hf_detector):
    # thresholds 0: every one of the tiny model's queries gives a box, the best with its score
    queries = tiny.tiny_config(vocab_size=1).num_queries
    assert re.fullmatch(rf"{queries} boxes for 2 phrases on a 96x64 image \(hf, best score "
                        r"[01]\.\d\d\)", FAMILY.exercise(hf_detector))


# --- errors users see ---------------------------------------------------------------------------


def test_missing_bert_vocab_names_file_source_and_folder(detector_dir, models_root):
    shutil.rmtree(detector_dir / tiny.TOKENIZER_DIRNAME)
    with pytest.raises(WeightsNotFoundError) as err:
        FAMILY.load(detector_dir / tiny.ORIGINAL_FILENAME)
    message = str(err.value)
    assert "vocab.txt" in message and gdino_tokenizer.BERT_VOCAB_SOURCE in message
    assert str(models_root / "bert-base-uncased") in message


@pytest.mark.parametrize("where", ["models_bert", "hf_cache", "argument"])
def test_bert_vocab_is_found_where_users_keep_it(detector_dir, models_root, tmp_path, where):
    vocab = detector_dir / tiny.TOKENIZER_DIRNAME / "vocab.txt"
    if where == "models_bert":
        folder = models_root / "bert-base-uncased"
    elif where == "hf_cache":  # conftest points HF_HUB_CACHE at tmp_path/hf-cache
        folder = (tmp_path / "hf-cache" / "models--google-bert--bert-base-uncased" / "snapshots"
                  / "86b5e0934494bd15c9632b12f734a8a67f723594")
    else:
        folder = tmp_path / "my-bert"
    folder.mkdir(parents=True)
    shutil.move(vocab, folder / "vocab.txt")
    shutil.rmtree(vocab.parent)
    kwargs = {"tokenizer_dir": folder} if where == "argument" else {}
    det = FAMILY.load(detector_dir / tiny.ORIGINAL_FILENAME, image_size=TINY_SIZE, **kwargs)
    assert det.kind == "original"
    searched = folder if where == "argument" else None
    assert gdino_tokenizer.find_bert_tokenizer_dir(searched) == folder


def test_bert_vocab_is_also_found_inside_the_detector_folder(detector_dir, models_root):
    # Some GroundingDINO packs keep models/grounding-dino/bert-base-uncased/vocab.txt. With the
    # checkpoint moved elsewhere, only the rule for the detector's folder can find it.
    elsewhere = models_root / "elsewhere"
    elsewhere.mkdir()
    checkpoint = shutil.move(detector_dir / tiny.ORIGINAL_FILENAME, elsewhere)
    assert (models_root / FAMILY.folder / tiny.TOKENIZER_DIRNAME / "vocab.txt").is_file()
    found = gdino_tokenizer.find_bert_tokenizer_dir(needed_by=Path(checkpoint))
    assert found == models_root / FAMILY.folder / tiny.TOKENIZER_DIRNAME


def test_hf_folder_of_another_model_type_is_wrong_family(detector_dir):
    config_path = detector_dir / tiny.HF_DIRNAME / "config.json"
    config = json.loads(config_path.read_text())
    config["model_type"] = "owlv2"
    config_path.write_text(json.dumps(config))
    with pytest.raises(WrongModelFamilyError, match="'owlv2' model folder"):
        FAMILY.load(config_path.parent)


@pytest.mark.parametrize(("remove", "error", "match"), [
    (["model.safetensors"], WeightsNotFoundError, "no model.safetensors"),
    (["tokenizer.json", "vocab.txt"], WeightsNotFoundError, "tokenizer.json or vocab.txt"),
    (["preprocessor_config.json"], WeightsNotFoundError, "preprocessor_config.json"),
    (["config.json"], WeightsNotFoundError, "no config.json"),
])
def test_incomplete_hf_folder_names_the_missing_files(detector_dir, remove, error, match):
    folder = detector_dir / tiny.HF_DIRNAME
    for name in remove:
        (folder / name).unlink()
    with pytest.raises(error, match=match):
        FAMILY.load(folder)


def test_truncated_hf_weights_are_reported_as_corrupt(detector_dir):
    path = detector_dir / tiny.HF_DIRNAME / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsCorruptError, match="model.safetensors could not be read"):
        FAMILY.load(path.parent)


def test_checkpoint_missing_tensors_is_refused(detector_dir):
    from intenttuner.weights.safe_load import load_state_dict

    path = detector_dir / tiny.ORIGINAL_FILENAME
    state = load_state_dict(path)
    del state["transformer.decoder.layers.1.linear2.weight"]
    torch.save({"model": state}, path)
    with pytest.raises(WeightsCorruptError, match="1 missing tensors"):
        FAMILY.load(path, image_size=TINY_SIZE)
