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
# "wcstyle: learn this watercolor style." - a style with nothing else: any subject stays.
WATERCOLOR = CaptionRules.from_intent(_intent([keep("watercolor style", granularity="imagery")],
                                              trigger=("wcstyle",), domain="style"))
# "mydog: keep my dog, switch the collar between red and blue" - a kept subject.
DOG = CaptionRules.from_intent(_intent([keep("dog"), modify("collar", "collar", ["red collar",
                                                                               "blue collar"])],
                                       trigger=("mydog",), domain="object"))
# "ohwx man: keep his face, the hair colour should be changeable, never the necklace." (as the
# offline intent parser reads it: the trigger's own noun phrase is a keep concept too)
OHWX = CaptionRules.from_intent(_intent([
    keep("ohwx man"), keep("face"),
    modify("hair colour", "hair", ["black hair", "blonde hair"], "attribute"),
    delete("necklace")], trigger=("ohwx",)))
# A trigger with its class word, and a set refined before under another trigger.
OHWX_MAN = CaptionRules.from_intent(_intent([keep("face")], trigger=("ohwx", "man")))
RENAMED = CaptionRules.from_intent(_intent([keep("face")]), old_triggers=["sks", "ohwx man"])

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
    # -- keep: the kept words go, what they were about stays ---------------------------------
    ("keep style: the painting's subject stays", WATERCOLOR,
     CaptionJob("a", own="a watercolor painting of a house by a lake"),
     "wcstyle, a house, by a lake"),
    ("keep style: the style named as a noun", WATERCOLOR,
     CaptionJob("a", own="a watercolor of a fox in the snow"), "wcstyle, a fox, in the snow"),
    ("keep style: Florence's 'The image is ...', the subject's clause stays", WATERCOLOR,
     CaptionJob("a", own="The image is a watercolor painting of a small cottage surrounded by "
                         "trees."),
     "wcstyle, a small cottage surrounded by trees"),
    ("keep style: adjectives of the medium go with it", WATERCOLOR,
     CaptionJob("a", own="a beautiful watercolor illustration of two birds on a branch"),
     "wcstyle, two birds, on a branch"),
    ("keep style: 'in watercolor style' at the end", WATERCOLOR,
     CaptionJob("a", own="a house in watercolor style"), "wcstyle, a house"),
    ("keep style: a subject no modify concept names stays", INK,
     CaptionJob("a", own="an ink wash painting of a cat sitting on a chair"),
     "inkwash, a cat, sitting on a chair"),
    ("keep style: 'a' / 'an' agree with what is left", INK,
     CaptionJob("a", own="an ink wash painting of an owl, a black and white ink wash painting "
                         "of mountains and trees"),
     "inkwash, an owl, mountains and trees"),
    ("keep subject: the dog goes, its collar and the second sentence's clause stay", DOG,
     CaptionJob("a", own="The image shows a dog with a blue collar. The dog is lying on a "
                         "wooden floor."),
     "mydog, with a blue collar, lying on a wooden floor"),
    ("keep subject: 'brown and white' are the dog's; the kept noun as an adjective", DOG,
     CaptionJob("a", own="a brown and white dog wearing a blue collar, a red dog collar on a "
                         "table"),
     "mydog, wearing a blue collar, a red collar, on a table"),
    ("keep: the face's owner stays, 'on his face' and the copula go", VINCENT,
     CaptionJob("a", own="The image is a close-up portrait of a man with dark hair and brown "
                         "eyes. He has a slight smile on his face and is looking directly at "
                         "the camera."),
     "vincent, a man, with dark hair, a slight smile, looking directly at the camera"),
    ("keep: a described kept noun is all description", VINCENT,
     CaptionJob("a", own="his face is round and he is smiling, a man's face with a beard"),
     "vincent, smiling, a man"),
    # -- keep: adjectives made from kept parts -----------------------------------------------
    ("keep: 'bearded' is the face's", VINCENT,
     CaptionJob("a", own="a bearded man in a black leather jacket"),
     "vincent, a man, in a black leather jacket"),
    ("keep: '-eyed' compounds are the face's", VINCENT,
     CaptionJob("a", own="a blue-eyed man with black hair"), "vincent, a man, with black hair"),
    ("keep: only the derived adjective goes, the others stay", VINCENT,
     CaptionJob("a", own="a tall bearded man, a clean-shaven man wearing a striped jacket"),
     "vincent, a tall man, wearing a striped jacket"),
    ("modify: a '-haired' compound describes the hair", VINCENT,
     CaptionJob("a", own="a curly-haired man wearing a striped jacket"),
     "vincent, a curly-haired man, wearing a striped jacket"),
    ("keep: no '-ed' guessing outside body parts", VINCENT,
     CaptionJob("a", own="a man with a sugar-coated donut"),
     "vincent, a man, with a sugar-coated donut"),
    # -- two concepts joined by 'and' --------------------------------------------------------
    ("and: a kept beard and modify hair are cut apart", OHWX,
     CaptionJob("a", own="a man with a beard and black hair"), "ohwx, a man, black hair"),
    ("and: a deleted necklace does not take the hair colour with it", OHWX,
     CaptionJob("a", own="a man with a necklace and black hair"), "ohwx, a man, black hair"),
    ("and: the hair between a beard and a jacket", OHWX,
     CaptionJob("a", own="a man with a beard and short blonde hair in a striped jacket"),
     "ohwx, a man, short blonde hair, in a striped jacket"),
    ("and: the same concept on both sides stays one phrase", OHWX,
     CaptionJob("a", own="a man with black hair or blonde hair, with black hair and necklace"),
     "ohwx, a man, with black hair or blonde hair"),
    ("and: a kept adjective with the subject (the reviewer's 'bearded' case)", OHWX,
     CaptionJob("a", own="a bearded man with black hair"), "ohwx, a man, with black hair"),
    # -- the trigger inside the caption ------------------------------------------------------
    ("trigger: the captioner wrote it before the class noun", OHWX,
     CaptionJob("a", own="ohwx man, standing in a park"), "ohwx, man, standing in a park"),
    ("trigger: two trigger words inside a phrase", OHWX_MAN,
     CaptionJob("a", own="a photo of ohwx man in a park"), "ohwx, man, a photo, in a park"),
    ("trigger: the captioner's own class noun after an adjective stays", OHWX_MAN,
     CaptionJob("a", own="an old man with a beard"), "ohwx, man, an old man"),
    ("trigger: the previous intent's trigger words go too", RENAMED,
     CaptionJob("a", own="sks, a photo of ohwx man in a park, SKS wearing a hat"),
     "vincent, a photo, in a park, wearing a hat"),
    ("trigger: an old trigger's class word alone is no trigger", RENAMED,
     CaptionJob("a", own="a man standing"), "vincent, a man, standing"),
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
    ("delete: what the deleted thing had goes with it", VINCENT,
     CaptionJob("a", own="a man wearing a jacket and a necklace with a cross"),
     "vincent, a man, wearing a jacket"),
    ("delete: a 'with' phrase naming another concept stays", VINCENT,
     CaptionJob("a", own="a man wearing a striped jacket and a necklace with a pendant, with "
                         "black hair"),
     "vincent, a man, wearing a striped jacket, with black hair"),
    # -- Florence-2's three caption styles ---------------------------------------------------
    ("Florence <CAPTION>", VINCENT,
     CaptionJob("a", own="A man in a black leather jacket standing in front of a brick wall."),
     "vincent, a man, in a black leather jacket, standing in front of a brick wall"),
    ("Florence <DETAILED_CAPTION>: 'The man in the image has ... and is ...'", VINCENT,
     CaptionJob("a", own="The man in the image has short black hair and is wearing a black "
                         "leather jacket."),
     "vincent, the man, with short black hair, wearing a black leather jacket"),
    ("Florence <DETAILED_CAPTION>: 'She has ... and is wearing' a deleted thing", VINCENT,
     CaptionJob("a", own="The image shows a woman standing on a beach. She has long blonde "
                         "hair and is wearing a necklace."),
     "vincent, a woman, standing on a beach, long blonde hair"),
    ("Florence <MORE_DETAILED_CAPTION>", VINCENT,
     CaptionJob("a", own="The image is a close-up portrait of a young man with short black "
                         "hair and a beard. He is wearing a black leather jacket over a white "
                         "t-shirt and is looking directly at the camera. The background is "
                         "blurred, but it appears to be a city street."),
     "vincent, a young man, with short black hair, wearing a black leather jacket, over a "
     "white t-shirt, looking directly at the camera, the background is blurred, a city "
     "street"),
    ("Florence: 'there is a man that is standing'", VINCENT,
     CaptionJob("a", own="there is a man that is standing in front of a wall"),
     "vincent, a man, standing in front of a wall"),
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


@pytest.mark.parametrize("crop,state", [
    ("a close up of a woman with blonde hair", "blonde hair"),
    ("a close up of a person's blonde hair", "blonde hair"),  # framing and owner go
    ("The image shows a close-up of a woman's head with long blonde hair.", "long blonde hair"),
    ("a close-up photo of wavy black hair", "wavy black hair")])
def test_crop_captions_give_the_whole_image_the_concepts_state(crop, state):
    from intenttuner.captions.set_jobs import _hints

    class Crop:
        image, concept, value = "c.png", "hair colour", None

    hints = _hints([Crop()], {"c.png": crop}, VINCENT)
    assert hints == {"hair colour": [state]}
    job = CaptionJob("o", own="a woman standing on a beach", hints=hints)
    assert refine_offline(job, VINCENT).caption == f"vincent, a woman, standing on a beach, {state}"


def test_cut_concepts_and_trigger_words_are_noted():
    notes = refine_offline(CaptionJob("a", own="a photo of ohwx man, a bearded man"),
                           OHWX_MAN).notes
    assert "removed the trigger words the caption repeated from 'a photo of ohwx man'" in notes
    assert "removed 'face' from 'a bearded man' (keep: the trigger word absorbs it)" in notes


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


def test_florence_clauses_split_into_phrases():
    phrases = [p.text for p in split_phrases(
        "The man in the image has short black hair and is wearing a jacket. The dog is lying "
        "on the floor, but it appears to be asleep. She has a slight smile and")]
    assert phrases == ["the man", "with short black hair", "wearing a jacket", "the dog",
                       "lying on the floor", "asleep", "a slight smile"]


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
