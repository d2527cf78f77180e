"""How people actually write: names as trigger words, domains in their own words, other
languages, and [n] without a box. Every case is a sentence a user could type; the expected
trigger, domain and concepts are what that user meant, not entries of the parser's tables."""

from __future__ import annotations

import pytest

from intenttuner.errors import InputError
from intenttuner.intent import notes
from intenttuner.intent.context import extra_parts
from intenttuner.intent.names import names_in
from intenttuner.intent.offline import parse_offline
from intenttuner.intent.parse import parse_intent
from intenttuner.intent.schema import Domain, Operation, ReferenceBox


def refs(n: int) -> list[ReferenceBox]:
    return [ReferenceBox(index=i, image=0, box=(0, 0, 10, 10), image_size=(32, 32))
            for i in range(1, n + 1)]


def concepts(intent) -> list[tuple[str, str]]:
    return [(c.name, c.operation.value) for c in intent.concepts]


# -- names become trigger words ---------------------------------------------------------------
@pytest.mark.parametrize(("text", "trigger"), [
    # "called" / "named" / "known as" / "goes by"
    ("A man called Vincent. Keep his face.", ["Vincent"]),
    ("I'm training a girl named Aiko. Keep her face.", ["Aiko"]),
    ("My OC named Kiri. Keep her horns.", ["Kiri"]),
    ("A street artist known as Zed. Keep his mask.", ["Zed"]),
    ("She goes by Kiki. Keep her freckles.", ["Kiki"]),
    ("a robot nicknamed bolt. keep the antenna.", ["bolt"]),
    # possessive + noun + name, capitalised or not, with commas or brackets
    ("My beagle Pepper. Keep her floppy ears.", ["Pepper"]),
    ("Photos of our cat, Miso, on the sofa. Keep her markings.", ["Miso"]),
    ("Pictures of my daughter Emma at the beach. Keep her freckles.", ["Emma"]),
    ("my dog rex should keep his spots", ["rex"]),
    ("I want a LoRA of my golden retriever Max. No leash.", ["Max"]),
    ("My little brother (Theo) should keep his glasses.", ["Theo"]),
    ("my cats Miso and Tofu. Keep their collars.", ["Miso", "Tofu"]),
    # article + noun: the capital letter is the signal
    ("The character Pia has blue hair. Keep her hair colour.", ["Pia"]),
    ("Train the mascot Blip. Keep the antenna.", ["Blip"]),
    # "X:" or "X -" at the very start
    ("Rex: keep his collar and remove the leash.", ["Rex"]),
    ("Vincent - keep his face, change the jacket.", ["Vincent"]),
    ("rex: keep his collar.", ["rex"]),
    # statements of the name
    ("This is Zoë. Keep her curls.", ["Zoë"]),
    ("Meet Bruno. Keep his scarf.", ["Bruno"]),
    ("His name is Omar. Keep his beard.", ["Omar"]),
    ("Her name's Lin. Keep her face.", ["Lin"]),
    ("My dog's name is Biscuit and his ears must stay the same.", ["Biscuit"]),
    ("We call her Mochi. Keep the white patch on her chest.", ["Mochi"]),
    ("Name: Kiri. Keep her horns.", ["Kiri"]),
    # the name before what it names
    ("Pepper the beagle should keep her floppy ears.", ["Pepper"]),
    ("Pepper is my beagle. Keep her ears.", ["Pepper"]),
    ("Zoë, my niece, should keep her curls.", ["Zoë"]),
    ("Keep Grandma Rosa's smile.", ["Rosa"]),
    # quoted names, which may be ordinary words
    ("Our perfume 'Lumière'. Keep the bottle shape.", ["Lumière"]),
    ('A fragrance called "Midnight Rose". Keep the bottle.', ["Midnight Rose"]),
    # full names stay one trigger word
    ("Train on my friend Priya Raman. Keep her smile.", ["Priya Raman"]),
    ("A painter called Vincent van Gogh. Keep his beard.", ["Vincent van Gogh"]),
    # products: a brand name before the thing
    ("Keep the Aeron chair's shape and change the background.", ["Aeron"]),
    ("Our perfume Lumière needs the same bottle shape.", ["Lumière"]),
    # names outside ASCII
    ("My colleague Łukasz. Keep his beard.", ["Łukasz"]),
    ("My dog Jürgen. Keep his collar.", ["Jürgen"]),
    ("My cat Señor Bigotes. Keep his whiskers.", ["Señor Bigotes"]),
])
def test_a_named_subject_gives_the_trigger_word(text, trigger):
    intent = parse_offline(text)
    assert intent.trigger_words == trigger
    assert not any(n.startswith("No trigger word given") for n in intent.notes)


@pytest.mark.parametrize(("text", "trigger"), [
    ("Use sks as the trigger word. Keep the face.", ["sks"]),
    ("Please use 'zxq' as the trigger and keep the face.", ["zxq"]),
    ("The trigger word should be pkm. Keep the spots.", ["pkm"]),
    ("Train it with the token ohwx_dog. Keep the spots.", ["ohwx_dog"]),
    ("Activate it with bluecat. Keep the stripes.", ["bluecat"]),
    ("Use pepper and salt as triggers. Keep their collars.", ["pepper", "salt"]),
])
def test_trigger_phrasings_give_the_trigger_word_and_leave_no_sentence_behind(text, trigger):
    intent = parse_offline(text)
    assert intent.trigger_words == trigger
    assert intent.unplaced == []  # the phrasing itself is not an instruction left unread
    assert all("trigger" not in c.name and "token" not in c.name for c in intent.concepts)


@pytest.mark.parametrize("text", [
    "My dog Running must keep the collar.",  # a verb, even capitalised
    "A girl named. Keep her face.",  # no name after "named"
    "My cat is cute, keep her whiskers.",
    "My dog wags his tail. Keep the tail.",
    "my cat stares at me. keep her eyes.",
    "Brush the dog. Keep the fur.",
    "This is a log cabin. Keep the roof.",
    "Note: keep the face.",
    "Important: keep the logo.",
    "My dog is a corgi. Keep his ears.",
    "The girl in the photos should keep her face.",
    "Keep the man's beard. Remove the Rolex watch.",  # what is removed is not the subject
    "Keep: face, freckles. Change: hair colour.",
])
def test_common_words_are_never_taken_for_a_name(text):
    intent = parse_offline(text)
    assert intent.trigger_words == ["ohwx"]
    assert any(n.startswith("No trigger word given") for n in intent.notes)


def test_the_removed_brand_stays_a_concept():
    intent = parse_offline("Keep the man's beard. Remove the Rolex watch.")
    assert ("rolex watch", "delete") in concepts(intent)


# -- precedence ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "trigger"), [
    ("trigger: sks. A man called Vincent. Keep his face.", ["sks"]),
    ("A man called Vincent, trigger: sks. Keep his face.", ["sks"]),
    ("My beagle Pepper. Use pkm as the trigger word. Keep her ears.", ["pkm"]),
    ("trigger: abc. Use pkm as the trigger word. Keep the ears.", ["abc"]),
    ("A girl named Aiko. Her sister Yumi should not appear.", ["Aiko"]),  # the first name
])
def test_explicit_trigger_wins_over_phrasings_and_phrasings_over_names(text, trigger):
    assert parse_offline(text).trigger_words == trigger


def test_a_trigger_directive_ends_where_an_instruction_starts():
    intent = parse_offline("trigger: zara, keep her face and remove the earrings")
    assert intent.trigger_words == ["zara"]
    assert concepts(intent) == [("face", "keep"), ("earrings", "delete")]


# -- the named subject is not also a concept ------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("My beagle Pepper. Keep Pepper's ears.", [("ears", "keep")]),
    ("Keep my beagle Pepper's floppy ears and remove the leash.",
     [("floppy ears", "keep"), ("leash", "delete")]),
    ("A girl named Aiko. Aiko's hair colour can change.", [("hair colour", "modify")]),
    ("trigger: sks. My dog Rex. Keep Rex's collar.", [("collar", "keep")]),
    ("Rex: keep his collar.", [("collar", "keep")]),
    ("My dog's name is Biscuit and his ears must stay the same.", [("ears", "keep")]),
    ("Keep the Aeron chair's shape.", [("chair shape", "keep")]),  # not a bare "shape"
])
def test_the_named_subject_is_absorbed_by_the_trigger(text, expected):
    intent = parse_offline(text)
    assert concepts(intent) == expected
    assert intent.unplaced == []


def test_the_subject_itself_is_no_concept_and_a_note_says_why():
    intent = parse_offline("My beagle Pepper. Pepper should look the same. Keep her ears.")
    assert concepts(intent) == [("ears", "keep")]
    assert intent.unplaced == []
    assert any("learns the named subject itself" in n and "Pepper should look the same" in n
               for n in intent.notes)


def test_a_boxed_subject_stays_a_kept_concept():
    intent = parse_offline("My beagle Pepper [1] should look the same.", refs(1))
    assert [(c.name, c.references) for c in intent.concepts] == [("beagle", [1])]
    assert intent.trigger_words == ["Pepper"]


def test_names_in_returns_the_span_of_the_naming():
    sentence = "Keep my beagle Pepper's floppy ears"
    (found,) = names_in(sentence)
    assert found.names == ("Pepper",) and found.noun == "beagle"
    assert sentence[found.start:found.end] == "my beagle Pepper"
    assert not found.explicit and not found.detached
    (label,) = names_in("Rex: keep his collar", first=True)
    assert label.detached and label.names == ("Rex",)
    assert names_in("Rex: keep his collar") == []  # only at the very start


# -- domains in the user's words ---------------------------------------------------------------
@pytest.mark.parametrize(("directive", "domain"), [
    ("anime OC", "character"),
    ("my vtuber model", "character"),
    ("product photo", "product"),
    ("packshots for our webshop", "product"),
    ("oil painting", "style"),
    ("watercolor look", "style"),
    ("dance move", "pose"),
    ("yoga poses", "pose"),
    ("my pet", "object"),
    ("photos of my cat", "object"),
    ("living room interior", "scene"),
    ("landscapes", "scene"),
    ("selfies", "portrait"),
    ("my wife", "portrait"),
])
def test_a_domain_in_free_text_maps_to_the_nearest_known_one_with_a_note(directive, domain):
    intent = parse_offline(f"trigger: x. domain: {directive}. Keep the shape.")
    assert intent.domain.value == domain
    assert f"'{directive}' read as domain {domain}" in " ".join(intent.notes)


def test_an_exact_domain_needs_no_note():
    intent = parse_offline("trigger: x. domain: Portrait. Keep the face.")
    assert intent.domain is Domain.PORTRAIT
    assert not any("read as domain" in n for n in intent.notes)


def test_3d_render_is_a_character_when_the_subject_is_named_else_a_look():
    named = parse_offline("domain: 3D render. My OC Kiri. Keep her outfit.")
    assert named.domain is Domain.CHARACTER
    unnamed = parse_offline("trigger: x. domain: 3D render. Keep the glossy lighting.")
    assert unnamed.domain is Domain.STYLE
    assert any("3D render" in n and "style" in n for n in unnamed.notes)


def test_an_unknown_domain_is_guessed_with_a_note_not_an_error():
    intent = parse_offline("trigger: x. domain: underwater basket weaving. Keep the hat.")
    assert intent.domain is Domain.OTHER
    note = next(n for n in intent.notes if "underwater basket weaving" in n)
    assert "not a domain IntentTuner knows" in note and "guessed" in note
    guessed = parse_offline("domain: something cosy. My dog Rex. Keep his collar.")
    assert guessed.domain is Domain.OBJECT  # guessed from "my dog Rex"


@pytest.mark.parametrize(("text", "domain"), [
    ("My beagle Pepper. Keep her ears.", "object"),
    ("Packshots of our new sneakers. Keep the sole.", "product"),
    ("trigger: x. Learn the look of these watercolour illustrations. No text.", "style"),
    ("Selfies of me. Keep my face.", "portrait"),
    ("My vtuber avatar Nia. Keep her hair.", "character"),
    ("trigger: x. A 3D render of my character. Keep the outfit.", "character"),
    ("trigger: x. Learn this yoga pose. The person can change.", "pose"),
    ("trigger: x. My bedroom interior. Keep the wallpaper.", "scene"),
])
def test_the_domain_is_guessed_from_the_users_words(text, domain):
    assert parse_offline(text).domain.value == domain


def test_a_domain_note_goes_when_an_edit_changes_the_domain():
    before = parse_offline("trigger: x. domain: anime OC. Keep the face.")
    after = before.model_copy(update={"domain": Domain.PORTRAIT})
    assert any("read as domain" in n for n in before.notes)
    assert not any("read as domain" in n for n in notes.after_edit(before, after))


# -- other languages ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "language"), [
    ("Behalte ihr Gesicht. Die Haare sollen veränderbar sein, keine Brille.", "German"),
    ("Mantén su cara igual y quita las gafas. El fondo puede cambiar.", "Spanish"),
    ("Garde son visage et enlève les lunettes, pas de chapeau.", "French"),
    ("彼女の顔はそのまま。髪の色は変えられるように。眼鏡はなし。", "Japanese"),
    ("保持她的脸。去掉眼镜。", "Chinese"),
])
def test_a_foreign_description_is_not_parsed_but_kept_whole_with_a_note(text, language):
    intent = parse_offline(text)
    assert intent.concepts == []
    assert len(intent.unplaced) == 1 and intent.unplaced[0].startswith(text.rstrip("."))
    assert intent.notes[0].startswith("The offline parser reads English only; this "
                                      f"description looks like {language}.")
    assert "Connect an LLM (LLM Settings)" in intent.notes[0]


def test_a_foreign_description_stops_parse_intent_with_the_reason():
    with pytest.raises(InputError, match="reads English only"):
        parse_intent("Behalte ihr Gesicht und die Haare sollen veränderbar sein.")


def test_a_foreign_sentence_in_an_english_description_is_unplaced_alone():
    intent = parse_offline("A girl named Aiko. Keep her face. Die Haare sollen sich ändern "
                           "und keine Brille.")
    assert intent.trigger_words == ["Aiko"]
    assert concepts(intent) == [("face", "keep")]
    assert len(intent.unplaced) == 1 and "looks like German" in intent.unplaced[0]
    assert any("this sentence looks like German" in n for n in intent.notes)


@pytest.mark.parametrize("text", [
    "My dog Jürgen. Keep the text 'Für Elise' on his collar.",
    "Keep the 'la vie en rose' print on her shirt and remove the watermark.",
    "A girl named Aiko (愛子). Keep her face.",
    "My cat Señor Bigotes. Keep his whiskers and no collar.",
    "Keep her face. No sombrero.",
])
def test_english_with_a_foreign_name_or_phrase_parses_normally(text):
    intent = parse_offline(text)
    assert intent.concepts
    assert not any("English only" in n for n in intent.notes)
    assert intent.unplaced == []


# -- [n] without a box ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "boxes", "message"), [
    ("trigger: x. Keep the face [1]. He likes to run [3].", 2,
     r"refers to \[3\], but only 2 reference box\(es\) exist"),
    ("My beagle Pepper [1]. Keep her ears.", 0, r"refers to \[1\], but no reference boxes"),
    ("trigger: x [2]. Keep the face.", 1, r"refers to \[2\], but only 1 reference box"),
    ("trigger: x. Keep the face [0].", 1, r"refers to \[0\]"),
])
def test_a_reference_without_its_box_is_an_error(text, boxes, message):
    with pytest.raises(InputError, match=message):
        parse_offline(text, refs(boxes))


def test_a_remark_about_the_trigger_is_not_a_trigger_word():
    from intenttuner.intent.offline import parse_offline

    assert parse_offline("Keep his face. The default trigger is fine.").trigger_words == ["ohwx"]
    assert parse_offline("The trigger is Zorro. Keep his mask.").trigger_words == ["Zorro"]


# -- nothing said is dropped silently ------------------------------------------------------------
@pytest.mark.parametrize(("text", "word"), [
    ("the scarf is a must", "scarf"),
    ("glasses are a must-have", "glasses"),
    ("the hat is a dealbreaker", "hat"),
    ("teach it the logo", "logo"),
    ("a girl named Aiko with her hair open to whatever", "hair"),
    ("my dog Rex wears a blue collar in most photos, it should be red sometimes", "collar"),
    ("these are photos of my grandma, her smile is everything", "smile"),
    ("the necklace is a big deal", "necklace"),
    ("my cat Miso sleeps on a red blanket in every photo", "blanket"),
])
def test_a_clause_saying_more_than_who_is_trained_is_never_dropped(text, word):
    """A context cue ("is a", "teach", "these are") or a name does not make the whole clause
    context: what it says beyond who is trained is a concept or unplaced, never gone."""
    intent = parse_offline(text)
    assert any(word in s for s in [c.name for c in intent.concepts] + intent.unplaced), intent


@pytest.mark.parametrize(("clause", "spans", "extra"), [
    ("I'm training a girl named Aiko", ["a girl named Aiko"], []),
    ("Photos of our cat, Miso, on the sofa", ["our cat, Miso"], []),
    ("This is a log cabin", [], []),
    ("A street artist known as Zed", ["known as Zed"], []),
    ("A girl named Aiko (愛子)", ["A girl named Aiko"], []),
    ("I took these pictures of my son Leo over the summer", ["my son Leo"], []),
    ("the scarf is a must", [], ["the scarf is a must"]),
    ("teach it the logo", [], ["teach it the logo"]),
    ("these are photos of my grandma, her smile is everything", [],
     ["her smile is everything"]),
    ("my dog Rex wears a blue collar in most photos", ["my dog Rex"],
     ["my dog Rex wears a blue collar in most photos"]),
])
def test_extra_parts_are_what_a_clause_says_beyond_who_is_trained(clause, spans, extra):
    assert extra_parts(clause, spans) == extra


@pytest.mark.parametrize("text", [
    "Photos of our cat, Miso, on the sofa. Keep her markings.",
    "I'm training a girl named Aiko. Keep her face.",
    "This is a log cabin. Keep the roof.",
    "A street artist known as Zed. Keep his mask.",
    "I want a LoRA of my golden retriever Max. No leash.",
])
def test_a_clause_that_only_says_who_is_trained_stays_context(text):
    assert parse_offline(text).unplaced == []


def test_a_description_yielding_nothing_is_unplaced_whole():
    text = "My beagle Pepper. Pepper should look the same."
    intent = parse_offline(text)
    assert intent.concepts == []
    assert len(intent.unplaced) == 1 and intent.unplaced[0].startswith(text)
    with pytest.raises(InputError, match="no concept to keep, change or remove"):
        parse_intent(text)
    assert parse_offline("these are photos of my grandma").unplaced  # context, nothing else


@pytest.mark.parametrize("text", ["...", "!!!???", " - , ; "])
def test_a_description_without_words_is_an_error(text):
    with pytest.raises(InputError, match="has no words"):
        parse_offline(text)


def test_an_overlong_description_is_an_error_naming_the_limit():
    text = "Keep the face. " * 300
    with pytest.raises(InputError, match=rf"is {len(text)} characters long.*at most 4000"):
        parse_offline(text)
    parse_offline("Keep the face. " * 200)  # 3000 characters are fine


# -- the named subject is never deleted ------------------------------------------------------------
@pytest.mark.parametrize(("text", "trigger", "deleted"), [
    ("my dog Rex never wears a collar", ["Rex"], "collar"),
    ("my cat Miso wears a bell that I want gone", ["Miso"], "bell"),
    ("a cat called Tom with a bow tie that must not appear", ["Tom"], "bow tie"),
    ("My dog Rex never has a leash.", ["Rex"], "leash"),
    ("No collar on my dog Rex.", ["Rex"], "collar"),
])
def test_a_name_in_a_delete_clause_is_the_subject_unless_it_is_what_is_removed(
        text, trigger, deleted):
    intent = parse_offline(text)
    assert intent.trigger_words == trigger
    assert [c.name for c in intent.by_operation(Operation.DELETE)] == [deleted]


@pytest.mark.parametrize(("text", "deleted"), [
    ("The Rolex watch must go. Keep the man's beard.", "rolex watch"),
    ("Remove the Rolex watch strap. Keep his face.", "rolex watch strap"),
])
def test_a_removed_brand_is_still_no_subject(text, deleted):
    intent = parse_offline(text)
    assert intent.trigger_words == ["ohwx"]
    assert (deleted, "delete") in concepts(intent)


def test_removing_the_subject_itself_is_dropped_with_a_note():
    intent = parse_offline("My beagle Pepper. Remove Pepper [1]. Keep her ears.", refs(1))
    assert concepts(intent) == [("ears", "keep")]
    assert any("'Remove Pepper [1]' removes no concept" in n for n in intent.notes)
    assert any(n.startswith("Reference box [1] is not bound") for n in intent.notes)


# -- directives ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "trigger", "expected"), [
    ("trigger: sks keep his face", ["sks"], [("face", "keep")]),
    ("token: abc123 remove watermark", ["abc123"], [("watermark", "delete")]),
    ("Trigger = zzz no hat", ["zzz"], [("hat", "delete")]),
    ("activation word: lmn, keep the face", ["lmn"], [("face", "keep")]),
    ("trigger: sks his face must stay", ["sks"], [("face", "keep")]),
    ("trigger word = pkm don't change the ears", ["pkm"], [("ears", "keep")]),
    ("trigger: dog. Keep the face.", ["dog"], [("face", "keep")]),  # a value, though a word
])
def test_a_trigger_value_ends_at_the_instruction_in_its_own_part(text, trigger, expected):
    intent = parse_offline(text)
    assert intent.trigger_words == trigger
    assert concepts(intent) == expected


@pytest.mark.parametrize("text", [
    "trigger: the default is fine. Keep the face.",
    "token = none, keep the face",
    "Keep the face. The default trigger is fine.",
])
def test_a_remark_about_the_trigger_gives_the_default_trigger_with_notes(text):
    intent = parse_offline(text)
    assert intent.trigger_words == ["ohwx"]
    assert concepts(intent) == [("face", "keep")]
    assert any("read as a remark about the trigger word" in n for n in intent.notes)
    assert any(n.startswith("No trigger word given") for n in intent.notes)


def test_a_domain_word_after_domain_is_is_the_domain_not_a_remark():
    intent = parse_offline("domain is portrait, keep the face")
    assert intent.domain is Domain.PORTRAIT
    assert concepts(intent) == [("face", "keep")]
    fine = parse_offline("the domain is fine. Keep the collar.")
    assert concepts(fine) == [("collar", "keep")]
    assert any("remark about the domain" in n for n in fine.notes)


# -- foreign parts of English sentences -------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected", "foreign"), [
    ("keep the face, pelo cambiable, sin gafas", [("face", "keep")],
     [("pelo cambiable", "Spanish"), ("sin gafas", "Spanish")]),
    ("keep his face, entferne die Brille und den Hut bitte", [("face", "keep")],
     [("entferne die Brille und den Hut bitte", "German")]),
    ("保持脸部 keep face", [("face", "keep")], [("保持脸部", "Chinese")]),
    ("keep the logo, 帽子を取って", [("logo", "keep")], [("帽子を取って", "Japanese")]),
])
def test_a_foreign_part_of_an_english_sentence_is_unplaced(text, expected, foreign):
    intent = parse_offline(text)
    assert concepts(intent) == expected
    assert intent.unplaced == [f"{part} ({notes.foreign_reason(language)})"
                               for part, language in foreign]
    assert any("reads English only" in n and "not parsed" in n for n in intent.notes)


def test_a_name_in_another_script_is_no_foreign_part():
    intent = parse_offline("My cat 小雪, keep her whiskers")
    assert intent.trigger_words == ["小雪"]
    assert concepts(intent) == [("whiskers", "keep")]
    assert intent.unplaced == []


# -- clashes the user never wrote ------------------------------------------------------------------
def test_other_tells_two_concepts_of_one_name_apart():
    intent = parse_offline("my dog Pepper. keep Pepper's collar, no collar on the other dog")
    assert intent.trigger_words == ["Pepper"]
    assert concepts(intent) == [("collar", "keep"), ("other dog collar", "delete")]
    earrings = parse_offline("keep her earrings [1], remove the other earrings [2]", refs(2))
    assert [(c.name, c.operation.value, c.references) for c in earrings.concepts] == [
        ("earrings", "keep", [1]), ("other earrings", "delete", [2])]
    first_other = parse_offline("My dog Pepper. No collar on the other dog, keep Pepper's "
                                "collar.")
    assert concepts(first_other) == [("other dog collar", "delete"), ("collar", "keep")]


def test_other_about_something_else_leaves_a_written_clash_an_error():
    with pytest.raises(InputError, match="'hat' is both keep"):
        parse_offline("Keep the hat, no other accessories. Remove the hat.")
    gold = parse_offline("Keep her gold earrings. Remove the other gold earrings.")
    assert concepts(gold) == [("gold earrings", "keep"), ("other gold earrings", "delete")]


def test_an_absorbed_name_tells_its_concept_apart():
    intent = parse_offline("My dog Pepper. Keep Pepper's collar. No collar.")
    assert concepts(intent) == [("pepper's collar", "keep"), ("collar", "delete")]


def test_a_clash_left_after_telling_apart_is_unplaced_not_an_error():
    intent = parse_offline("Keep her earrings. Remove the other earrings. The other earrings "
                           "can change.")
    assert concepts(intent) == [("earrings", "keep"), ("other earrings", "delete")]
    assert len(intent.unplaced) == 1
    assert intent.unplaced[0].startswith("The other earrings can change ('earrings' is also to "
                                         "keep")


# -- labels and pet names -------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("Note: keep the face", [("face", "keep")]),
    ("Goal - keep the logo", [("logo", "keep")]),
    ("Update: hair can change", [("hair", "modify")]),
    ("Monday: keep the face", [("face", "keep")]),
    ("Please note: the logo must stay.", [("logo", "keep")]),
    ("Keep the face. PS: remove the watermark.", [("face", "keep"), ("watermark", "delete")]),
    ("Hair: can change", [("hair", "modify")]),  # a concept, not a label
])
def test_a_leading_label_is_neither_a_concept_nor_a_name(text, expected):
    intent = parse_offline(text)
    assert intent.trigger_words == ["ohwx"]
    assert concepts(intent) == expected


@pytest.mark.parametrize(("text", "trigger"), [
    ("my dog Bear, keep his face", ["Bear"]),
    ("My dog Teddy. Keep his ears.", ["Teddy"]),
    ("My kitten Kitty. Keep her stripes.", ["Kitty"]),
    ("My cat Boots. Keep her whiskers.", ["Boots"]),
    ("My cat Socks. Keep her paws.", ["Socks"]),
    ("Our dog Blue. Keep his collar.", ["Blue"]),
    ("My dog Lady should keep her spots.", ["Lady"]),
    ("My cat Princess has to keep her bow.", ["Princess"]),
    ("My cat Baby. Keep her eyes.", ["Baby"]),
    ("My kitten, Fluffy, keep her whiskers", ["Fluffy"]),
    ("A dog named Bear. Keep the fur.", ["Bear"]),
])
def test_a_pet_name_the_lexicon_knows_is_a_name_with_a_capital(text, trigger):
    intent = parse_offline(text)
    assert intent.trigger_words == trigger
    assert all(trigger[0].lower() not in c.name for c in intent.concepts)


@pytest.mark.parametrize("text", ["my dog bear, keep his face", "my cat socks. keep her paws"])
def test_a_lower_case_known_word_is_still_no_name(text):
    assert parse_offline(text).trigger_words == ["ohwx"]
