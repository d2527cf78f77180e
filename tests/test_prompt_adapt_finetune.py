"""Fine-tuning your own prompt adapter: the pairs text, the settings, and training the tiny
random Promptist until it writes each preferred prompt exactly, through the whole path the
node takes (train, save, load the folder by name, rephrase with the paper's 8 beams)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
import torch

from intenttuner import runtime
from intenttuner.errors import InputError
from intenttuner.loading import load_model
from intenttuner.prompt_adapt.finetune import (
    AdapterTrainSettings,
    read_pairs,
    train_adapter,
)
from intenttuner.prompt_adapt.pairs import IGNORE, Pair, collate, encode_pairs
from tests.evaluation_helpers import tiny_models

pytestmark = pytest.mark.usefixtures("one_thread")  # torch's threads fight on 2 shared cores

PAIRS = """# my pairs: plain => what renders well on my model
a cat sitting on a windowsill => a cat sitting on a windowsill, soft lighting, highly detailed

portrait of an old man\tportrait of an old man, oil painting, dramatic lighting, masterpiece
a castle in the fog => a castle in the fog, fantasy, cinematic, trending on artstation
a cat sitting on a windowsill => a cat sitting on a windowsill, soft lighting, highly detailed
"""
# 40 epochs were the fewest that memorised all three under 8-beam search (30 left two empty:
# with the paper's length penalty -1 a short beam wins until the end token is unlikely early);
# 60 leave a margin.
MEMORISE = AdapterTrainSettings(epochs=60, learning_rate=1e-2, batch_size=2, seed=0)


@pytest.fixture
def adapter(models_root):
    return tiny_models(models_root, "prompt_adapter")["prompt_adapter"]


def test_read_pairs():
    pairs = read_pairs(PAIRS)
    assert pairs == [
        ("a cat sitting on a windowsill",
         "a cat sitting on a windowsill, soft lighting, highly detailed"),
        ("portrait of an old man",
         "portrait of an old man, oil painting, dramatic lighting, masterpiece"),
        ("a castle in the fog", "a castle in the fog, fantasy, cinematic, trending on artstation"),
    ]  # the comment and the blank line skipped, the repeated first pair kept once
    assert [p.line for p in pairs] == [2, 4, 5]
    assert read_pairs("a => b => c") == [("a", "b => c")]  # split at the first '=>' only
    assert read_pairs("a\tb, c") == [("a", "b, c")]


@pytest.mark.parametrize(("text", "message"), [
    ("a => b\njust a prompt\n", r"Line 2 of the pairs \('just a prompt'\) has no '=>'"),
    ("# c\n => b\n", r"Line 2 of the pairs \('=> b'\) has an empty plain prompt"),
    ("a =>   \n", r"Line 1 of the pairs \('a =>'\) has an empty preferred prompt"),
    ("# only a comment\n\n", "No prompt pairs to train on"),
])
def test_bad_pairs_text_names_the_line(text, message):
    with pytest.raises(InputError, match=message) as caught:
        read_pairs(text)
    assert "plain prompt => preferred prompt" in str(caught.value)  # shows the format


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epochs", 0, "epochs must be at least 1"),
    ("epochs", 2.5, "epochs must be a whole number"),
    ("batch_size", 0, "batch_size must be at least 1"),
    ("learning_rate", 0.0, r"learning_rate \(AdamW's step size\) must be between"),
    ("learning_rate", float("nan"), "learning_rate"),
    ("weight_decay", -0.1, "weight_decay must be between 0 and 1"),
    ("seed", -1, "seed must be 0 or more"),
])
def test_settings_are_checked(field, value, message):
    with pytest.raises(InputError, match=message):
        AdapterTrainSettings(**{field: value})


def test_examples_learn_only_the_preferred_prompt_and_the_end(adapter):
    tokenizer = adapter.tokenizer
    (example,) = encode_pairs([("a cat", "a cat, 8 k")], tokenizer, adapter.max_prompt_tokens)
    prompt = tokenizer("a cat Rephrase:")["input_ids"]  # exactly what rephrase feeds it
    target = tokenizer(" a cat, 8 k")["input_ids"]
    assert example.ids == [*prompt, *target, tokenizer.eos_token_id]
    assert example.labels == [IGNORE] * len(prompt) + [*target, tokenizer.eos_token_id]
    (short,) = encode_pairs([("a", "b")], tokenizer, adapter.max_prompt_tokens)
    batch = collate([example, short], tokenizer.pad_token_id)
    n = len(short.ids)
    assert batch["input_ids"][1].tolist() == short.ids + [tokenizer.pad_token_id] * (
        len(example.ids) - n)  # padded on the right
    assert batch["attention_mask"][1].tolist() == [1] * n + [0] * (len(example.ids) - n)
    assert batch["labels"][1, n:].eq(IGNORE).all()


def test_train_save_load_and_memorise(adapter, models_root):
    plain = [p for p, _ in read_pairs(PAIRS)]
    original = {k: v.clone() for k, v in adapter.module().state_dict().items()}
    before = adapter.rephrase(["a red fox"], num_beams=2)
    out = models_root / "prompt_adapters" / "my-adapter"
    result = train_adapter(adapter, read_pairs(PAIRS), out, settings=MEMORISE)

    assert (result.folder, result.name, result.base) == (out, "my-adapter",
                                                         "promptist-tiny-random")
    assert (result.pairs, result.epochs, result.steps, len(result.losses)) == (3, 60, 120, 120)
    # A random model starts near the uniform guess over its 851 tokens (ln 851 = 6.75; 6.83
    # here) and ends near 0 (0.036 here).
    assert result.epoch_loss(0) == pytest.approx(math.log(len(adapter.tokenizer)), abs=0.5)
    assert result.epoch_loss(-1) < 0.1
    assert "loss" in result.summary() and "my-adapter" in result.summary()

    mine = load_model("prompt_adapter", "my-adapter")
    assert mine.rephrase(plain) == [q for _, q in read_pairs(PAIRS)]  # the paper's 8 beams
    meta = mine.metadata
    assert {k: meta[k] for k in ("base", "pairs", "epochs", "learning_rate", "batch_size",
                                 "seed", "steps")} == {
        "base": "promptist-tiny-random", "pairs": 3, "epochs": 60, "learning_rate": 1e-2,
        "batch_size": 2, "seed": 0, "steps": 120}
    assert meta["final_loss"] == pytest.approx(result.epoch_loss(-1))
    assert datetime.fromisoformat(meta["trained_at"]).tzinfo is not None

    # The connected adapter was not touched: same weights, same rewrite, still in eval mode.
    after = adapter.module().state_dict()
    assert all(torch.equal(original[k], after[k]) for k in original)
    assert not adapter.module().training
    assert adapter.rephrase(["a red fox"], num_beams=2) == before


def test_the_same_seed_trains_the_same_and_leaves_the_host_rng_alone(adapter, models_root):
    settings = AdapterTrainSettings(epochs=2, learning_rate=1e-3, batch_size=2, seed=5)
    pairs = read_pairs(PAIRS)
    folder = models_root / "prompt_adapters"
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = train_adapter(adapter, pairs, folder / "a", settings=settings)
    assert torch.equal(torch.rand(3), expected)  # the host's generator is where it was
    again = train_adapter(adapter, pairs, folder / "b", settings=settings)
    other = train_adapter(adapter, pairs, folder / "c",
                          settings=AdapterTrainSettings(epochs=2, learning_rate=1e-3,
                                                        batch_size=2, seed=6))
    assert first.losses == again.losses and len(first.losses) == 4
    assert other.losses != first.losses


def test_refusals_before_any_training(adapter, models_root):
    folder = models_root / "prompt_adapters"
    (folder / "taken").mkdir()
    (folder / "taken" / "config.json").write_text("{}")
    steps = []
    rt = runtime.get_runtime()
    original = rt.progress

    def counting(total, desc, unit="it"):
        steps.append(total)
        return original(total, desc, unit)

    rt.progress = counting
    try:
        with pytest.raises(InputError, match="taken already exists: choose another name"):
            train_adapter(adapter, read_pairs(PAIRS), folder / "taken")
        with pytest.raises(InputError, match="No prompt pairs to train on"):
            train_adapter(adapter, [], folder / "new")
        with pytest.raises(InputError, match=r"Pair 2 is \('a', ''\)"):
            train_adapter(adapter, [("a", "b"), ("a", "")], folder / "new")
        long_plain = " ".join(["portrait of an old man"] * 12)
        tokens = adapter.count_tokens(long_plain)
        assert adapter.max_prompt_tokens == 53 < tokens  # 128 positions - a 75-token rewrite
        text = f"a => b\n# next: too long\n{long_plain} => b\n"
        with pytest.raises(InputError, match=rf"Pair 2 \(line 3 of the pairs\): the plain "
                                             rf"prompt is {tokens} tokens \(with 'Rephrase:'\), "
                                             "the adapter reads at most 53"):
            train_adapter(adapter, read_pairs(text), folder / "new")
        long_preferred = " ".join(["highly detailed"] * 40)
        tokens = len(adapter.tokenizer(" " + long_preferred)["input_ids"])
        with pytest.raises(InputError, match=rf"Pair 1: the preferred prompt is {tokens} tokens, "
                                             "the adapter writes at most 74"):
            train_adapter(adapter, [Pair("a", long_preferred)], folder / "new")
    finally:
        rt.progress = original
    assert steps == []  # nothing was trained
    assert sorted(p.name for p in folder.iterdir()) == ["promptist-tiny-random", "taken"]


def test_cancel_between_steps_leaves_no_folder(adapter, models_root, monkeypatch):
    checks = []

    def interrupted():
        checks.append(1)
        if len(checks) == 4:  # the first check, then before steps 1, 2 and 3
            raise KeyboardInterrupt

    monkeypatch.setattr(runtime.get_runtime(), "check_interrupted", interrupted)
    folder = models_root / "prompt_adapters"
    with pytest.raises(KeyboardInterrupt):
        train_adapter(adapter, read_pairs(PAIRS), folder / "cancelled",
                      settings=AdapterTrainSettings(epochs=5, batch_size=1))
    assert len(checks) == 4
    assert sorted(p.name for p in folder.iterdir()) == ["promptist-tiny-random"]
