"""The offline caption refiner: (caption, intent) -> refined caption, case by case.

Each case is a captioner's output (BLIP-style phrases or Florence-2-style sentences) for one
training-set item, and the caption the intent's rules must turn it into. Every refined caption
must also pass the checks the LLM's answers are held to (`check_caption`).
"""

from __future__ import annotations

import pytest

from intenttuner.captions.checks import check_caption
from intenttuner.captions.job import CaptionJob
from intenttuner.captions.refine_offline import refine_offline
from intenttuner.captions.rules import CaptionRules
from intenttuner.captions.text import collapse_repeats, split_phrases
from intenttuner.captions.tokens import clip_counter, fit_tokens
from intenttuner.intent.schema import Intent


def _intent(concepts, trigger=("vincent",), domain="portrait"):
    return Intent.model_validate({"description": "test", "trigger_words": list(trigger),
                                  "domain": domain, "concepts": concepts})


def keep(name, phrase=None, granularity="instance"):
    return {"name": name, "phrase": phrase or name, "granularity": granularity,
            "operation": "keep"}


def modify(name, phrase, values, granularity="instance"):
    return {"name": name, "phrase": phrase, "granularity": granularity, "operation": "modify",
            "values": [{"text": v} for v in values]}


def delete(name):
    return {"name": name, "phrase": name, "granularity": "instance", "operation": "delete"}


# "Keep his face, switch between the black leather jacket and the striped jacket, his hair
# colour adjustable, never a necklace."
VINCENT = CaptionRules.from_intent(_intent([
    keep("face"), modify("jacket", "jacket", ["black leather jacket", "striped jacket"]),
    modify("hair colour", "hair", ["black hair", "blonde hair"], "attribute"),
    delete("necklace")]))
# A style: keep the brushwork style, any subject.
INK = CaptionRules.from_intent(_intent([
    keep("ink wash painting style", granularity="imagery"),
    modify("subject", "subject", ["mountain landscape", "bamboo grove"])],
    trigger=("inkwash",), domain="style"))
# Only keep concepts / only modify concepts / only a delete concept.
KEEP_ONLY = CaptionRules.from_intent(_intent([keep("face"), keep("red ribbon")],
                                             trigger=("mika", "girl"), domain="character"))
MODIFY_ONLY = CaptionRules.from_intent(_intent([
    modify("background", "background", ["city street background", "desert background"],
           "imagery")], trigger=("ohwx",), domain="object"))
NO_CONCEPTS = CaptionRules.from_intent(_intent([], trigger=("Amélie",)))

CASES = [
    # -- keep: descriptions of kept concepts go --------------------------------------------
    ("keep: a beard is part of the face", VINCENT,
     CaptionJob("a", own="a man with a beard standing on a street"),
     "vincent, a man, standing on a street"),
    ("keep: eyes and face described in a Florence sentence", VINCENT,
     CaptionJob("a", own="The image shows a man with blue eyes and a serious face. He is "
                         "sitting on a bench."),
     "vincent, a man, sitting on a bench"),
    ("keep crop: the crop's caption is all face; framing and subject stay", VINCENT,
     CaptionJob("a", "keep", "face", own="a close up of a man's face with blue eyes",
                source="a man in a black jacket standing on a street"),
     "vincent, close-up of the face, a man"),
    ("keep: several keep concepts, trigger of two words", KEEP_ONLY,
     CaptionJob("a", own="an anime girl with a red ribbon and a round face, holding a cup"),
     "mika, girl, an anime girl, holding a cup"),
    ("keep + modify in one phrase: the kept style words go, the subject stays", INK,
     CaptionJob("a", own="an ink wash painting of a mountain landscape with a river"),
     "inkwash, a mountain landscape, with a river"),
    ("keep imagery named at the end", INK,
     CaptionJob("a", own="a bamboo grove in ink wash painting style"),
     "inkwash, a bamboo grove"),
    # -- modify: described with their states -----------------------------------------------
    ("modify: states the captioner wrote stay", VINCENT,
     CaptionJob("a", own="The image shows a man with short black hair, wearing a black "
                         "leather jacket. He is standing in front of a brick wall."),
     "vincent, a man, with short black hair, wearing a black leather jacket, standing in "
     "front of a brick wall"),
    ("modify: hair missed at full size, taken from the hair crop", VINCENT,
     CaptionJob("a", own="arafed man in a black leather jacket standing on a street",
                hints={"hair colour": ["blonde hair"]}),
     "vincent, man, in a black leather jacket, standing on a street, blonde hair"),
    ("modify: named without a state, replaced by the detected state", VINCENT,
     CaptionJob("a", own="a man with hair wearing a black leather jacket",
                hints={"hair colour": ["long blonde hair"]}),
     "vincent, a man, wearing a black leather jacket, long blonde hair"),
    ("modify crop: the crop's vague caption gets the detected value", VINCENT,
     CaptionJob("a", "modify", "hair colour", value="blonde hair",
                own="a close up of a person's hair", source="a man standing on a street"),
     "vincent, close-up of the hair, a man, blonde hair"),
    ("modify crop: its own state wins over the value of the other crops", VINCENT,
     CaptionJob("a", "modify", "jacket", value="striped jacket",
                own="a close up of a striped jacket with buttons",
                source="a man wearing a striped jacket sitting on a bench"),
     "vincent, close-up of the jacket, a man, with buttons, wearing a striped jacket"),
    ("modify only: background kept as a modify phrase", MODIFY_ONLY,
     CaptionJob("a", own="a red toy car on a table in front of a brick wall"),
     "ohwx, a red toy car, on a table, in front of a brick wall"),
    # -- delete: never mentioned -------------------------------------------------------------
    ("delete: the necklace phrase goes, the rest stays", VINCENT,
     CaptionJob("a", own="a man wearing a gold necklace and a striped jacket"),
     "vincent, a man, a striped jacket"),
    ("delete: synonyms of the concept go too", VINCENT,
     CaptionJob("a", own="a man with a pendant on a silver chain"),
     "vincent, a man"),
    ("delete: inside a Florence sentence with a modify concept", VINCENT,
     CaptionJob("a", own="The image shows a man with black hair and a necklace. He is "
                         "smiling."),
     "vincent, a man, with black hair, smiling"),
    # -- crops merged with their source -----------------------------------------------------
    ("merge: the source's phrases about the crop's concept join", VINCENT,
     CaptionJob("a", "modify", "jacket", value="black leather jacket",
                own="a close up of a jacket", source="a man wearing a black leather jacket "
                                                     "in front of a brick wall"),
     "vincent, close-up of the jacket, a man, wearing a black leather jacket"),
    ("merge: the source's necklace does not come along", VINCENT,
     CaptionJob("a", "modify", "hair colour", value="black hair",
                own="a close up of black hair", source="a man with a necklace"),
     "vincent, close-up of the hair, a man, black hair"),
    ("merge: no source caption, the crop alone", VINCENT,
     CaptionJob("a", "keep", "face", own="a close up of a smiling man", source=None),
     "vincent, close-up of the face, a smiling man"),
    # -- cleaning ----------------------------------------------------------------------------
    ("clean: a captioner repeating itself", VINCENT,
     CaptionJob("a", own="a man a man a man a man standing standing"),
     "vincent, a man, standing"),
    ("clean: the trigger named by the captioner is not repeated", VINCENT,
     CaptionJob("a", own="Vincent in a black leather jacket"),
     "vincent, in a black leather jacket"),
    ("clean: non-ASCII text is kept as it is", NO_CONCEPTS,
     CaptionJob("a", own="une femme devant la tour Eiffel, 写真"),
     "Amélie, une femme devant la tour Eiffel, 写真"),
    ("clean: 'black and white' is not split", NO_CONCEPTS,
     CaptionJob("a", own="a black and white photo of a woman sitting on a bench"),
     "Amélie, a black and white photo of a woman, sitting on a bench"),
    ("empty captioner output: the trigger alone", VINCENT,
     CaptionJob("a", own="   "), "vincent"),
]


@pytest.mark.parametrize("rules,job,expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_refined_caption(rules, job, expected):
    refined = refine_offline(job, rules)
    assert refined.caption == expected
    assert check_caption(refined.caption, job, rules) == []


def test_there_are_at_least_20_cases():
    assert len(CASES) >= 20


def test_changes_are_noted_with_their_reasons():
    refined = refine_offline(CaptionJob("a", own="a man with a beard and a gold necklace, "
                                                 "with blonde hair"), VINCENT)
    assert "removed 'with a beard' (keep: face; the trigger word absorbs it)" in refined.notes
    assert "removed 'a gold necklace' (delete: necklace)" in refined.notes


def test_repeats_are_noted():
    refined = refine_offline(CaptionJob("a", own="a man a man a man"), VINCENT)
    assert "the caption repeated itself; repeats removed" in refined.notes


def test_empty_output_is_a_warning():
    refined = refine_offline(CaptionJob("a", own=""), VINCENT)
    assert any("wrote nothing" in w for w in refined.warnings)


def test_a_modify_concept_nobody_describes_is_a_warning_not_an_invention():
    refined = refine_offline(CaptionJob("a", "modify", "jacket", own="a jacket",
                                        source="a man in a park"), VINCENT)
    assert refined.caption == "vincent, close-up of the jacket, a man"
    assert any(w.startswith("jacket: nothing says its state") for w in refined.warnings)


def test_painted_out_concepts_are_not_mentioned():
    rules = CaptionRules.from_intent(_intent([keep("face"), keep("tattoo")]))
    job = CaptionJob("a", own="a man with a tattoo on his arm", removed=["tattoo"])
    assert refine_offline(job, rules).caption == "vincent, a man"


@pytest.mark.parametrize("text,expected", [
    ("a man a man a man", "a man"), ("red red red car", "red car"),
    ("a dog and a dog and a dog and a dog", "a dog and a dog"),
    ("a cat on a mat", "a cat on a mat")])
def test_collapse_repeats(text, expected):
    assert collapse_repeats(text)[0] == expected


def test_phrases_split_where_new_things_begin():
    phrases = [p.text for p in split_phrases(
        "The image shows a man with short black hair and a beard, wearing a black leather "
        "jacket. He is standing in front of a brick wall.")]
    assert phrases == ["a man", "with short black hair", "a beard",
                       "wearing a black leather jacket", "standing in front of a brick wall"]


# -- the token limit (the real CLIP tokenizer) -----------------------------------------------
LONG = ("The image shows a young man with short black hair, wearing a black leather jacket "
        "over a white t-shirt and dark blue jeans. He is standing in front of a red brick wall "
        "covered in colourful graffiti, with a bicycle leaning against it, a street lamp on "
        "the left, a parked car on the right, pigeons on the pavement, a shop window with "
        "reflections, autumn leaves on the ground and a cloudy grey sky above the rooftops.")


def test_the_real_tokenizer_counts_start_and_end_tokens():
    counter = clip_counter()
    assert counter.count("a photo of an astronaut riding a horse") == 10
    assert counter.count("") == 2


def test_long_captions_are_shortened_by_dropping_the_least_important_phrases():
    counter = clip_counter()
    refined = refine_offline(CaptionJob("a", own=LONG), VINCENT)
    before = refined.caption
    assert counter.count(before) > 77
    tokens = fit_tokens(refined, counter, 77)
    after = refined.caption
    assert tokens == counter.count(after) <= 77
    assert after.startswith("vincent, a young man")  # trigger and subject stay
    assert "with short black hair" in after and "wearing a black leather jacket" in after
    assert "the rooftops" not in after  # the last details went first
    note = refined.notes[-1]
    assert note.startswith(f"shortened from {counter.count(before)} to {tokens} tokens")
    assert "'above the rooftops'" in note or "rooftops" in note
    assert not refined.warnings  # no modify description had to go


def test_a_tight_limit_drops_modify_descriptions_last_and_warns():
    counter = clip_counter()
    refined = refine_offline(CaptionJob("a", own=LONG), VINCENT)
    fit_tokens(refined, counter, 12)
    assert refined.caption.startswith("vincent")
    assert counter.count(refined.caption) <= 12
    assert any("description of" in w for w in refined.warnings)


def test_the_trigger_is_never_cut():
    counter = clip_counter()
    refined = refine_offline(CaptionJob("a", own=LONG), VINCENT)
    fit_tokens(refined, counter, 3)
    assert refined.caption == "vincent"


def test_trigger_longer_than_the_limit_is_an_error():
    from intenttuner.errors import InputError

    rules = CaptionRules.from_intent(_intent([], trigger=("a very long trigger " * 4,)))
    refined = refine_offline(CaptionJob("a", own="a man"), rules)
    with pytest.raises(InputError, match="trigger words"):
        fit_tokens(refined, clip_counter(), 8)
