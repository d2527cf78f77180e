"""Local LLM: the tiny random Qwen2 instruct folder loaded through the real loading code; chat,
greedy decoding against transformers' own generate, progress and Cancel, folder refusals; and the
same model behind the intent parser and the caption refiner, whose garbage answers take the
repair and fallback paths."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from intenttuner import loading
from intenttuner.captions.refine_llm import refine_with_llm, summarise_intent
from intenttuner.captions.refine_offline import refine_offline
from intenttuner.errors import (
    InputError,
    LLMError,
    LLMUnavailableError,
    WeightsCorruptError,
    WrongModelFamilyError,
)
from intenttuner.families import captioner, local_llm
from intenttuner.families.local_llm import FAMILY, LocalLLM
from intenttuner.intent import llm_parse
from intenttuner.intent.parse import parse_intent
from intenttuner.intent.preview import summary
from intenttuner.llm_chat import complete
from intenttuner.runtime import get_runtime
from intenttuner.tiny import TINY_BUILDERS
from intenttuner.tiny.captioner_florence import make_tiny as make_florence
from intenttuner.tiny.local_llm import CHAT_TEMPLATE, TINY_DIR, make_tiny, write_tokenizer
from intenttuner.weights.manifest import load_manifest
from tests.test_captions_llm import INTENT, JOBS, RULES

TOKENS = 24  # random models never end their turn: short answers keep the file fast
DESCRIPTION = "Keep his face. His hair colour should be adjustable. Never a necklace."
MESSAGES = [{"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "Describe the jacket."}]


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("llm"))


@pytest.fixture
def tiny_dir(models_root, tiny_template):
    """A fresh copy in models/LLM per test (tests damage it)."""
    return Path(shutil.copytree(tiny_template, models_root / "LLM" / TINY_DIR))


@pytest.fixture(scope="module")
def llm(tiny_template) -> LocalLLM:
    """The tiny model loaded once for the chat tests (they do not change it)."""
    return FAMILY.load(tiny_template).with_max_new_tokens(TOKENS)


def test_tiny_folder_has_the_files_of_the_default_download(models_root, tiny_template):
    assert TINY_BUILDERS["local_llm"] is make_tiny  # (tiny_template: transformers imported)
    folder = make_tiny(models_root / "LLM")
    default = load_manifest().default_for("local_llm")
    assert default.folder == FAMILY.folder == "LLM"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in default.files)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"] and "auto_map" not in config
    tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer["chat_template"] == CHAT_TEMPLATE and tokenizer["eos_token"] == "<|im_end|>"


def test_loads_through_the_registry_once_and_describes_itself(tiny_dir):
    assert TINY_DIR in loading.model_choices("local_llm")
    llm = loading.load_model("local_llm", TINY_DIR)
    assert loading.load_model("local_llm", TINY_DIR) is llm  # loaded once, shared
    assert isinstance(llm, LocalLLM) and llm.dtype == torch.float32  # auto on the CPU
    assert llm.model == TINY_DIR
    assert llm.base_url == f"models/LLM/{TINY_DIR} (in-process)"
    limited = llm.with_max_new_tokens(7)
    assert (limited.max_new_tokens, llm.max_new_tokens) == (7, local_llm.DEFAULT_MAX_NEW_TOKENS)
    assert limited._managed is llm._managed  # the same weights, not a second copy
    with pytest.raises(InputError, match="at least 1"):
        llm.with_max_new_tokens(0)


@pytest.mark.parametrize(("precision", "device", "bf16", "expected"), [
    ("auto", "cuda", True, torch.bfloat16), ("auto", "cuda", False, torch.float16),
    ("auto", "cpu", True, torch.float32), ("fp16", "cuda", True, torch.float16),
    ("fp32", "cuda", True, torch.float32), ("bf16", "cpu", False, torch.bfloat16),
])
def test_precision(monkeypatch, precision, device, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **kw: bf16)
    assert local_llm.llm_dtype(precision, torch.device(device)) is expected


def test_chat_is_greedy_decoding_of_the_chat_template(llm):
    """The answer is what transformers' own greedy generate writes after the template's
    assistant opening, without the special tokens; asking twice gives the same answer."""
    answer = llm.chat(MESSAGES, max_new_tokens=64)
    assert answer and answer == llm.chat(MESSAGES, max_new_tokens=64)

    tokenizer = llm._tokenizer
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nAnswer in JSON.<|im_end|>\n<|im_start|>user\n"
                    "Describe the jacket.<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = llm._managed.load().generate(**ids, max_new_tokens=64, do_sample=False,
                                           repetition_penalty=1.0,  # the folder says 1.1
                                           pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] - ids["input_ids"].shape[1] == 64  # random weights never stop early
    expected = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer == expected.strip()


def test_generation_stops_at_the_end_of_turn_ids_of_the_folder(llm, monkeypatch):
    one, longer = (llm.chat(MESSAGES, max_new_tokens=n) for n in (1, TOKENS))
    with torch.inference_mode():
        first = int(llm._managed.load()(**llm._encode(MESSAGES)).logits[0, -1].argmax())
    config = llm._managed.module.generation_config
    monkeypatch.setattr(config, "eos_token_id", [first])  # the first token now ends the turn
    assert llm.chat(MESSAGES, max_new_tokens=TOKENS) == one != longer


def test_one_progress_step_per_token_and_cancel_between_tokens(llm, monkeypatch):
    runtime = get_runtime()
    progress, updates, totals = runtime.progress, [], []

    def recording_progress(total, *args, **kwargs):
        totals.append(total)
        bar = progress(total, *args, **kwargs)
        update = bar.update
        bar.update = lambda n=1: updates.append(n) or update(n)
        return bar

    monkeypatch.setattr(runtime, "progress", recording_progress)
    llm.chat(MESSAGES, max_new_tokens=9)
    assert totals == [9] and updates == [1] * 9

    class Cancelled(Exception):
        pass

    checks = []

    def cancel_at_the_fourth_check():
        checks.append(1)
        if len(checks) == 4:
            raise Cancelled

    updates.clear()
    monkeypatch.setattr(runtime, "check_interrupted", cancel_at_the_fourth_check)
    with pytest.raises(Cancelled):  # the host's interrupt, not an LLMError
        llm.chat(MESSAGES, max_new_tokens=TOKENS)
    assert len(updates) == 3  # one check before the prompt, then one per token


@pytest.mark.parametrize(("error", "expected", "named"), [
    (torch.OutOfMemoryError("CUDA out of memory"), LLMUnavailableError, "ran out of memory"),
    (RuntimeError("probability tensor contains inf"), LLMError,
     r"failed while answering \(probability tensor contains inf\)"),
])
def test_generation_failures_are_llm_errors(llm, monkeypatch, error, expected, named):
    def fail(**kwargs):
        raise error

    monkeypatch.setattr(llm._managed.module, "generate", fail)
    with pytest.raises(expected, match=named) as info:
        llm.chat(MESSAGES)
    assert type(info.value) is expected and f"'{TINY_DIR}'" in str(info.value)


def test_a_prompt_beyond_the_context_is_refused(llm, monkeypatch):
    monkeypatch.setattr(llm, "context", 40)
    with pytest.raises(LLMError, match=r"reads at most 40 tokens, but the prompt is \d+"):
        llm.chat(MESSAGES)


def test_complete_puts_the_schema_in_the_system_prompt_and_refuses_endpoint_modes(
        llm, monkeypatch):
    seen = []
    chat = llm.chat
    monkeypatch.setattr(llm, "chat", lambda messages, **kw: seen.append(messages)
                        or chat(messages, **kw))
    schema = {"type": "object", "properties": {"jacket": {"type": "string"}}}
    answer = complete(llm, MESSAGES, schema=schema, schema_name="x", mode="plain")
    assert answer and seen[0][1:] == MESSAGES[1:] and MESSAGES[0]["content"] == "Answer in JSON."
    assert seen[0][0]["content"].startswith("Answer in JSON.\n\nAnswer with the JSON value only")
    assert seen[0][0]["content"].endswith(json.dumps(schema, separators=(",", ":")))
    with pytest.raises(InputError, match="answers in plain text: use auto or plain"):
        complete(llm, MESSAGES, schema=schema, schema_name="x", mode="json_schema")


def test_an_empty_answer_is_an_llm_error(llm, monkeypatch):
    monkeypatch.setattr(llm, "chat", lambda messages, **kw: "  ")
    with pytest.raises(LLMError, match="returned an empty answer"):
        complete(llm, MESSAGES, schema={}, schema_name="x")


# --- folder checks ----------------------------------------------------------------------------


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(("damage", "error", "message"), [
    (lambda d: [(d / n).unlink() for n in ("tokenizer.json", "vocab.json", "merges.txt")],
     WeightsCorruptError, "tokenizer.json .or vocab.json and merges.txt. missing"),
    (lambda d: (d / "tokenizer_config.json").unlink(), WeightsCorruptError,
     "has no tokenizer_config.json"),
    (lambda d: (d / "config.json").unlink(), WeightsCorruptError, "has no config.json"),
    (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"), WeightsCorruptError,
     "only pytorch_model.bin: pickle weights are not loaded"),
    (lambda d: _truncate(d / "model.safetensors"), WeightsCorruptError, "truncated or corrupt"),
    (lambda d: _edit_json(d / "tokenizer_config.json", chat_template=None), WrongModelFamilyError,
     "no chat template, so it is a base model, not an instruction-tuned"),
    (lambda d: _edit_json(d / "config.json", auto_map={"AutoModelForCausalLM": "m.Model"}),
     WrongModelFamilyError, r"config\.json auto_map: trust_remote_code"),
    (lambda d: (d / "modeling_qwen.py").write_text("import os\n"), WrongModelFamilyError,
     r"modeling_qwen\.py: trust_remote_code"),
    (lambda d: _edit_json(d / "config.json", model_type="clip"), WrongModelFamilyError,
     "not a text-generation .causal. language model"),
    (lambda d: _edit_json(d / "config.json", model_type="qwen9"), WrongModelFamilyError,
     r"'qwen9' model, which transformers [\d.]+\S* does not know. Upgrade transformers"),
])
def test_unusable_folders_are_refused_with_the_fix(tiny_dir, damage, error, message):
    damage(tiny_dir)
    with pytest.raises(error, match=message) as info:
        loading.load_model("local_llm", TINY_DIR)
    assert str(tiny_dir) in str(info.value)


def test_a_chat_template_file_is_enough(tiny_dir):
    """transformers 5 saves the template as chat_template.jinja beside tokenizer_config.json."""
    write_tokenizer(tiny_dir, chat_template=None)
    (tiny_dir / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    assert FAMILY.load(tiny_dir).chat(MESSAGES, max_new_tokens=2)


def test_a_captioner_folder_is_sent_to_models_captioners(models_root):
    folder = make_florence(models_root / "LLM")
    with pytest.raises(WrongModelFamilyError, match="move it to models/captioners"):
        loading.load_model("local_llm", folder.name)


def test_an_llm_folder_among_the_captioners_is_sent_to_models_llm(models_root, tiny_template):
    folder = Path(shutil.copytree(tiny_template, models_root / "captioners" / TINY_DIR))
    with pytest.raises(WrongModelFamilyError, match="move it to models/LLM"):
        captioner.load(folder)


def test_sniff(tiny_template):
    from intenttuner.weights.safe_load import tensor_names

    names = tensor_names(tiny_template / "model.safetensors")
    assert local_llm.sniff(names)
    assert not local_llm.sniff([n for n in names if not n.startswith("model.layers.")])
    assert "lm_head.weight" not in names  # tied to the embedding, left out as on the Hub


# --- behind the intent parser and the caption refiner -----------------------------------------


def test_intent_parser_repairs_once_then_reports_the_local_model(llm, monkeypatch):
    calls = []
    chat = llm.chat
    monkeypatch.setattr(llm, "chat", lambda messages, **kw: calls.append(messages)
                        or chat(messages, **kw))
    with pytest.raises(LLMError) as info:
        llm_parse.parse_with_llm(DESCRIPTION, [], llm)
    message = str(info.value)
    assert len(calls) == 2  # the answer, then exactly one repair round trip
    assert calls[1][-2]["role"] == "assistant" and calls[1][-1]["content"].startswith(
        "Your answer is not a valid intent: the answer is not valid JSON")
    assert message.startswith(f"The LLM '{TINY_DIR}' at models/LLM/{TINY_DIR} (in-process) "
                              "answered with an invalid intent twice")
    assert "disconnect the LLM to use the offline parser" in message


def test_intent_parser_falls_back_to_offline_with_a_visible_note(llm):
    intent = parse_intent(DESCRIPTION, [], "", llm, on_llm_failure="offline")
    assert intent.parser == "offline"
    assert {c.name for c in intent.concepts} >= {"face", "necklace"}
    text = summary(intent)
    assert (f"Note: The LLM '{TINY_DIR}' at models/LLM/{TINY_DIR} (in-process) failed, so the "
            "offline parser was used instead.") in text


def test_intent_parse_node_with_load_local_llm_shows_the_fallback(pack, tiny_dir):
    nodes = pack.NODE_CLASS_MAPPINGS
    (local,) = nodes["IntentTunerLoadLocalLLM"]().load(TINY_DIR, "auto", TOKENS)
    assert local.max_new_tokens == TOKENS
    out = nodes["IntentTunerIntentParse"]().parse(DESCRIPTION, "error", llm=local,
                                                   if_llm_fails="offline")
    text = out["ui"]["text"][0]
    assert "Parser: offline" in text and f"The LLM '{TINY_DIR}'" in text
    assert "failed, so the offline parser was used instead" in text
    llm_error = sys.modules[f"{pack.__name__}.intenttuner.errors"].LLMError
    with pytest.raises(llm_error, match="answered with an invalid intent twice"):
        nodes["IntentTunerIntentParse"]().parse(DESCRIPTION, "error", llm=local)


def test_caption_refiner_falls_back_to_the_offline_rules_with_warnings(llm):
    refined = refine_with_llm(JOBS, RULES, llm, intent_summary=summarise_intent(INTENT))
    assert [r.refiner for r in refined] == ["offline"] * len(JOBS)
    assert [r.caption for r in refined] == [refine_offline(j, RULES).caption for j in JOBS]
    for r in refined:
        assert r.warnings[-1].startswith(f"the LLM could not caption this item (The LLM "
                                         f"'{TINY_DIR}' at models/LLM/{TINY_DIR} (in-process)")
        assert "unusable JSON twice" in r.warnings[-1]
        assert r.warnings[-1].endswith("used the offline rules")
