"""Perturbed prompts for the reward model's auxiliary task: one word swapped, whole words only,
case kept, never the prompt itself, distinct, seeded."""

from __future__ import annotations

import random
import re

import pytest

from intenttuner.errors import InputError
from intenttuner.reward.perturb import perturbations, swaps


def _changed_words(a: str, b: str) -> list[tuple[str, str]]:
    """The (old, new) word pairs where ``a`` and ``b`` differ, word by word."""
    wa, wb = re.findall(r"\w+|\W+", a), re.findall(r"\w+|\W+", b)
    assert len(wa) == len(wb), (a, b)
    return [(x, y) for x, y in zip(wa, wb, strict=True) if x != y]


@pytest.mark.parametrize(("prompt", "old", "kinds"), [
    ("a red dog on a beach", "red", {"blue", "green"}),  # colour
    ("two cats sleeping", "two", {"three", "one"}),  # count word
    ("3 apples on a plate", "3", {"2", "4"}),  # digit
    ("a smiling old man", "smiling", {"frowning"}),  # attribute
    ("a dog in a forest", "forest", {"beach", "city"}),  # background
])
def test_each_kind_of_word_is_swapped_for_one_of_its_group(prompt, old, kinds):
    found = swaps(prompt)
    swapped = {new for p in found for o, new in _changed_words(prompt, p) if o == old}
    assert kinds <= swapped
    for p in found:
        assert len(_changed_words(prompt, p)) == 1  # exactly one word changed
        assert p != prompt


def test_case_is_kept():
    found = swaps("RED car, Blue sky")
    assert "BLUE car, Blue sky" in found
    assert "RED car, Green sky" in found
    assert not any("blue car" in p or "green sky" in p for p in found)


@pytest.mark.parametrize("prompt", [
    "a reddish bird",  # a colour inside a word
    "sd v1.5 portrait, 8k, 1024px",  # digits inside version numbers and sizes
    "someone, bluebells, twofold",
])
def test_only_whole_words_are_swapped(prompt):
    assert swaps(prompt) == []


def test_nothing_to_swap_gives_nothing():
    assert perturbations("an abstract composition", 4, random.Random(0)) == []
    assert perturbations("", 4, random.Random(0)) == []


def test_perturbations_are_distinct_seeded_and_at_most_count():
    prompt = "two red apples on a wooden table"
    a = perturbations(prompt, 5, random.Random(3))
    assert a == perturbations(prompt, 5, random.Random(3))
    assert len(a) == 5 == len(set(a)) and prompt not in a
    assert set(a) <= set(swaps(prompt))
    everything = perturbations(prompt, 1000, random.Random(0))
    assert sorted(everything) == sorted(swaps(prompt))
    assert perturbations(prompt, 0, random.Random(0)) == []


def test_a_swap_that_reproduces_the_prompt_is_never_returned():
    # "short" belongs to two groups (tall/short, long/short): no candidate may repeat
    found = swaps("a short story")
    assert len(found) == len(set(found)) and "a short story" not in found


@pytest.mark.parametrize("count", [-1, 1.5, True])
def test_bad_count_is_refused(count):
    with pytest.raises(InputError, match="perturbations count"):
        perturbations("a red dog", count, random.Random(0))
