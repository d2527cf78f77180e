"""Adapting a list of prompts with a Promptist-style adapter (a fake with its interface, and the
real tiny one): every input item answered in order, the intent kept (repaired or the plain
prompt kept), and every bad input refused up front. The LLM backend: test_prompt_adapt_llm.py."""

from __future__ import annotations

import pytest

from intenttuner.errors import InputError
from intenttuner.intent.offline import parse_offline
from intenttuner.prompt_adapt.adapt import AdaptedPrompt, adapt_prompts

MILO = parse_offline("Train my character milo, trigger word milo. Keep his face. His hair "
                     "colour can be black, blonde, red or blue. Never give him a necklace.")
STYLE = ", highly detailed, digital painting, artstation"


class FakeAdapter:
    """PromptAdapter's interface: ``rephrase`` answers from ``rewrites`` (else the prompt plus
    STYLE), a token is a word of the model's input, and every call is recorded."""

    name = "promptist-fake"

    def __init__(self, rewrites: dict[str, str] | None = None, max_prompt_tokens: int = 12):
        self.rewrites = rewrites or {}
        self.max_prompt_tokens = max_prompt_tokens
        self.calls: list[tuple[list[str], int]] = []

    def count_tokens(self, text: str) -> int:
        return len((text.strip() + " Rephrase:").split())

    def rephrase(self, prompts, *, batch_size: int = 8, num_beams=None) -> list[str]:
        self.calls.append((list(prompts), batch_size))
        return [self.rewrites.get(p, p + STYLE) for p in prompts]


def row(item: AdaptedPrompt) -> tuple:
    return item.index, item.plain, item.adapted, item.status, item.notes


# -- Promptist-style adapter ------------------------------------------------------------------

def test_one_string_is_one_prompt():
    adapter = FakeAdapter()

    result = adapt_prompts("a cat on a windowsill", adapter)

    assert result.prompts == ["a cat on a windowsill" + STYLE]
    assert [row(i) for i in result.items] == [
        (1, "a cat on a windowsill", "a cat on a windowsill" + STYLE, "adapted", [])]
    assert (result.backend, result.changed) == ("promptist:promptist-fake", 1)
    assert adapter.calls == [(["a cat on a windowsill"], 8)]


def test_empty_items_pass_through_aligned_and_are_never_generated():
    adapter = FakeAdapter()

    result = adapt_prompts(["a cat", "", "  ", "a dog"], adapter, batch_size=3)

    assert result.prompts == ["a cat" + STYLE, "", "  ", "a dog" + STYLE]
    assert [i.status for i in result.items] == ["adapted", "empty", "empty", "adapted"]
    assert result.items[1].notes == ["passed through unchanged"]
    assert adapter.calls == [(["a cat", "a dog"], 3)]
    assert result.changed == 2


@pytest.mark.parametrize("prompts", [[], [""], ["", " \n\t"], ""])
def test_no_prompt_at_all_is_refused(prompts):
    with pytest.raises(InputError, match=r"^prompts are empty: connect a prompt list \(e\.g\. "
                                         r"the evaluation prompts\) or type at least one"):
        adapt_prompts(prompts, FakeAdapter())


def test_an_item_that_is_not_text_is_refused_by_number():
    with pytest.raises(InputError) as info:
        adapt_prompts(["a cat", 3, "a dog"], FakeAdapter())
    assert str(info.value) == ("prompt item 2 is a int (3), not text: give every prompt as a "
                               "string.")


@pytest.mark.parametrize("prompts", [None, 7, {"a cat"}])
def test_prompts_that_are_no_list_are_refused(prompts):
    with pytest.raises(InputError, match="^prompts must be text or a list of texts, not "):
        adapt_prompts(prompts, FakeAdapter())


def test_an_overlong_prompt_is_refused_before_any_generation():
    adapter = FakeAdapter(max_prompt_tokens=5)  # "a b c d" + " Rephrase:" is 5 tokens

    with pytest.raises(InputError) as info:
        adapt_prompts(["a b c d", "a b c d e"], adapter)
    assert str(info.value) == (
        "prompt item 2 is 6 tokens long, over the 5 the adapter 'promptist-fake' can read (its "
        "context leaves room for its rewrite): shorten it, or use an LLM backend.")
    assert adapter.calls == []


def test_promptist_keeps_a_foreign_prompt():
    adapter = FakeAdapter()

    result = adapt_prompts(["un chien avec des lunettes sur la plage", "猫が窓辺に座っている",
                            "a dog on a beach"], adapter)

    assert [(i.status, i.adapted, i.notes) for i in result.items] == [
        ("kept", "un chien avec des lunettes sur la plage",
         ["written in French: Promptist was trained on English prompts; use an LLM backend"]),
        ("kept", "猫が窓辺に座っている",
         ["written in Japanese: Promptist was trained on English prompts; use an LLM backend"]),
        ("adapted", "a dog on a beach" + STYLE, [])]
    assert adapter.calls == [(["a dog on a beach"], 8)]


@pytest.mark.parametrize("rewrite", ["", "   ", "A  Cat on a\nwindowsill", "a cat on a windowsill"])
def test_a_rewrite_with_nothing_new_keeps_the_plain_prompt(rewrite):
    adapter = FakeAdapter({"a cat on a windowsill": rewrite})

    result = adapt_prompts(["a cat on a windowsill"], adapter)

    assert [row(i) for i in result.items] == [
        (1, "a cat on a windowsill", "a cat on a windowsill", "unchanged",
         ["the adapter returned nothing new"])]
    assert result.changed == 0


def test_rewrites_are_put_on_one_line():
    adapter = FakeAdapter({"a cat": "a cat,\n  soft light\t, 4k "})

    assert adapt_prompts("a cat", adapter).prompts == ["a cat, soft light , 4k"]


def test_with_an_intent_rewrites_are_checked_and_repaired():
    adapter = FakeAdapter({
        "milo with blonde hair": "milo with long red hair, artstation",
        "milo in a forest": "a young boy in a forest, wearing a silver pendant, 4k",
        "milo with blue eyes": "a golden necklace",
        "milo smiling": "milo smiling, soft light",
        "a boy in a forest": "a boy in a dark forest, 4k"})

    result = adapt_prompts(list(adapter.rewrites), adapter, MILO)

    assert [row(i) for i in result.items] == [
        (1, "milo with blonde hair", "milo with blonde hair, artstation", "repaired",
         ["put back 'blonde hair' for 'long red hair' (hair colour)"]),
        (2, "milo in a forest", "milo, a young boy in a forest, 4k", "repaired",
         ["cut 'wearing a silver pendant' (it adds 'necklace', which must never appear)",
          "put the trigger word 'milo' in front"]),
        (3, "milo with blue eyes", "milo with blue eyes", "kept",
         ["the rewrite 'a golden necklace' fails the intent: the trigger word 'milo' is "
          "missing; it drops the keep concept 'face' ('with blue eyes'); it adds 'necklace', "
          "which must never appear ('a golden necklace')",
          "could not repair: nothing was left of the rewrite once the deleted concepts were cut",
          "kept the plain prompt"]),
        (4, "milo smiling", "milo smiling, soft light", "adapted", []),
        # no trigger in the plain prompt: the user chose, none is added
        (5, "a boy in a forest", "a boy in a dark forest, 4k", "adapted", [])]
    assert result.changed == 4


def test_a_repair_back_to_the_plain_prompt_is_nothing_new():
    adapter = FakeAdapter({"milo, blonde hair": "milo, red hair"})

    result = adapt_prompts("milo, blonde hair", adapter, MILO)

    assert [row(i) for i in result.items] == [
        (1, "milo, blonde hair", "milo, blonde hair", "unchanged",
         ["put back 'blonde hair' for 'red hair' (hair colour)",
          "the adapter returned nothing new"])]


def test_the_summary_says_what_happened_to_each_prompt():
    adapter = FakeAdapter({"milo with blonde hair": "milo with long red hair, artstation",
                           "a cat": "a cat"})
    long = "a dog " + "very " * 30 + "fluffy"
    adapter.rewrites[long] = long + ", 4k"
    adapter.max_prompt_tokens = 50

    result = adapt_prompts(["milo with blonde hair", "", "a cat", "ein Hund mit einer Brille",
                            long], adapter, MILO)

    assert result.summary().splitlines() == [
        "Adapted 2 of 5 prompt(s) with promptist:promptist-fake (1 adapted, 1 repaired, "
        "1 unchanged, 1 kept, 1 empty).",
        "- prompt 1: repaired: put back 'blonde hair' for 'long red hair' (hair colour)",
        "- prompt 2: empty: passed through unchanged",
        "- prompt 3: unchanged: the adapter returned nothing new",
        "- prompt 4: kept: written in German: Promptist was trained on English prompts; use an "
        "LLM backend",
        "1. milo with blonde hair",
        "   -> milo with blonde hair, artstation",
        "2. (empty)",
        "3. a cat",
        "4. ein Hund mit einer Brille",
        f"5. {long[:117]}...",
        f"   -> {long[:117]}..."]


def test_bad_backends_and_batch_sizes_are_refused():
    with pytest.raises(InputError, match=r"^The prompt adapter backend is a str: connect a Load "
                                         r"Prompt Adapter \(Promptist\) or an LLM"):
        adapt_prompts("a cat", "promptist")
    with pytest.raises(InputError, match="^batch_size 0 must be 1 or more"):
        adapt_prompts("a cat", FakeAdapter(), batch_size=0)


def test_the_tiny_promptist_adapter_through_the_real_loading_path(models_root, monkeypatch):
    from intenttuner.captions.rules import CaptionRules
    from intenttuner.families.prompt_adapter import GENERATION
    from intenttuner.loading import load_model
    from intenttuner.prompt_adapt.preserve import check_rewrite
    from intenttuner.tiny import TINY_BUILDERS

    monkeypatch.setitem(GENERATION, "max_new_tokens", 6)  # the paper's 75 are slow on CPU
    folder = TINY_BUILDERS["prompt_adapter"](models_root / "prompt_adapters")
    adapter = load_model("prompt_adapter", folder.name)
    plains = ["milo with blonde hair", "", "a cat on a windowsill", "milo in a forest"]
    # one at a time: what the batched run inside adapt_prompts must reproduce
    raw = {p: " ".join(adapter.rephrase([p])[0].split()) for p in plains if p}

    plain_run = adapt_prompts(plains, adapter, batch_size=2)
    assert plain_run.backend == f"promptist:{folder.name}"
    assert plain_run.prompts == [raw[p] if p and raw[p] and raw[p] != p else p for p in plains]
    assert [i.status for i in plain_run.items] == [
        "empty" if not p else "adapted" if raw[p] and raw[p] != p else "unchanged"
        for p in plains]

    kept = adapt_prompts(plains, adapter, MILO, batch_size=3)
    rules = CaptionRules.from_intent(MILO)
    assert len(kept.prompts) == len(plains)
    assert all(check_rewrite(p, a, rules) == [] for p, a in zip(plains, kept.prompts,
                                                                strict=True))
    for item in kept.items:  # random weights never say the trigger: it is put back
        if item.plain.startswith("milo") and "milo" not in raw[item.plain].split():
            assert item.status == "repaired" and item.adapted.startswith("milo, ")
            assert "put the trigger word 'milo' in front" in item.notes

    too_long = " ".join(["cat"] * adapter.max_prompt_tokens)
    with pytest.raises(InputError, match=rf"^prompt item 2 is {adapter.count_tokens(too_long)} "
                                         rf"tokens long, over the {adapter.max_prompt_tokens} "):
        adapt_prompts(["a cat", too_long], adapter)
