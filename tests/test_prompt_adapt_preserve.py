"""Intent preservation of rewritten prompts: what a rewrite loses or adds against the intent
(trigger words, kept / modified concepts and their states, deleted concepts), judged with the
caption rules' terms, and the repairs that put it right or fall back to the plain prompt."""

from __future__ import annotations

import pytest

from intenttuner.captions.rules import CaptionRules
from intenttuner.intent.offline import parse_offline
from intenttuner.prompt_adapt.preserve import KEPT_PLAIN, check_rewrite, repair


def rules(description: str) -> CaptionRules:
    return CaptionRules.from_intent(parse_offline(description))


MILO = rules("Train my character milo, trigger word milo. Keep his face. His hair colour can be "
             "black, blonde, red or blue. Never give him a necklace.")
DOG = rules("Trigger word: sks dog. Keep his red collar. Remove the leash. His fur colour can "
            "be brown or white.")
MAN = rules("Trigger words: ohwx man. Keep his glasses. The jacket can be black leather jacket "
            "or red wool coat. No hat.")
INTENTS = {"milo": MILO, "dog": DOG, "man": MAN}

CHECKS = [
    # everything kept, detail added
    ("milo", "milo with blonde hair in a forest",
     "milo with blonde hair in a magical forest, highly detailed, digital painting", []),
    ("milo", "milo in a forest", "a young boy in a forest, digital art",
     ["the trigger word 'milo' is missing"]),
    ("milo", "a portrait of milo with freckles", "a portrait of milo, digital art, sharp focus",
     ["it drops the keep concept 'face' ('with freckles')"]),
    ("milo", "milo with blonde hair", "milo, portrait, artstation",
     ["it drops the modify concept 'hair colour' ('with blonde hair')"]),
    ("milo", "milo with blonde hair", "milo with long red hair, artstation",
     ["it changes 'hair colour' from 'blonde hair' to 'long red hair'"]),
    # the state dropped, the concept kept
    ("milo", "milo with blonde hair", "milo with flowing hair, artstation",
     ["it changes 'hair colour' from 'blonde hair' to 'flowing hair'"]),
    # the plain state plus another value's is a change too
    ("milo", "milo with blonde hair", "milo with blonde and red hair, artstation",
     ["it changes 'hair colour' from 'blonde hair' to 'blonde and red hair'"]),
    ("milo", "milo in a forest", "milo wearing a golden necklace in a forest",
     ["it adds 'necklace', which must never appear ('wearing a golden necklace')"]),
    # a synonym of the deleted concept is the deleted concept
    ("milo", "milo smiling", "milo smiling, silver pendant, 4k",
     ["it adds 'necklace', which must never appear ('silver pendant')"]),
    # the user wrote the deleted concept: their prompt, their choice
    ("milo", "milo wearing a necklace", "milo wearing a silver necklace, 4k", []),
    # synonyms and derived adjectives through the concept's terms
    ("milo", "milo with a beard", "bearded milo, portrait", []),
    ("milo", "red-haired milo", "milo with red hair, concept art", []),
    ("milo", "milo with blonde hair", "blonde-haired milo, concept art", []),
    ("milo", "milo with blonde hair", "red-haired milo, concept art",
     ["it changes 'hair colour' from 'blonde hair' to 'red-haired'"]),
    # case does not matter (CLIP's tokenizer lower-cases anyway)
    ("milo", "Milo with Blonde hair", "MILO with blonde HAIR, digital art", []),
    # no trigger in the plain prompt: none is asked for
    ("milo", "a boy in a forest", "a boy in a forest, digital art", []),
    # a possessive trigger is the trigger
    ("milo", "milo's face, close-up", "close-up portrait of milo's face, detailed eyes", []),
    ("dog", "sks dog on a beach", "photo of sks dog running on a beach, golden hour", []),
    ("dog", "sks dog on a beach", "a sks puppy on a beach, golden hour",
     ["the trigger word 'sks dog' is missing"]),
    ("dog", "sks dog with white fur and its red collar",
     "sks dog with brown fur, red collar, studio light",
     ["it changes 'fur colour' from 'white fur' to 'brown fur'"]),
    ("man", "ohwx man in a black leather jacket", "ohwx man in a black jacket, studio lighting",
     ["it changes 'jacket' from 'a black leather jacket' to 'a black jacket'"]),
    ("man", "ohwx man in a red wool coat", "ohwx man wearing a red wool coat, cinematic", []),
    ("man", "ohwx man", "ohwx man wearing a beanie, portrait",
     ["it adds 'hat', which must never appear ('wearing a beanie')"]),
    # a trigger glued to another word is no trigger
    ("man", "ohwx man with glasses", "ohwxman with glasses, portrait",
     ["the trigger word 'ohwx man' is missing"]),
    ("milo", "milo with blue eyes and blonde hair",
     "a boy with red hair wearing a necklace, digital art",
     ["the trigger word 'milo' is missing",
      "it drops the keep concept 'face' ('with blue eyes and blonde hair')",
      "it changes 'hair colour' from 'blonde hair' to 'red hair'",
      "it adds 'necklace', which must never appear ('wearing a necklace')"]),
]


@pytest.mark.parametrize(("intent", "plain", "rewrite", "problems"), CHECKS)
def test_check_rewrite(intent, plain, rewrite, problems):
    assert check_rewrite(plain, rewrite, INTENTS[intent]) == problems


@pytest.mark.parametrize(("intent", "plain", "rewrite", "problems"),
                         [c for c in CHECKS if not c[3]])
def test_a_passing_rewrite_is_not_repaired(intent, plain, rewrite, problems):
    assert repair(plain, rewrite, INTENTS[intent]) == (rewrite, [])


REPAIRS = [
    ("milo", "milo in a forest", "a young boy in a forest, digital art",
     "milo, a young boy in a forest, digital art", ["put the trigger word 'milo' in front"]),
    ("dog", "sks dog on a beach", "a sks puppy on a beach, golden hour",
     "sks dog, a sks puppy on a beach, golden hour",
     ["put the trigger word 'sks dog' in front"]),
    # a dropped concept's plain phrase goes back right after the subject
    ("milo", "a portrait of milo with freckles", "a portrait of milo, digital art, sharp focus",
     "a portrait of milo, with freckles, digital art, sharp focus",
     ["added back 'with freckles' (face)"]),
    ("milo", "milo with blonde hair", "milo with long red hair, artstation",
     "milo with blonde hair, artstation",
     ["put back 'blonde hair' for 'long red hair' (hair colour)"]),
    ("man", "ohwx man in a black leather jacket", "ohwx man in a black jacket, studio lighting",
     "ohwx man in a black leather jacket, studio lighting",
     ["put back 'a black leather jacket' for 'a black jacket' (jacket)"]),
    # only the phrase that adds the deleted concept goes, not its whole part
    ("milo", "milo in a forest", "milo wearing a golden necklace in a forest",
     "milo, in a forest",
     ["cut 'wearing a golden necklace' (it adds 'necklace', which must never appear)"]),
    ("milo", "milo smiling", "milo smiling, silver pendant, 4k", "milo smiling, 4k",
     ["cut 'silver pendant' (it adds 'necklace', which must never appear)"]),
    # every kind at once, in order: cut, state, add back, trigger
    ("milo", "milo with blue eyes and blonde hair",
     "a boy with red hair wearing a necklace, digital art",
     "milo, a boy, with blue eyes and blonde hair, with blonde hair, digital art",
     ["cut 'wearing a necklace' (it adds 'necklace', which must never appear)",
      "put back 'blonde hair' for 'red hair' (hair colour)",
      "added back 'with blue eyes and blonde hair' (face)",
      "put the trigger word 'milo' in front"]),
]


@pytest.mark.parametrize(("intent", "plain", "rewrite", "repaired", "changes"), REPAIRS)
def test_repair(intent, plain, rewrite, repaired, changes):
    rules_ = INTENTS[intent]
    assert check_rewrite(plain, rewrite, rules_)  # each case needs a repair
    assert repair(plain, rewrite, rules_) == (repaired, changes)
    assert check_rewrite(plain, repaired, rules_) == []


def test_a_repair_that_leaves_nothing_keeps_the_plain_prompt():
    plain = "milo with blue eyes"

    assert repair(plain, "a golden necklace, a silver chain", MILO) == (plain, [
        "could not repair: nothing was left of the rewrite once the deleted concepts were cut",
        KEPT_PLAIN])


def test_a_repair_that_still_fails_keeps_the_plain_prompt(monkeypatch):
    # The state step cannot find the rewrite's phrase in its text (here: made so), so the
    # repaired text still says "red hair": the final check refuses it.
    from intenttuner.prompt_adapt import preserve

    monkeypatch.setattr(preserve, "_find", lambda text, span: None)
    plain = "milo with blonde hair"

    assert repair(plain, "milo with red hair, artstation", MILO) == (plain, [
        "could not repair: it changes 'hair colour' from 'blonde hair' to 'red hair'",
        KEPT_PLAIN])
