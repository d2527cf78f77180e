"""How people say keep, modify and delete, read by the offline parser.

Each description is written the way a user would write it, not taken from the cue lists: the
expectations say what a person means by the sentence, so a test fails when the parser misreads
one, whatever its word lists hold.
"""

from __future__ import annotations

import re

import pytest

from intenttuner.intent import cue_words
from intenttuner.intent.offline import parse_offline
from intenttuner.intent.schema import ReferenceBox
from intenttuner.intent.sentences import clauses

K, M, D = "keep", "modify", "delete"


def refs(n: int) -> list[ReferenceBox]:
    return [ReferenceBox(index=i, image=0, box=(0, 0, 10, 10), image_size=(32, 32))
            for i in range(1, n + 1)]


def read(text: str, boxes: int = 0):
    """(name, operation) of each concept; the trigger is given, so no name is guessed."""
    intent = parse_offline("trigger: sks. " + text, refs(boxes))
    return [(c.name, c.operation.value) for c in intent.concepts], intent


def _check(text: str, expected: list[tuple[str, str]]) -> None:
    got, intent = read(text)
    assert got == expected, text
    assert intent.unplaced == [], text


@pytest.mark.parametrize(("text", "expected"), [
    ("What matters most to me is her smile and the freckles.", [("smile", K), ("freckles", K)]),
    ("The embroidered logo is essential.", [("embroidered logo", K)]),
    ("The stripes on the sail are crucial.", [("stripes", K)]),
    ("His round glasses are key.", [("round glasses", K)]),
    ("The little scar above her lip is really important.", [("little scar", K)]),
    ("That teapot is the whole point of this.", [("teapot", K)]),
    ("The robot must look like the one in my photos.", [("robot", K)]),
    ("The badge should always be there.", [("badge", K)]),
    ("He should always have his silver earring.", [("silver earring", K)]),
    ("My cat has to stay recognisable, especially her odd eyes.", [("cat", K), ("odd eyes", K)]),
    ("Stay true to the hand-painted brush texture.", [("hand-painted brush texture", K)]),
    ("The mascot needs to stay on-model.", [("mascot", K)]),
    ("Her freckles should be in every image.", [("freckles", K)]),
    ("Get the lettering on the mug right.", [("lettering", K)]),
    ("Leave the tattoo alone.", [("tattoo", K)]),
    ("The vase never changes.", [("vase", K)]),
    ("Honestly I care most about the shape of the bottle.", [("bottle shape", K)]),
    ("I don't want his beard to change.", [("beard", K)]),
])
def test_keep_phrasings(text, expected):
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("The hairstyle is up to the prompt.", [("hairstyle", M)]),
    ("Her outfit should be set by my prompt.", [("outfit", M)]),
    ("Let the prompt decide the weather.", [("weather", M)]),
    ("The background is free to vary.", [("background", M)]),
    ("The jacket can be whatever I ask for.", [("jacket", M)]),
    ("I don't care about the lighting.", [("lighting", M)]),
    ("I don't really care about the shoes.", [("shoes", M)]),
    ("The sofa doesn't matter.", [("sofa", M)]),
    ("Clothes don't matter.", [("clothes", M)]),
    ("The pose can be anything.", [("pose", M)]),
    ("Any background is fine.", [("background", M)]),
    ("The scarf should follow the prompt.", [("scarf", M)]),
    ("I want to be able to pick the season.", [("season", M)]),
    ("Her dress isn't important.", [("dress", M)]),
    ("The hat is optional.", [("hat", M)]),
    ("Clothing is flexible.", [("clothing", M)]),
    ("The setting should vary from shot to shot.", [("setting", M)]),
    ("Her hair can be whatever colour I want.", [("hair colour", M)]),
    ("Laces in any colour.", [("laces colour", M)]),
    ("The user decides the hairstyle.", [("hairstyle", M)]),
    ("The sweater is whatever the text says.", [("sweater", M)]),
])
def test_modify_phrasings(text, expected):
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("The watermark must not be in the pictures.", [("watermark", D)]),
    ("Leave out the price tag.", [("price tag", D)]),
    ("Leave the boyfriend out of it.", [("boyfriend", D)]),
    ("The photographer's signature shouldn't show up.", [("photographer's signature", D)]),
    ("Please get rid of the sunglasses.", [("sunglasses", D)]),
    ("I don't want to see the microphone.", [("microphone", D)]),
    ("I never want to see the date stamp.", [("date stamp", D)]),
    ("Keep the text out of the pictures.", [("text", D)]),
    ("Keep the tripod out of the shots.", [("tripod", D)]),
    ("The studio backdrop shouldn't be learned.", [("studio backdrop", D)]),
    ("Don't let it learn the studio lights.", [("studio lights", D)]),
    ("Ignore the tripod in the photos.", [("tripod", D)]),
    ("Exclude the power cable.", [("power cable", D)]),
    ("Take the price sticker off.", [("price sticker", D)]),
    ("The reflections in the window aren't wanted.", [("reflections", D)]),
    ("The microphone stand shouldn't end up in the generations.", [("microphone stand", D)]),
    ("The shirt in the photos is not part of the character.", [("shirt", D)]),
    ("There should be no people in the background.", [("people", D)]),
    ("The sign on the wall has to go.", [("sign", D)]),
])
def test_delete_phrasings(text, expected):
    _check(text, expected)


@pytest.mark.parametrize("text", [
    "I took these photos over a few weekends.",
    "He has brown hair and a beard.",
    "The photos are a bit dark.",
    "I hope this works!",
    "The logo is in every shot.",  # says where it is, not what to do with it
    "She's wearing a red dress in most shots.",
])
def test_a_sentence_without_an_instruction_stays_unplaced(text):
    got, intent = read(text)
    assert got == []
    assert len(intent.unplaced) == 1 and intent.unplaced[0].startswith(text.rstrip(".!"))


@pytest.mark.parametrize(("text", "expected"), [
    # a negated state is freedom, a negated change is keep, a negated presence is delete
    ("The background doesn't matter.", [("background", M)]),
    ("The face never changes.", [("face", K)]),
    ("The time of day is not fixed.", [("time of day", M)]),
    ("Her earrings aren't essential.", [("earrings", M)]),
    ("Nothing about the eyes should change.", [("eyes", K)]),
    ("Don't let the glasses disappear.", [("glasses", K)]),
    ("The logo must never be removed.", [("logo", K)]),
    ("The mug doesn't have to look like the photos.", [("mug", M)]),
    ("Don't keep the background, the cat should stay.", [("background", D), ("cat", K)]),
    # a negation reaches as far as its own part of the sentence
    ("Don't change the face and remove the logo.", [("face", K), ("logo", D)]),
    ("No watermark and don't change the hair.", [("watermark", D), ("hair", K)]),
    ("I'm not sure the hair should change.", [("hair", M)]),  # "not sure" negates nothing
    # one "no" covers a list of the usual clutter, or one of alternatives
    ("No text, watermarks, and logos.", [("text", D), ("watermarks", D), ("logos", D)]),
    ("No frames, borders or vignettes.", [("frames", D), ("borders", D), ("vignettes", D)]),
])
def test_negation_and_its_scope(text, expected):
    _check(text, expected)


@pytest.mark.parametrize(("text", "deleted", "left"), [
    # a negation does not run over a list of style features, nor back over what precedes it
    ("No gradients, soft shadows and thick outlines.", "gradients",
     "soft shadows and thick outlines"),
    ("A plain studio look without the softbox.", "softbox", "A plain studio look"),
])
def test_a_negation_covers_only_what_it_negates(text, deleted, left):
    got, intent = read(text)
    assert got == [(deleted, D)]
    assert intent.unplaced == [f"{left} (no keep / change / remove word found)"]


@pytest.mark.parametrize(("text", "expected"), [
    ("His face and beard are what counts, the shirt and the hat can change.",
     [("face", K), ("beard", K), ("shirt", M), ("hat", M)]),
    ("The logo must not show up, and the mug colour can change.",
     [("logo", D), ("mug colour", M)]),
    ("I think the hair could change, but maybe keep the eyes.", [("hair", M), ("eyes", K)]),
    ("The face should stay the same although the hair can vary.", [("face", K), ("hair", M)]),
    ("The hair can change as long as the face stays recognisable.",
     [("hair", M), ("face", K)]),
    ("I'm trying to keep the jacket - the hat can change.", [("jacket", K), ("hat", M)]),
    ("Her face is what matters; the outfit and background are up to the prompt.",
     [("face", K), ("outfit", M), ("background", M)]),
    ("Keep the dog (the collar can change).", [("dog", K), ("collar", M)]),
    ("The bag must look exactly like this, while the strap colour can change.",
     [("bag", K), ("strap colour", M)]),
    ("Mainly I care about the glasses — the jacket is up to the prompt.",
     [("glasses", K), ("jacket", M)]),
    ("Background can be anything, just keep her face.", [("background", M), ("face", K)]),
    ("She should look the same whatever the lighting.", [("lighting", M)]),
    # a part that leans on the one before takes its cue, turned around
    ("The dress matters, the shoes don't.", [("dress", K), ("shoes", M)]),
    ("The hair can change, not the face.", [("hair", M), ("face", K)]),
    ("Keep the jacket but not the hat.", [("jacket", K), ("hat", D)]),
    ("The background shouldn't be learned, only the cat.", [("background", D), ("cat", K)]),
    ("Her tattoos are the important part, the clothes not so much.",
     [("tattoos", K), ("clothes", M)]),
    ("Keep the sneaker as is but the laces can be any colour, and get rid of the shoebox.",
     [("sneaker", K), ("laces colour", M), ("shoebox", D)]),
])
def test_hedged_and_many_part_sentences_are_split_first(text, expected):
    got, intent = read(text)
    assert got == expected, text
    assert [u for u in intent.unplaced if "found nothing" not in u] == [], text


def test_a_stated_fact_between_instructions_is_not_an_instruction():
    got, intent = read("Please remove the watermark and the date, they are in the corners.")
    assert got == [("watermark", D), ("date", D)]
    assert intent.unplaced == ["they are in the corners (no keep / change / remove word found)"]


def test_clauses_keep_one_instruction_each():
    assert clauses("X and Y are what counts, A and B can change") == [
        "X and Y are what counts", "A and B can change"]
    assert clauses("keep the face and remove the logo") == ["keep the face", "remove the logo"]
    assert clauses("keep the red and blue scarf") == ["keep the red and blue scarf"]


@pytest.mark.parametrize(("text", "expected"), [
    ("No name, just use the default trigger.", []),
    ("The model should follow the prompt for the clothes.", [("clothes", M)]),
    ("Remove the caption from the training images.", []),
    ("The brand colours must match the reference exactly.", [("brand colours", K)]),
    ("Honestly the lighting in my photos is bad, ignore it.", [("lighting", D)]),
    ("Keep the LoRA focused on the sneaker.", [("sneaker", K)]),
])
def test_words_about_the_prompt_or_the_model_are_never_concepts(text, expected):
    got, intent = read(text)
    assert got == expected, text
    meta = {"prompt", "model", "lora", "trigger", "default", "name", "caption", "training",
            "pictures", "photos", "images", "reference"}
    assert not any(set(n.split()) & meta for n, _ in got)
    if not expected:
        assert intent.unplaced, text  # said, but nothing to act on: reported, not dropped


@pytest.mark.parametrize(("text", "expected"), [
    ("pls keep the face esp the eyes", [("face", K), ("eyes", K)]),
    ("Basically the jacket is the main thing, I don't really care about the pants.",
     [("jacket", K), ("pants", M)]),
    ("Kinda want the colours to be flexible, maybe.", [("colours", M)]),
    ("I'm trying to keep the necklace, if possible.", [("necklace", K)]),
    ("What I want is her face to stay the same.", [("face", K)]),
    ("I want to be able to put him in any outfit.", [("outfit", M)]),
    ("The outfit is what changes between images.", [("outfit", M)]),
    ("The table it stands on doesn't matter.", [("table", M)]),
    ("The person holding the bottle doesn't matter.", [("person", M)]),
    ("It must look exactly like this - especially the glaze and the handle.",
     [("glaze", K), ("handle", K)]),
    ("Esp the tattoo needs to be exact.", [("tattoo", K)]),
])
def test_filler_never_becomes_or_sticks_to_a_concept(text, expected):
    _check(text, expected)


@pytest.mark.parametrize(("text", "boxes", "expected"), [
    ("Keep the logo on his cap, it [1] never changes.", 1, [("logo", K, [1])]),
    ("Keep the logo (see [2]).", 2, [("logo", K, [2])]),
    ("The character's hat (box [1]) should always be on her head.", 1,
     [("character's hat", K, [1])]),
    ("Keep the bike. It [2] has a basket.", 2, [("bike", K, [2])]),
    ("Keep the red scarf. It [1] should look the same.", 1, [("red scarf", K, [1])]),
    ("There's a sticker on the laptop [1], get rid of it.", 1, [("sticker", D, [1])]),
    ("The watermark in the corner [2]? Remove it.", 2, [("watermark", D, [2])]),
    ("The text on his shirt - remove it [3].", 3, [("text", D, [3])]),
    ("Keep her necklace (it [2] has a small heart) and remove the earrings [3].", 3,
     [("necklace", K, [2]), ("earrings", D, [3])]),
    ("Remove the watermark [1] and the date [2], they are in the corners.", 2,
     [("watermark", D, [1]), ("date", D, [2])]),
])
def test_references_after_pronouns_and_in_parentheses_bind(text, boxes, expected):
    intent = parse_offline("trigger: sks. " + text, refs(boxes))
    assert [(c.name, c.operation.value, c.references) for c in intent.concepts] == expected
    named = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert not any(f"[{n}] is not bound" in note for n in named for note in intent.notes)


def test_no_cue_is_listed_under_two_operations():
    owner: dict[str, str] = {}
    clashes = set()
    for operation, cues in cue_words.OPERATION_CUES.items():
        for cue in cues:
            if owner.setdefault(cue, operation.value) != operation.value:
                clashes.add(cue)
    assert clashes == set()


def _values(text: str, boxes: int = 0) -> list[tuple[str, str, list[str]]]:
    """(name, operation, value texts) of each concept."""
    intent = parse_offline("trigger: sks. " + text, refs(boxes))
    return [(c.name, c.operation.value, [v.text for v in c.values]) for c in intent.concepts]


@pytest.mark.parametrize(("text", "expected"), [
    # the noun phrase before a negated have / wear / carry owns what goes: it stays
    ("The dog never has a collar.", [("collar", D)]),
    ("The man never has a beard.", [("beard", D)]),
    ("The bottle must not have a label.", [("label", D)]),
    ("Rex should never wear a collar.", [("collar", D)]),
    ("The dog has no collar.", [("collar", D)]),
    ("My cat should never carry a toy.", [("toy", D)]),
    ("The dog no longer has a collar.", [("collar", D)]),
    ("The dog never has a collar and the cat never has a bell.", [("collar", D), ("bell", D)]),
    ("Keep the face and the dog never has a collar.", [("face", K), ("collar", D)]),
])
def test_the_owner_of_what_is_deleted_is_not_deleted(text, expected):
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    # a bare "no" / "never" opens an instruction of its own, comma or not
    ("Keep the face no hat.", [("face", K), ("hat", D)]),
    ("Keep her face no glasses no hat.", [("face", K), ("glasses", D), ("hat", D)]),
    ("Same face every time no glasses.", [("face", K), ("glasses", D)]),
    ("Keep the jacket never the cap.", [("jacket", K), ("cap", D)]),
    ("Change the hair never the face.", [("hair", M), ("face", K)]),  # never [change] the face
    ("Remove the hat and never remove the scarf.", [("hat", D), ("scarf", K)]),
    # a negated absence is keep
    ("Never without her scarf.", [("scarf", K)]),
    ("She should never be without her scarf.", [("scarf", K)]),
    ("He should never go without his glasses.", [("glasses", K)]),
])
def test_bare_negations_and_double_negation(text, expected):
    _check(text, expected)


@pytest.mark.parametrize(("text", "boxes", "expected"), [
    # a part with only a weak cue, or one saying what is trained, is a clause of its own
    ("Her eyes should always be green, pose doesnt matter.", 0,
     [("green eyes", K, []), ("pose", M, [])]),
    ("Superhero landing pose [1], the person doing it can change.", 1,
     [("superhero landing pose", K, [1]), ("person", M, [])]),
    ("The subject is the red sneaker [1], laces can be any colour.", 1,
     [("red sneaker", K, [1]), ("laces colour", M, [])]),
    ("The hat, the scarf and the gloves can change.", 0,  # a list is no such part
     [("hat", M, []), ("scarf", M, []), ("gloves", M, [])]),
    # a part ending in a modal takes the cue before it without its negation
    ("The face shouldn't change, the hair should.", 0, [("face", K, []), ("hair", M, [])]),
    ("The dress doesn't matter, the shoes do.", 0, [("dress", M, []), ("shoes", K, [])]),
    ("I don't want his face to change, the hair can.", 0, [("face", K, []), ("hair", M, [])]),
    ("Keep the face, the hair too.", 0, [("face", K, []), ("hair", K, [])]),
    ("Keep the face, if you can.", 0, [("face", K, [])]),  # says how, leans on nothing
])
def test_weak_parts_and_ellipses_are_clauses_of_their_own(text, boxes, expected):
    intent = parse_offline("trigger: sks. " + text, refs(boxes))
    assert [(c.name, c.operation.value, c.references) for c in intent.concepts] == expected
    assert [u for u in intent.unplaced if "found nothing" not in u] == [], text


@pytest.mark.parametrize(("text", "expected"), [
    # a choice of values is a change of the noun before it, never more things to keep
    ("Keep bottle shape and cap, background either marble or wood.",
     [("bottle shape", K, []), ("cap", K, []), ("background", M, ["marble", "wood"])]),
    ("Keep the face, background can be a beach or a forest.",
     [("face", K, []), ("background", M, ["beach", "forest"])]),
    ("Keep the face and the background either marble or wood.",
     [("face", K, []), ("background", M, ["marble", "wood"])]),
    ("Keep the face, background like a beach or a forest, keep the hat.",
     [("face", K, []), ("background", M, ["beach", "forest"]), ("hat", K, [])]),
    # a value list stops at a comma that starts a new clause
    ("Oil painting style like van gogh, brushstrokes are what matters.",
     [("oil painting style", K, []), ("brushstrokes", K, [])]),
])
def test_value_lists_are_choices_and_end_with_their_clause(text, expected):
    assert _values(text) == expected


def test_a_choice_to_keep_that_names_nothing_keeps_nothing():
    got, intent = read("Keep either the hat or the scarf.")
    assert got == []
    assert intent.unplaced == ["Keep either the hat or the scarf (found nothing to keep)"]


@pytest.mark.parametrize(("text", "expected"), [
    ("The hat is a must.", [("hat", K)]),
    ("The scarf is a must-have.", [("scarf", K)]),
    ("The tattoo is a dealbreaker.", [("tattoo", K)]),
    ("Her smile is everything.", [("smile", K)]),
    ("The logo isn't a must.", [("logo", M)]),
    ("Don't ever remove the scarf.", [("scarf", K)]),  # "ever" is filler
    # training and the text prompt are what the description is about, not concepts
    ("Train a lora on Tokyo streets, keep the neon signs.", [("neon signs", K)]),
    ("Train on my cat, ignore the sofa.", [("sofa", D)]),
    ("The text should control the outfit.", [("outfit", M)]),
    ("The prompt should control the weather.", [("weather", M)]),
])
def test_must_haves_filler_and_meta_words(text, expected):
    _check(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("Change her outfit but not her hairstyle.", [("outfit", M), ("hairstyle", K)]),
    # an attribute every such thing has is freed, not deleted
    ("Keep the hair style, not the colour.", [("hair style", K), ("hair colour", M)]),
    ("Keep the hairstyle, not the colour.", [("hairstyle", K), ("hair colour", M)]),
    ("Keep the scarf, the colour can change.", [("scarf", K), ("scarf colour", M)]),
    ("Keep the character, the style can change.", [("character", K), ("style", M)]),
])
def test_attributes_belong_to_their_object(text, expected):
    _check(text, expected)


@pytest.mark.parametrize(("text", "boxes", "expected"), [
    ("Keep the hat [ 1 ].", 1, [("hat", K, [1])]),
    ("Keep the hat [ 1 ] and the scarf [2 ].", 2, [("hat", K, [1]), ("scarf", K, [2])]),
])
def test_boxes_may_be_written_with_spaces(text, boxes, expected):
    intent = parse_offline("trigger: sks. " + text, refs(boxes))
    assert [(c.name, c.operation.value, c.references) for c in intent.concepts] == expected
    assert not any("is not bound" in note for note in intent.notes)


def test_a_long_description_of_repeated_instructions_reads_like_a_short_one():
    # near the length limit: every repeat says the same, so the same three concepts come out
    text = "Keep her face, the hair can change, no glasses. " * 80
    got, intent = read(text[:3900])
    assert got == [("face", K), ("hair", M), ("glasses", D)]
    assert intent.unplaced == []
