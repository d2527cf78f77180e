"""Prompt adapter (Promptist): the tiny random GPT-2 folder loaded through the real loading
code; the paper's input and decoding checked on what reaches generate(), against transformers'
own beam search, batched and alone; progress and Cancel; folder refusals; save_adapter's round
trip. Generation tests shorten max_new_tokens (a random model never stops early)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from intenttuner import loading
from intenttuner.errors import InputError, WeightsCorruptError, WrongModelFamilyError
from intenttuner.families import FAMILIES, prompt_adapter
from intenttuner.families.prompt_adapter import (
    FAMILY,
    GENERATION,
    INPUT_SUFFIX,
    PromptAdapter,
    save_adapter,
)
from intenttuner.runtime import get_runtime
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny.identity_encoder import make_tiny as make_dino
from intenttuner.tiny.local_llm import make_tiny as make_llm
from intenttuner.tiny.prompt_adapter import TINY_DIR, make_tiny, write_tokenizer
from intenttuner.weights.folders import MODEL_FOLDERS
from intenttuner.weights.manifest import load_manifest
from intenttuner.weights.safe_load import load_state_dict, tensor_names

TOKENS = 12  # new tokens per rewrite in the generation tests (the paper's 75 are slow on CPU)
PROMPTS = ["a cat sitting on a windowsill", "  portrait of an old man  ",
           "a red dragon flying over the castle at night", "sunset"]


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("adapter"))


@pytest.fixture
def tiny_dir(models_root, tiny_template):
    """A fresh copy in models/prompt_adapters per test (tests damage it)."""
    return Path(shutil.copytree(tiny_template, models_root / "prompt_adapters" / TINY_DIR))


@pytest.fixture(scope="module")
def adapter(tiny_template) -> PromptAdapter:
    """The tiny model loaded once for the tests that do not change it."""
    return FAMILY.load(tiny_template)


@pytest.fixture
def short(monkeypatch):
    monkeypatch.setitem(GENERATION, "max_new_tokens", TOKENS)


def _state(adapter: PromptAdapter) -> dict[str, torch.Tensor]:
    return adapter.module().state_dict()


def test_tiny_folder_has_the_files_of_the_default_download(tiny_template):
    assert TINY_BUILDERS["prompt_adapter"] is make_tiny
    default = load_manifest().default_for("prompt_adapter")
    assert (default.id, default.hf_repo, default.target) == ("promptist", "microsoft/Promptist",
                                                             "Promptist")
    assert default.folder == FAMILY.folder == "prompt_adapters"
    assert MODEL_FOLDERS[FAMILY.folder].holds_directories
    assert sorted(p.name for p in tiny_template.iterdir()) == sorted(f.name for f in default.files)
    config = json.loads((tiny_template / "config.json").read_text())
    assert (config["model_type"], config["architectures"]) == ("gpt2", ["GPT2LMHeadModel"])
    names = tensor_names(tiny_template / "model.safetensors")
    assert "lm_head.weight" not in names and all(n.startswith("transformer.") for n in names)


def test_loads_through_the_registry_once_and_describes_itself(tiny_dir):
    assert TINY_DIR in loading.model_choices("prompt_adapter")
    adapter = loading.load_model("prompt_adapter", TINY_DIR)
    assert loading.load_model("prompt_adapter", TINY_DIR) is adapter  # loaded once, shared
    assert isinstance(adapter, PromptAdapter) and adapter.dtype == torch.float32  # CPU auto
    assert (adapter.name, adapter.folder, adapter.metadata) == (TINY_DIR, tiny_dir, {})
    assert (adapter.context, adapter.max_prompt_tokens) == (128, 128 - 75)
    tokenizer = adapter.tokenizer
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.padding_side == "left"
    model = adapter.module()
    assert type(model).__name__ == "GPT2LMHeadModel" and not model.training
    assert model.lm_head.weight is model.transformer.wte.weight  # tied, as GPT-2's


@pytest.mark.parametrize(("device", "precision", "expected"), [
    ("cpu", "auto", torch.float32), ("cuda", "auto", torch.float16),
    ("cpu", "bf16", torch.bfloat16)])
def test_precision(tiny_template, monkeypatch, device, precision, expected):
    monkeypatch.setattr(get_runtime(), "torch_device", lambda: torch.device(device))
    monkeypatch.setattr(get_runtime(), "manage", lambda m: type("M", (), {"module": m})())
    loaded = prompt_adapter.load(tiny_template, precision=precision)
    assert loaded.dtype is expected and loaded._managed.module.dtype is expected


def test_generate_gets_the_paper_input_and_settings(adapter, monkeypatch):
    """What reaches generate(): the prompts + " Rephrase:" tokenized and left-padded, in
    batches of batch_size, with exactly the paper's decoding settings; the rewrite is the
    decoded continuation, special tokens skipped, stripped."""
    calls, tokenizer = [], adapter.tokenizer
    new = tokenizer(" highly detailed<|endoftext|>", return_tensors="pt")["input_ids"][0]

    def fake_generate(**kwargs):
        calls.append(kwargs)
        ids = kwargs["input_ids"]
        return torch.cat([ids, new.expand(ids.shape[0], -1)], dim=1)

    monkeypatch.setattr(adapter._managed.module, "generate", fake_generate)
    assert adapter.rephrase(PROMPTS[:3], batch_size=2) == ["highly detailed"] * 3
    assert [len(c["input_ids"]) for c in calls] == [2, 1]
    for call in calls:
        assert {k: call[k] for k in GENERATION} == GENERATION
        assert call["eos_token_id"] == call["pad_token_id"] == tokenizer.eos_token_id
    first = calls[0]
    for row, mask, prompt in zip(first["input_ids"], first["attention_mask"], PROMPTS[:2],
                                 strict=True):
        expected = tokenizer(prompt.strip() + " Rephrase:")["input_ids"]
        assert row[mask.bool()].tolist() == expected  # the prompt, at the right end
        assert mask.tolist() == [0] * (len(row) - len(expected)) + [1] * len(expected)
        assert set(row[~mask.bool()].tolist()) <= {tokenizer.pad_token_id}
    assert adapter.count_tokens(" a cat ") == len(tokenizer("a cat Rephrase:")["input_ids"])
    adapter.rephrase(["a cat"], num_beams=1)
    assert calls[-1]["num_beams"] == 1 and "length_penalty" not in calls[-1]


def test_rephrase_is_transformers_beam_search_and_batches_change_nothing(adapter, short):
    alone = [adapter.rephrase([p])[0] for p in PROMPTS]
    assert adapter.rephrase(PROMPTS, batch_size=3) == alone
    assert all(alone) and len(set(alone)) == len(alone)  # random words, one per prompt

    tokenizer = adapter.tokenizer
    ids = tokenizer(PROMPTS[0] + INPUT_SUFFIX, return_tensors="pt")
    with torch.inference_mode():  # the paper's demo, as transformers runs it
        out = adapter.module().generate(
            **ids, do_sample=False, num_beams=8, num_return_sequences=8, length_penalty=-1.0,
            max_new_tokens=TOKENS, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.eos_token_id)
    expected = tokenizer.decode(out[0], skip_special_tokens=True)
    assert expected.replace(PROMPTS[0] + INPUT_SUFFIX, "").strip() == alone[0]


@pytest.mark.parametrize(("prompts", "message"), [
    (["a cat", "  "], r"Prompt 2 is empty \('  '\)"),
    (["a cat", None], r"Prompt 2 is empty \(None\)"),
    (["a cat", "a b " * 40], r"Prompt 2 is \d+ tokens long .* reads at most 53 before"),
])
def test_bad_prompts_are_refused_before_any_generation(adapter, monkeypatch, prompts, message):
    monkeypatch.setattr(adapter._managed.module, "generate", pytest.fail)
    with pytest.raises(InputError, match=message):
        adapter.rephrase(prompts)
    with pytest.raises(InputError, match="batch_size 0 must be at least 1"):
        adapter.rephrase(["a cat"], batch_size=0)


def test_one_progress_step_per_token_and_cancel_between_tokens(adapter, short, monkeypatch):
    runtime = get_runtime()
    progress, updates, totals = runtime.progress, [], []

    def recording_progress(total, *args, **kwargs):
        totals.append(total)
        bar = progress(total, *args, **kwargs)
        update = bar.update
        bar.update = lambda n=1: updates.append(n) or update(n)
        return bar

    monkeypatch.setattr(runtime, "progress", recording_progress)
    adapter.rephrase(PROMPTS[:3], batch_size=2)
    assert totals == [2 * TOKENS] and sum(updates) == 2 * TOKENS

    class Cancelled(Exception):
        pass

    checks = []

    def cancel_at_the_fourth_check():
        checks.append(1)
        if len(checks) == 4:
            raise Cancelled

    updates.clear()
    monkeypatch.setattr(runtime, "check_interrupted", cancel_at_the_fourth_check)
    with pytest.raises(Cancelled):  # the host's interrupt, unwrapped
        adapter.rephrase(PROMPTS)
    assert updates == [1, 1, 1]  # one check before generating, then one per token


def test_pickle_weights_and_bare_names_load_the_same_model(adapter, tmp_path):
    reference = _state(adapter)
    folder = make_tiny(tmp_path / "bin", weights="bin")
    assert not (folder / "model.safetensors").exists()
    loaded = FAMILY.load(folder)
    assert all(torch.equal(t, reference[n]) for n, t in _state(loaded).items())

    # GPT2Model's bare names, the tied lm_head and the old causal-mask buffers, as older
    # checkpoints saved them: the same model.
    state = load_state_dict(folder / "pytorch_model.bin")
    bare = {n.removeprefix("transformer."): t for n, t in state.items()}
    bare["lm_head.weight"] = state["transformer.wte.weight"]
    bare["h.0.attn.bias"] = bare["h.0.attn.masked_bias"] = torch.ones(1)
    torch.save(bare, folder / "pytorch_model.bin")
    loaded = FAMILY.load(folder)
    assert all(torch.equal(t, reference[n]) for n, t in _state(loaded).items())
    del bare["wte.weight"]  # a converter that kept the tied lm_head copy instead
    torch.save(bare, folder / "pytorch_model.bin")
    loaded = FAMILY.load(folder)
    assert all(torch.equal(t, reference[n]) for n, t in _state(loaded).items())


def test_vocab_and_merges_make_the_same_tokenizer(adapter, tiny_dir):
    write_tokenizer(tiny_dir, merges_file=True)
    (tiny_dir / "tokenizer.json").unlink()
    tokenizer = FAMILY.load(tiny_dir).tokenizer
    for text in [*PROMPTS, "Ünïcode ✓ <|endoftext|>"]:
        assert tokenizer(text)["input_ids"] == adapter.tokenizer(text)["input_ids"]
    assert tokenizer.decode(tokenizer(PROMPTS[0])["input_ids"]) == PROMPTS[0]


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(changes)
    path.write_text(json.dumps(data))


def _edit_weights(path: Path, edit) -> None:
    from safetensors.torch import save_file

    state = load_state_dict(path)
    edit(state)
    save_file(state, str(path))


@pytest.mark.parametrize(("damage", "error", "message"), [
    (lambda d: (d / "config.json").unlink(), WeightsCorruptError, "has no config.json"),
    (lambda d: (d / "model.safetensors").unlink(), WeightsCorruptError,
     r"no weights \(model.safetensors or pytorch_model.bin\)"),
    (lambda d: [(d / n).unlink() for n in ("tokenizer.json", "vocab.json")], WeightsCorruptError,
     r"tokenizer.json \(or vocab.json and merges.txt\) missing"),
    (lambda d: (d / "model.safetensors").write_bytes(
        (d / "model.safetensors").read_bytes()[:5000]), WeightsCorruptError,
     "truncated or corrupt"),
    (lambda d: _edit_json(d / "config.json", model_type="llama"), WrongModelFamilyError,
     r"holds a 'llama' model \(GPT2LMHeadModel\), not a GPT-2 prompt adapter"),
    (lambda d: _edit_json(d / "tokenizer_config.json", chat_template="{{ messages }}"),
     WrongModelFamilyError, "this is a chat model.* use Load Local LLM and connect it as the "
                            "LLM backend"),
    (lambda d: (d / "chat_template.jinja").write_text("{{ messages }}"), WrongModelFamilyError,
     "this is a chat model"),
    (lambda d: _edit_json(d / "config.json", auto_map={"AutoModelForCausalLM": "m.Model"}),
     WrongModelFamilyError, r"config\.json auto_map: trust_remote_code.*microsoft/Promptist"),
    (lambda d: (d / "modeling_gpt.py").write_text("import os\n"), WrongModelFamilyError,
     r"modeling_gpt\.py: trust_remote_code"),
    (lambda d: _edit_weights(d / "model.safetensors",
                             lambda s: s.pop("transformer.h.1.mlp.c_fc.weight")),
     WeightsCorruptError, r"does not fit the GPT-2 .*missing transformer\.h\.1\.mlp\.c_fc"),
    (lambda d: _edit_weights(d / "model.safetensors",
                             lambda s: s.update({"transformer.h.2.ln_1.weight": torch.ones(32)})),
     WeightsCorruptError, r"unexpected transformer\.h\.2\.ln_1\.weight"),
    (lambda d: _edit_json(d / "config.json", n_embd=64), WeightsCorruptError,
     "does not fit the GPT-2 its config.json describes .*size mismatch"),
    (lambda d: _edit_json(d / "config.json", vocab_size=500), WeightsCorruptError,
     r"the tokenizer has \d+ tokens but the model only 500"),
])
def test_unusable_folders_are_refused_with_the_fix(tiny_dir, damage, error, message):
    damage(tiny_dir)
    with pytest.raises(error, match=message) as info:
        loading.load_model("prompt_adapter", TINY_DIR)
    assert str(tiny_dir) in str(info.value)


def test_a_local_llm_folder_is_sent_to_load_local_llm(models_root):
    folder = make_llm(models_root / "prompt_adapters")
    with pytest.raises(WrongModelFamilyError, match="chat model.*models/LLM.*Load Local LLM"):
        loading.load_model("prompt_adapter", folder.name)


def test_another_familys_folder_is_sent_to_its_models_folder(models_root):
    folder = make_dino(models_root / "prompt_adapters")
    with pytest.raises(WrongModelFamilyError,
                       match="holds a 'vit' model.*move it to models/identity_encoders"):
        loading.load_model("prompt_adapter", folder.name)


def test_sniff_recognises_gpt2_with_or_without_the_prefix(tiny_template):
    names = tensor_names(tiny_template / "model.safetensors")
    assert prompt_adapter.sniff(names)
    assert prompt_adapter.sniff([n.removeprefix("transformer.") for n in names])
    assert not prompt_adapter.sniff([n for n in names if ".attn.c_attn." not in n])
    assert [n for n, f in FAMILIES.items() if f.sniff(names)] == ["prompt_adapter"]


def test_save_adapter_round_trip(adapter, models_root, short):
    target = models_root / "prompt_adapters" / "my-adapter"
    target.mkdir(parents=True)  # an empty folder may be written into
    metadata = {"base": adapter.name, "pairs": 3, "final_loss": 0.25}
    assert save_adapter(adapter.module(), adapter.tokenizer, target, metadata) == target
    assert sorted(p.name for p in target.iterdir()) == sorted([
        "config.json", "generation_config.json", "intenttuner_adapter.json", "merges.txt",
        "model.safetensors", "tokenizer.json", "vocab.json"])
    assert "lm_head.weight" not in tensor_names(target / "model.safetensors")
    assert [p.name for p in target.parent.iterdir()] == ["my-adapter"]  # no partial folder left

    saved = loading.load_model("prompt_adapter", "my-adapter")
    assert saved.metadata == metadata and saved.name == "my-adapter"
    reference = _state(adapter)
    assert all(torch.equal(t, reference[n]) for n, t in _state(saved).items())
    assert saved.rephrase(PROMPTS[:2]) == adapter.rephrase(PROMPTS[:2])
    with pytest.raises(InputError, match="my-adapter already exists: choose another name"):
        save_adapter(adapter.module(), adapter.tokenizer, target, metadata)


def test_loader_node_returns_the_adapter(pack, tiny_dir):
    node = pack.NODE_CLASS_MAPPINGS["IntentTunerLoadPromptAdapter"]
    assert node.RETURN_TYPES == ("IT_PROMPT_ADAPTER",)
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["IntentTunerLoadPromptAdapter"] == \
        "Load Prompt Adapter (Promptist)"
    options, extra = node.INPUT_TYPES()["required"]["model"]
    assert options[0] == TINY_DIR and extra["default"] == "Promptist"
    (loaded,) = node().load(TINY_DIR, "auto")
    assert type(loaded).__name__ == "PromptAdapter" and loaded.name == TINY_DIR
